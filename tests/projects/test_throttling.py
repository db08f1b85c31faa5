"""How fast one API key may call the API: a bucket per key in Redis, each project's own rate or
the server's default, bulk counted per notification, Redis down letting requests through."""

import logging

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from rest_framework.test import APIClient

from apps.projects.throttling import local_buckets_clear
from tests.projects.factories import ApiKeyFactory
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_buckets(redis_for_run):
    return redis_for_run


def limited(api_key, rate: str) -> None:
    api_key.project.api_rate_limit = rate
    api_key.project.save(update_fields=["api_rate_limit"])


def test_the_request_over_the_rate_gets_a_429_with_retry_after(api, api_key, redis_buckets):
    limited(api_key, "3/h")

    answers = [api.get("/api/v1/project") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    # Every answer says how much is left, so a client can pace itself before a 429.
    assert [a["RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert {a["RateLimit-Limit"] for a in answers} == {"3"}
    refused = api.get("/api/v1/project")

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    # A token comes back every 20 minutes (3 per hour).
    assert 1000 <= int(refused["Retry-After"]) <= 1200
    assert refused["RateLimit-Limit"] == "3"
    assert refused["RateLimit-Remaining"] == "0"


def test_each_key_has_its_own_bucket_and_the_default_rate_applies_without_a_projects_own(
        api, api_key, redis_buckets):
    redis_buckets.NOTIFIER_API_RATE_LIMIT = "2/h"
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Api-Key {ApiKeyFactory(project=api_key.project).raw_key}")

    assert [api.get("/api/v1/project").status_code for _ in range(3)] == [200, 200, 429]
    assert other.get("/api/v1/project").status_code == 200


def test_a_project_set_off_is_not_limited(api, api_key, redis_buckets):
    redis_buckets.NOTIFIER_API_RATE_LIMIT = "1/h"
    limited(api_key, "off")

    assert {api.get("/api/v1/project").status_code for _ in range(5)} == {200}


def test_a_bulk_costs_one_per_notification(api, api_key, redis_buckets):
    limited(api_key, "10/h")
    bulk = {"notifications": [{"to": "nobody", "template": "none"}] * 7}

    assert api.post("/api/v1/notifications/bulk", bulk, format="json").status_code == 200
    assert [api.get("/api/v1/project").status_code for _ in range(4)] == [200, 200, 200, 429]


def test_a_bulk_larger_than_the_bucket_goes_through_a_full_bucket_and_then_waits(api, api_key, redis_buckets):
    limited(api_key, "5/h")
    bulk = {"notifications": [{"to": "nobody", "template": "none"}] * 8}

    assert api.post("/api/v1/notifications/bulk", bulk, format="json").status_code == 200
    refused = api.get("/api/v1/project")
    # 8 taken from 5: a debt of 3, then one more token, 4 times 12 minutes.
    assert refused.status_code == 429
    assert 2800 <= int(refused["Retry-After"]) <= 2880


def test_inbox_requests_with_a_user_token_are_not_counted(api, api_key, redis_buckets):
    limited(api_key, "2/h")
    assert api.put("/api/v1/users/ada", {"name": "Ada"}, format="json").status_code == 201
    token = api.post("/api/v1/users/ada/token").json()["token"]
    browser = APIClient()
    browser.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert {browser.get("/api/v1/inbox/unread-count").status_code for _ in range(5)} == {200}
    assert api.get("/api/v1/project").status_code == 429


def test_redis_down_lets_requests_through_and_says_so_in_the_log(api, api_key, redis_buckets, caplog):
    limited(api_key, "1/h")
    redis_buckets.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there

    with caplog.at_level(logging.WARNING):
        statuses = [api.get("/api/v1/project").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert "API rate limits not enforced: Redis unavailable" in caplog.text


def test_without_redis_the_process_counts_by_itself(api, api_key, settings):
    settings.REDIS_URL = ""
    local_buckets_clear()
    limited(api_key, "2/h")

    assert [api.get("/api/v1/project").status_code for _ in range(3)] == [200, 200, 429]
    local_buckets_clear()


def test_the_rate_is_shown_to_the_key_holder_but_cannot_be_changed_through_the_api(api, api_key, settings):
    settings.NOTIFIER_API_RATE_LIMIT = "off"
    limited(api_key, "600/m")

    assert api.get("/api/v1/project").json()["api_rate_limit"] == "600/m"
    assert api.patch("/api/v1/project", {"api_rate_limit": "off"}, format="json").status_code == 200
    api_key.project.refresh_from_db()
    assert api_key.project.api_rate_limit == "600/m"


@pytest.mark.parametrize("rate", ["100", "0/s", "10/w", "fast", "1e3/s"])
def test_the_admin_refuses_a_rate_it_cannot_read(api_key, rate):
    api_key.project.api_rate_limit = rate
    with pytest.raises(ValidationError) as refused:
        api_key.project.full_clean()
    assert "api_rate_limit" in refused.value.message_dict


def test_a_bad_default_rate_stops_the_process_at_its_checks(settings):
    settings.NOTIFIER_API_RATE_LIMIT = "100 per second"
    with pytest.raises(SystemCheckError, match="NOTIFIER_API_RATE_LIMIT"):
        call_command("check")


# --- What a request costs -----------------------------------------------------------------------

def test_a_users_bulk_and_a_broadcast_to_a_list_cost_one_per_user(api, api_key, redis_buckets):
    from tests.templates.factories import TemplateVersionFactory

    TemplateVersionFactory(template__project=api_key.project, template__key="news")
    limited(api_key, "3/h")
    two_users = {"users": [{"external_id": "ada", "email": "ada@example.com"},
                           {"external_id": "bob", "email": "bob@example.com"}]}

    assert api.put("/api/v1/users", two_users, format="json").status_code == 200
    assert api.put("/api/v1/users", two_users, format="json").status_code == 429  # 1 left, 2 asked
    limited(api_key, "4/h")
    redis_buckets.NOTIFIER_INBOX_CHANNEL_PREFIX += "b:"  # a fresh bucket at the new rate
    broadcast = {"template": "news", "to": ["ada", "bob", "cy"]}
    assert api.post("/api/v1/broadcasts", broadcast, format="json").status_code == 202
    assert api.post("/api/v1/broadcasts", broadcast, format="json").status_code == 429  # 1 left, 3 asked


def test_a_key_over_its_rate_is_refused_before_its_body_is_parsed(api, api_key, redis_buckets):
    """The body here is not JSON: parsed, it would be a 400. Refused before, it is a 429, and the
    service did not spend a parse on megabytes it would refuse anyway."""
    limited(api_key, "1/h")
    assert api.get("/api/v1/project").status_code == 200  # the bucket is empty now
    body = b'{"notifications": [' + b'{"to": "ada", "template": "news"},' * 200_000  # 7 MiB, cut short

    refused = api.post("/api/v1/notifications/bulk", body, content_type="application/json")

    assert refused.status_code == 429, refused.content
    assert refused.json()["error"]["code"] == "rate_limited" and refused["Retry-After"]


def test_an_audience_broadcast_pays_per_user_as_it_fans_out_and_pauses_when_the_bucket_is_empty(
        api, api_key, redis_buckets):
    import time

    from django.utils import timezone

    from apps.notifications.intake.broadcasts import PAUSED_BY_RATE, broadcast_fan_out
    from apps.notifications.models import Broadcast, Notification
    from tests.templates.factories import TemplateVersionFactory
    from tests.users.factories import RecipientFactory

    TemplateVersionFactory(template__project=api_key.project, template__key="news")
    for n in range(7):
        RecipientFactory(project=api_key.project, external_id=f"user-{n}")
    limited(api_key, "3/s")
    created = api.post("/api/v1/broadcasts", {"template": "news", "audience": {"all": True}}, format="json")
    assert created.status_code == 202  # it cost 1: 2 left

    first_run = broadcast_fan_out(broadcast_id=created.json()["id"], batch_size=3)

    broadcast = Broadcast.objects.get(id=created.json()["id"])
    assert first_run == PAUSED_BY_RATE
    assert (broadcast.status, broadcast.created, broadcast.failed) == ("running", 0, 0)
    # The sweep takes it back once the bucket holds a batch again (a third of a second), not before.
    stale_after = broadcast.heartbeat_at + timezone.timedelta(seconds=redis_buckets.NOTIFIER_BROADCAST_STALE_SECONDS)
    assert timezone.now() < stale_after <= timezone.now() + timezone.timedelta(seconds=1)

    runs = [first_run]
    while runs[-1] != "completed" and len(runs) < 20:
        time.sleep(0.35)
        runs.append(broadcast_fan_out(broadcast_id=broadcast.id, batch_size=3))
    broadcast.refresh_from_db()
    assert runs[-1] == "completed" and runs.count(PAUSED_BY_RATE) >= 2
    assert (broadcast.created, broadcast.failed, broadcast.error_count) == (7, 0, 0)
    assert Notification.objects.filter(broadcast=broadcast).count() == 7


def test_a_rate_is_parsed_once_and_an_unreadable_one_refused_every_time():
    from apps.projects.rates import Rate, rate_parse

    assert rate_parse("600/m") is rate_parse("600/m") == Rate(600, 60)
    for _ in range(2):
        with pytest.raises(ValueError, match="is not a rate"):
            rate_parse("600 a minute")
