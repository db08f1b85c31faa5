"""POST /api/v1/notifications/bulk: up to 1,000 notifications, each accepted or refused on its own."""

import pytest

from apps.notifications.models import Delivery, Notification
from tests.templates.factories import TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications/bulk"


@pytest.fixture
def users(project):
    return [RecipientFactory(project=project, external_id=f"u{n}") for n in range(3)]


@pytest.fixture
def template(project):
    return TemplateVersionFactory(template__project=project, template__key="welcome").template


def bulk(api, *items):
    return api.post(URL, {"notifications": list(items)}, format="json")


def item(to: str, **fields) -> dict:
    return {"to": to, "template": "welcome", **fields}


def test_each_item_gets_its_own_result_in_order_accepted_or_its_error(api, users, template):
    response = bulk(api, item("u0"), item("nobody"), item("u1", priority="urgent"), item("u2", template="nope"),
                    item("u2", data={"n": 2}), "not an object")

    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert len(results) == 6
    accepted = [results[0], results[4]]
    for result, to in zip(accepted, ["u0", "u2"], strict=True):
        assert result["status"] == "processing"
        assert [(d["channel"], d["status"]) for d in result["deliveries"]] == [("email", "queued")]
        assert Notification.objects.get(id=result["id"]).to == to
    assert results[1]["error"]["code"] == "unknown_user"
    assert results[2]["error"]["code"] == "invalid" and "priority" in results[2]["error"]["details"]
    assert results[3]["error"]["code"] == "unknown_template"
    assert results[5]["error"]["code"] == "invalid"
    assert Notification.objects.count() == 2
    assert Notification.objects.get(id=results[4]["id"]).data == {"n": 2}


def test_an_items_idempotency_key_returns_the_first_result_or_that_items_conflict(api, users, template):
    first = bulk(api, item("u0", idempotency_key="a"), item("u1", idempotency_key="b")).json()["results"]

    again = bulk(api, item("u0", idempotency_key="a"), item("u2", idempotency_key="b"),
                 item("u2", idempotency_key="c")).json()["results"]

    assert again[0] == first[0]  # same key, same body: the first notification, same deliveries
    assert again[1]["error"]["code"] == "idempotency_key_reused"  # same key, another body
    assert "id" in again[2]
    assert Notification.objects.count() == 3


def test_a_key_repeated_within_one_request_is_one_notification(api, users, template):
    results = bulk(api, item("u0", idempotency_key="a"), item("u0", idempotency_key="a"),
                   item("u1", idempotency_key="a")).json()["results"]

    assert results[0]["id"] == results[1]["id"]
    assert results[2]["error"]["code"] == "idempotency_key_reused"
    assert Notification.objects.count() == 1


def test_an_items_key_is_the_same_key_as_the_single_posts_header(api, users, template):
    single = api.post("/api/v1/notifications", item("u0"), format="json", HTTP_IDEMPOTENCY_KEY="k").json()

    [result] = bulk(api, item("u0", idempotency_key="k")).json()["results"]

    assert result["id"] == single["id"]


def test_more_than_1000_items_are_refused_whole_and_nothing_is_created(api, users, template):
    response = bulk(api, *[item("u0") for _ in range(1001)])

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and "notifications" in error["details"]
    assert not Notification.objects.exists()


@pytest.mark.parametrize("body", [{}, {"notifications": []}, {"notifications": {"to": "u0"}}, [1]])
def test_a_body_without_a_list_of_items_is_a_400(api, body):
    response = api.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


@pytest.mark.slow
def test_a_bulk_of_1000_is_a_fixed_number_of_queries(api, project, template, django_assert_max_num_queries):
    for n in range(1000):
        RecipientFactory(project=project, external_id=f"many{n}")
    assert api.get("/api/v1/project").status_code == 200  # the API key's last use is fresh: no write

    with django_assert_max_num_queries(5):
        response = bulk(api, *[item(f"many{n}") for n in range(1000)])

    assert response.status_code == 200
    assert Delivery.objects.count() == 1000
