"""PUT /api/v1/users: many users upserted in one request, each answered on its own."""
import json

import pytest
from rest_framework.test import APIClient

from apps.users.models import Recipient
from tests.projects.factories import ApiKeyFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db


def bulk(api, users):
    return api.put("/api/v1/users", {"users": users}, format="json")


def test_valid_and_invalid_users_are_answered_in_order(api, project):
    RecipientFactory(project=project, external_id="bob", email="bob@example.com", name="Bob", timezone="Europe/Paris")

    response = bulk(api, [
        {"external_id": "ada", "email": "ada@example.com", "locale": "fr-CA"},
        {"external_id": "eve", "phone": "12"},
        {"external_id": "bob", "phone": "+14155550123"},
        "not an object",
        {"email": "no-id@example.com"},
        {"external_id": "a/b"},
    ])

    assert response.status_code == 200, response.content
    ada, eve, bob, text, no_id, slash = response.json()["results"]
    assert (ada["id"], ada["email"], ada["locale"], ada["devices"]) == ("ada", "ada@example.com", "fr-CA", [])
    assert eve["error"]["code"] == "invalid" and "phone" in eve["error"]["details"]
    # Fields left out keep their value, as with PUT /users/{id}.
    assert (bob["id"], bob["phone"], bob["email"], bob["name"], bob["timezone"]) == (
        "bob", "+14155550123", "bob@example.com", "Bob", "Europe/Paris")
    assert text["error"]["code"] == "invalid"
    assert "external_id" in no_id["error"]["details"] and "external_id" in slash["error"]["details"]
    assert sorted(Recipient.objects.filter(project=project).values_list("external_id", flat=True)) == ["ada", "bob"]
    assert api.get("/api/v1/users/bob").json() == bob


def test_an_item_answers_as_the_single_put_does(api):
    single = api.put("/api/v1/users/ada", {"email": "ada@example.com", "data": {"plan": "pro"}}, format="json").json()
    [item] = bulk(api, [{"external_id": "ada", "name": "Ada"}]).json()["results"]

    assert set(item) == set(single)
    assert (item["email"], item["data"], item["name"], item["created_at"]) == (
        "ada@example.com", {"plan": "pro"}, "Ada", single["created_at"])
    assert item["updated_at"] > single["updated_at"]


def test_an_id_given_twice_takes_both_items_fields(api):
    results = bulk(api, [{"external_id": "ada", "email": "ada@example.com", "name": "A"},
                         {"external_id": "ada", "name": "Ada"}]).json()["results"]

    assert results[0] == results[1]
    assert (results[1]["email"], results[1]["name"]) == ("ada@example.com", "Ada")


def test_a_bulk_of_1000_is_a_fixed_number_of_queries(api, project, django_assert_max_num_queries):
    RecipientFactory.create_batch(300, project=project)
    existing = list(Recipient.objects.filter(project=project).values_list("external_id", flat=True))
    users = [{"external_id": external_id, "name": "renamed"} for external_id in existing]
    users += [{"external_id": f"new-{n}", "email": f"new-{n}@example.com", "locale": "en"} for n in range(700)]

    # The API key, which users exist, one INSERT … ON CONFLICT locking them all in order (there
    # are two sets of fields) and one per set of fields, the users read back and their devices;
    # and the transaction (a savepoint and its release inside the test's own). Without batching
    # it would be over a thousand.
    assert api.get("/api/v1/project").status_code == 200  # the API key's last use is fresh: no write
    with django_assert_max_num_queries(9):
        response = bulk(api, users)

    results = response.json()["results"]
    assert len(results) == 1000 and all("error" not in r for r in results)
    assert Recipient.objects.filter(project=project, name="renamed").count() == 300
    assert Recipient.objects.filter(project=project).count() == 1000


def test_the_envelope_is_checked_first(api):
    assert bulk(api, []).status_code == 400
    assert api.put("/api/v1/users", {"people": []}, format="json").status_code == 400
    too_many = bulk(api, [{"external_id": f"u{n}"} for n in range(1001)])
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "invalid"
    assert not Recipient.objects.exists()


def test_another_projects_user_of_the_same_id_is_left_alone(api, project):
    other = RecipientFactory(external_id="ada", email="other@example.com")

    bulk(api, [{"external_id": "ada", "email": "ada@example.com"}])

    other.refresh_from_db()
    assert other.email == "other@example.com"
    assert Recipient.objects.get(project=project, external_id="ada").email == "ada@example.com"


def test_it_needs_an_api_key():
    assert APIClient().put("/api/v1/users", {"users": [{"external_id": "a"}]}, format="json").status_code == 401
    assert ApiKeyFactory()  # a key existing elsewhere changes nothing


def test_a_bulk_body_past_the_single_limit_is_taken_and_other_endpoints_keep_theirs(api, settings):
    # 1,000 users of ~2 KB: over NOTIFIER_MAX_REQUEST_BYTES (1 MiB), under the bulk limit.
    users = [{"external_id": f"u{n}", "name": "x" * 190, "data": {"bio": "y" * 1900}} for n in range(1000)]
    body = json.dumps({"users": users})
    assert settings.NOTIFIER_MAX_REQUEST_BYTES < len(body) < settings.NOTIFIER_MAX_BULK_REQUEST_BYTES

    response = api.put("/api/v1/users", body, content_type="application/json")
    single = api.put("/api/v1/users/ada", json.dumps({"data": {"bio": "y" * len(body)}}),
                     content_type="application/json")

    assert response.status_code == 200, response.content[:300]
    assert Recipient.objects.count() == 1000
    assert (single.status_code, single.json()["error"]["code"]) == (413, "request_too_large")


@pytest.mark.django_db(transaction=True)
def test_concurrent_bulks_of_the_same_users_in_different_orders_do_not_deadlock(project):
    """Two web processes (threads with their own connections) upsert the same 300 users, one in
    the order given, the other reversed, with two sets of fields: neither waits for the other
    forever (PostgreSQL would end one with a deadlock, a 503 to its client)."""
    import threading

    from django.db import connection

    from apps.users.services import recipients_upsert

    ids = [f"user-{n:03}" for n in range(300)]
    items = [(external_id, {"email": f"{external_id}@example.com"} if n % 2 else {"locale": "fr"})
             for n, external_id in enumerate(ids)]
    start = threading.Barrier(2)
    errors = []

    def upsert(order):
        try:
            for _ in range(8):
                start.wait()
                recipients_upsert(project=project, items=order)
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
            start.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=upsert, args=(order,)) for order in (items, items[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Recipient.objects.filter(project=project).count() == 300
