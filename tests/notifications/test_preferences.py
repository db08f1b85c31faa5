"""A user's preferences at work: declined channels are `skipped` with the reason, quiet hours hold
deliveries `pending` until they end in the user's time zone, and the sweep then sends them."""

import zoneinfo
from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone

from apps.notifications.delivery.sweep import deliveries_sweep
from apps.notifications.models import Delivery
from apps.users.models import Recipient
from apps.users.preferences import quiet_hours_release_at
from tests.templates.factories import EMAIL_PARTS, TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")


@pytest.fixture
def ada(project):
    return RecipientFactory(project=project, external_id="ada", timezone="Asia/Tokyo")


@pytest.fixture(autouse=True)
def template(project):
    channels = {"email": dict(EMAIL_PARTS), "in_app": {"title": "Hi {{ name }}", "body": "News"}}
    return TemplateVersionFactory(template__project=project, template__key="news", channels=channels).template


def prefer(api, **preferences):
    assert api.put("/api/v1/users/ada/preferences", preferences, format="json").status_code == 200


def send(api, **body) -> dict:
    response = api.post("/api/v1/notifications", {"to": "ada", "template": "news", **body}, format="json")
    assert response.status_code == 202, response.content
    return api.get(f"/api/v1/notifications/{response.json()['id']}").json()


def by_channel(notification: dict) -> dict:
    return {d["channel"]: d for d in notification["deliveries"]}


def test_a_channel_the_user_turned_off_is_skipped_with_the_reason(api, ada):
    prefer(api, channels={"email": False})

    deliveries = by_channel(send(api))

    assert deliveries["email"]["status"] == "skipped"
    assert deliveries["email"]["skip_reason"] == "the user turned email off"
    assert deliveries["in_app"]["status"] == "queued"


def test_a_category_setting_overrides_the_channel_setting_both_ways(api, ada):
    prefer(api, channels={"email": False}, categories={"security": {"email": True}, "marketing": {"in_app": False}})

    security = by_channel(send(api, category="security"))
    marketing = by_channel(send(api, category="marketing"))

    assert (security["email"]["status"], security["in_app"]["status"]) == ("queued", "queued")
    assert marketing["email"]["skip_reason"] == "the user turned email off"
    assert marketing["in_app"]["skip_reason"] == "the user turned in_app off for 'marketing'"


def test_a_notification_the_user_declined_everywhere_is_accepted_and_accounted_for(api, ada):
    prefer(api, channels={"email": False, "in_app": False})

    notification = send(api)

    assert notification["status"] == "skipped"
    assert {d["status"] for d in notification["deliveries"]} == {"skipped"}


def quiet_window_around_now() -> tuple[str, str, datetime]:
    """Quiet hours from an hour ago to an hour from now, Tokyo time; and when they end, in UTC."""
    local_now = timezone.now().astimezone(TOKYO).replace(second=0, microsecond=0)
    start, end = local_now - timedelta(hours=1), local_now + timedelta(hours=1)
    return f"{start:%H:%M}", f"{end:%H:%M}", end.astimezone(UTC)


def test_quiet_hours_hold_interrupting_channels_until_they_end_in_the_users_time_zone(api, ada):
    start, end, ends_at = quiet_window_around_now()
    prefer(api, quiet_hours={"start": start, "end": end})

    notification = send(api)
    deliveries = by_channel(notification)

    assert notification["status"] == "processing"  # the in-app message goes now
    assert deliveries["email"]["status"] == "pending"
    assert deliveries["email"]["hold_reason"] == "held by the user's quiet hours"
    assert datetime.fromisoformat(deliveries["email"]["next_attempt_at"]) == ends_at
    assert deliveries["in_app"]["status"] == "queued"  # silent until opened: not held


def test_a_send_at_inside_quiet_hours_waits_for_their_end(api, ada):
    start, end, ends_at = quiet_window_around_now()
    prefer(api, quiet_hours={"start": start, "end": end})

    email = by_channel(send(api, send_at=(timezone.now() + timedelta(minutes=30)).isoformat()))["email"]

    assert email["status"] == "pending"
    assert datetime.fromisoformat(email["next_attempt_at"]) == ends_at


def test_a_high_priority_notification_goes_through_quiet_hours(api, ada):
    start, end, _ = quiet_window_around_now()
    prefer(api, quiet_hours={"start": start, "end": end})

    assert by_channel(send(api, priority="high"))["email"]["status"] == "queued"


def test_quiet_hours_that_do_not_cover_now_hold_nothing(api, ada):
    local_now = timezone.now().astimezone(TOKYO)
    start, end = local_now + timedelta(hours=1), local_now + timedelta(hours=2)
    prefer(api, quiet_hours={"start": f"{start:%H:%M}", "end": f"{end:%H:%M}"})

    assert by_channel(send(api))["email"]["status"] == "queued"


def test_a_held_delivery_is_queued_by_the_sweep_once_quiet_hours_are_over(api, ada):
    start, end, _ = quiet_window_around_now()
    prefer(api, quiet_hours={"start": start, "end": end})
    notification = send(api)
    email = by_channel(notification)["email"]
    # Two hours later, as far as the delivery can tell.
    later = timezone.now() - timedelta(seconds=1)
    Delivery.objects.filter(id=email["id"]).update(next_attempt_at=later, recheck_at=later)

    assert deliveries_sweep().requeued == 1

    [released] = [d for d in api.get(f"/api/v1/notifications/{notification['id']}").json()["deliveries"]
                  if d["channel"] == "email"]
    assert released["status"] == "queued"
    assert released["hold_reason"] == "held by the user's quiet hours"  # why it went out late


@pytest.mark.parametrize(
    ("local_moment", "release"),
    [
        (datetime(2026, 11, 21, 23, 30), datetime(2026, 11, 22, 7, 0)),  # before midnight: tomorrow morning
        (datetime(2026, 11, 22, 6, 59), datetime(2026, 11, 22, 7, 0)),  # after midnight: this morning
        (datetime(2026, 11, 21, 22, 0), datetime(2026, 11, 22, 7, 0)),  # the start is inside
        (datetime(2026, 11, 22, 7, 0), None),  # the end is outside
        (datetime(2026, 11, 21, 12, 0), None),
    ],
)
def test_quiet_hours_across_midnight(local_moment, release):
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    user = Recipient(timezone="Europe/Paris", quiet_hours_start=time(22, 0), quiet_hours_end=time(7, 0))

    released = quiet_hours_release_at(recipient=user, priority="normal",
                                      moment=local_moment.replace(tzinfo=paris))

    assert released == (release.replace(tzinfo=paris) if release else None)


def test_a_user_without_a_time_zone_has_quiet_hours_in_utc():
    user = Recipient(timezone="", quiet_hours_start=time(22, 0), quiet_hours_end=time(7, 0))

    released = quiet_hours_release_at(recipient=user, priority="low",
                                      moment=datetime(2026, 11, 21, 23, 0, tzinfo=UTC))

    assert released == datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
