"""Runs: steps in order through the pipeline, conditions decided from the database when due."""

import pytest
from django.utils import timezone

from apps.channels.base import PermanentProviderError
from apps.inbox.models import InboxMessage
from apps.notifications.delivery.sending import deliveries_send
from apps.notifications.models import Delivery, DeliveryStatus
from apps.users.models import Device
from apps.workflows.models import RunState, WorkflowRun
from apps.workflows.scan import runs_scan
from tests.notifications import backends
from tests.workflows.conftest import put_workflow
from tests.workflows.helpers import start, steps_of, travel, work

pytestmark = pytest.mark.django_db


@pytest.fixture
def fallback(api, template):
    assert put_workflow(api, "fallback", template="alert",
                        steps=[{"channel": "push"}, {"channel": "sms", "if": "not_delivered"}]).status_code == 201


@pytest.fixture
def escalation(api, template):
    assert put_workflow(api, "escalate", template="alert",
                        steps=[{"channel": "in_app"}, {"wait": 20}, {"channel": "email", "if": "unread"}]).status_code == 201


def sent_channels(outbox) -> list[str]:
    return [m.channel for m in outbox]


def test_fallback_sends_the_sms_when_the_push_fails(api, user, fallback, channels):
    backends.script.append(PermanentProviderError("UNREGISTERED", code="UNREGISTERED"))
    response = start(api, "fallback")
    assert response.status_code == 202 and response.json()["deliveries"] == []

    work()

    assert sent_channels(channels) == ["sms"]
    assert steps_of(api, response.json()["id"]) == [("push", "done"), ("sms", "done")]
    assert api.get(f"/api/v1/notifications/{response.json()['id']}").json()["status"] == "sent"


def test_fallback_sends_no_sms_when_the_push_reached_its_provider(api, user, fallback, channels):
    response = start(api, "fallback")
    work()

    assert backends.accepted and channels == []
    workflow = api.get(f"/api/v1/notifications/{response.json()['id']}").json()["workflow"]
    assert workflow["state"] == "done"
    assert workflow["steps"][1]["state"] == "skipped"
    assert "push delivery reached its provider" in workflow["steps"][1]["reason"]


def test_fallback_waits_for_a_push_in_flight_and_decides_when_it_settles(
        api, user, fallback, channels, django_capture_on_commit_callbacks):
    response = start(api, "fallback")
    runs_scan()  # the push delivery is created and queued, not yet sent
    run = WorkflowRun.objects.get()
    assert run.awaiting_deliveries and steps_of(api, response.json()["id"])[1] == ("sms", "waiting")
    assert not Delivery.objects.filter(channel="sms").exists()

    backends.script.append(PermanentProviderError("gone", code="UNREGISTERED"))
    with django_capture_on_commit_callbacks(execute=True):
        deliveries_send(delivery_ids=[str(Delivery.objects.get(channel="push").id)])
    run.refresh_from_db()
    assert run.due_at <= timezone.now()  # woken at once, not at the 60 s safety recheck
    runs_scan()
    assert Delivery.objects.get(channel="sms").status == DeliveryStatus.QUEUED


def test_fallback_skips_push_for_a_user_without_a_device_and_sends_the_sms(api, user, fallback, channels, settings):
    settings.NOTIFIER_CHANNELS["push"] = {"BACKEND": "apps.channels.backends.locmem.OutboxBackend",
                                          "OPTIONS": {"like": "apps.channels.backends.fcm.FcmPushBackend"}}
    response = start(api, "fallback")
    work()

    assert sent_channels(channels) == ["sms"]
    detail = api.get(f"/api/v1/notifications/{response.json()['id']}").json()
    assert [(d["channel"], d["status"]) for d in detail["deliveries"]] == [("push", "skipped"), ("sms", "sent")]


def test_escalation_emails_a_user_who_did_not_read_after_the_wait(api, user, escalation, channels):
    response = start(api, "escalate")
    work()
    assert InboxMessage.objects.filter(read_at=None).count() == 1 and channels == []
    workflow = api.get(f"/api/v1/notifications/{response.json()['id']}").json()["workflow"]
    assert workflow["steps"][1]["state"] == "waiting" and workflow["steps"][1]["due_at"]

    travel(19)
    work()
    assert channels == []  # not yet: the wait is 20 s
    travel(2)
    work()
    assert sent_channels(channels) == ["email"]
    assert steps_of(api, response.json()["id"]) == [("in_app", "done"), ("wait 20", "done"), ("email", "done")]


def test_escalation_sends_nothing_more_to_a_user_who_read_within_the_wait(api, user, escalation, channels):
    response = start(api, "escalate")
    work()
    message = InboxMessage.objects.get()
    InboxMessage.objects.filter(id=message.id).update(read_at=timezone.now())

    travel(21)
    work()
    assert channels == []
    workflow = api.get(f"/api/v1/notifications/{response.json()['id']}").json()["workflow"]
    assert workflow["steps"][2]["state"] == "skipped" and "was read" in workflow["steps"][2]["reason"]
    assert workflow["state"] == "done"


def test_cancel_during_the_wait_stops_every_later_step(api, user, escalation, channels):
    response = start(api, "escalate")
    work()
    cancelled = api.post(f"/api/v1/notifications/{response.json()['id']}/cancel")
    assert cancelled.status_code == 200
    assert [s["state"] for s in cancelled.json()["workflow"]["steps"]] == ["done", "cancelled", "cancelled"]

    travel(3600)
    work()
    assert channels == [] and not Delivery.objects.filter(channel="email").exists()
    assert WorkflowRun.objects.get().state == RunState.CANCELLED


def test_a_channel_step_obeys_preferences_read_when_it_runs(api, user, escalation, channels):
    start(api, "escalate")
    work()
    assert api.put("/api/v1/users/ada/preferences", {"channels": {"email": False}}, format="json").status_code == 200
    travel(21)
    work()
    email = Delivery.objects.get(channel="email")
    assert email.status == DeliveryStatus.SKIPPED and "email" in email.skip_reason and channels == []


def test_a_channel_step_is_held_by_quiet_hours(api, user, fallback, channels, settings):
    settings.NOTIFIER_CHANNELS["push"] = {"BACKEND": "apps.channels.backends.locmem.OutboxBackend",
                                          "OPTIONS": {"like": "apps.channels.backends.fcm.FcmPushBackend"}}
    Device.objects.create(recipient=user, token="tok", platform="android")
    assert api.put("/api/v1/users/ada/preferences", {"quiet_hours": {"start": "00:00", "end": "23:59"}},
                   format="json").status_code == 200
    start(api, "fallback")
    runs_scan()
    push = Delivery.objects.get(channel="push")
    assert push.status == DeliveryStatus.PENDING and "quiet hours" in push.hold_reason


def test_a_repeated_idempotency_key_starts_one_run(api, user, fallback):
    first = start(api, "fallback", idempotency_key="k1")
    again = start(api, "fallback", idempotency_key="k1")
    assert first.status_code == again.status_code == 202 and first.json()["id"] == again.json()["id"]
    assert WorkflowRun.objects.count() == 1


def test_bulk_items_start_runs(api, user, fallback, channels):
    response = api.post("/api/v1/notifications/bulk", {"notifications": [
        {"to": "ada", "workflow": "fallback", "data": {"name": "A"}},
        {"to": "ada", "workflow": "missing"},
        {"to": "ada", "template": "alert", "data": {"name": "B"}, "channels": ["email"]},
    ]}, format="json")
    results = response.json()["results"]
    assert "id" in results[0] and results[1]["error"]["code"] == "unknown_workflow" and "id" in results[2]
    assert WorkflowRun.objects.count() == 1


def test_a_broadcast_of_a_workflow_starts_one_run_per_user(api, project, user, fallback, channels):
    from apps.notifications.intake.broadcasts import broadcast_fan_out
    from tests.users.factories import RecipientFactory

    RecipientFactory(project=project, external_id="grace", phone="+15005550007")
    response = api.post("/api/v1/broadcasts", {"workflow": "fallback", "to": ["ada", "grace"], "data": {"name": "x"}},
                        format="json")
    assert response.status_code == 202, response.content
    assert response.json()["workflow"] == "fallback"
    broadcast_fan_out(broadcast_id=response.json()["id"])
    assert api.get(f"/api/v1/broadcasts/{response.json()['id']}").json()["created"] == 2
    assert WorkflowRun.objects.count() == 2

    backends.script.extend([PermanentProviderError("gone", code="UNREGISTERED")] * 2)
    work()
    assert sent_channels(channels) == ["sms", "sms"]


def test_a_broadcast_of_a_workflow_that_does_not_exist_is_refused(api, user, template):
    response = api.post("/api/v1/broadcasts", {"workflow": "nope", "to": ["ada"]}, format="json")
    assert response.status_code == 422 and response.json()["error"]["details"] == {"workflow": "nope"}


def test_the_consoles_timeline_shows_the_runs_steps(api, user, escalation, channels, admin_client):
    from django.urls import reverse

    response = start(api, "escalate")
    work()
    page = admin_client.get(reverse("admin:notifications_notification_change", args=[response.json()["id"]]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "workflow escalate v1" in html and "run started" in html
    assert "step 2: wait 20 s" in html and "step 3: email if unread" in html
    assert 'data-status="pending"' in html and '>waiting<' in html  # the wait, with its due time


def test_an_sms_that_came_back_undelivered_counts_as_not_delivered(api, user, template, channels,
                                                                    django_capture_on_commit_callbacks):
    from apps.notifications.delivery.receipts import delivery_report_receipt

    put_workflow(api, "sms-then-email", template="alert",
                 steps=[{"channel": "sms"}, {"wait": 60}, {"channel": "email", "if": "not_delivered"}])
    start(api, "sms-then-email")
    work()
    sms = Delivery.objects.get(channel="sms")
    assert sms.status == DeliveryStatus.SENT
    Delivery.objects.filter(id=sms.id).update(provider_message_id="SM1")
    with django_capture_on_commit_callbacks(execute=True):
        delivery_report_receipt(channel="sms", provider_message_id="SM1", delivered=False, error_code="30003")

    travel(61)
    work()
    assert sent_channels(channels) == ["sms", "email"]


def test_a_run_cancelled_before_its_first_channel_step_shows_cancelled(api, user, template, channels):
    put_workflow(api, "later", template="alert", steps=[{"wait": "1h"}, {"channel": "email"}])
    response = start(api, "later")
    work()
    assert api.get(f"/api/v1/notifications/{response.json()['id']}").json()["status"] == "pending"
    cancelled = api.post(f"/api/v1/notifications/{response.json()['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["deliveries"] == []


def test_a_run_whose_step_cannot_be_written_does_not_hold_up_the_others(api, user, template, channels):
    from django.utils import timezone

    from tests.users.factories import RecipientFactory

    RecipientFactory(project=user.project, external_id="grace", email="grace@example.com")
    put_workflow(api, "mail", template="alert", steps=[{"channel": "email"}])
    stuck = start(api, "mail").json()["id"]
    start(api, "mail", to="grace")
    # A delivery on that channel already there: the step's INSERT is refused (a row it cannot write).
    Delivery.objects.create(notification_id=stuck, channel="email", status=DeliveryStatus.CANCELLED,
                            status_changed_at=timezone.now())

    work()
    [sent] = channels
    assert Delivery.objects.get(id=sent.delivery_id).notification.to == "grace"
    stuck_run = WorkflowRun.objects.get(notification_id=stuck)
    assert stuck_run.state == RunState.ACTIVE and stuck_run.due_at > timezone.now()
    assert WorkflowRun.objects.exclude(notification_id=stuck).get().state == RunState.DONE


def test_a_frequency_cap_counts_a_run_once_and_holds_its_channel_steps(api, user, template, channels):
    assert api.patch("/api/v1/project", {"frequency_caps": [{"category": "*", "limit": 1, "window": "1h", "over_cap": "skip"}]},
                     format="json").status_code == 200
    put_workflow(api, "two", template="alert", steps=[{"channel": "in_app"}, {"channel": "email"}])
    first = start(api, "two").json()["id"]
    second = start(api, "two").json()["id"]
    work()

    statuses = {n: {d["channel"]: d["status"] for d in api.get(f"/api/v1/notifications/{n}").json()["deliveries"]}
                for n in (first, second)}
    assert statuses[first] == {"in_app": "sent", "email": "sent"}  # one notification: one slot for both steps
    assert statuses[second] == {"in_app": "skipped", "email": "skipped"}


def test_a_critical_category_goes_through_preferences_in_a_step(api, user, escalation, channels):
    assert api.patch("/api/v1/project", {"critical_categories": ["security"]}, format="json").status_code == 200
    assert api.put("/api/v1/users/ada/preferences", {"channels": {"email": False}}, format="json").status_code == 200
    start(api, "escalate", category="security")
    travel(21)
    work()
    travel(21)
    work()
    assert sent_channels(channels) == ["email"]


def test_the_console_lists_workflows_and_runs(api, user, escalation, channels, admin_client):
    from django.urls import reverse

    start(api, "escalate")
    work()
    runs = admin_client.get(reverse("admin:workflows_workflowrun_changelist")).content.decode()
    assert "escalate v1" in runs and ">active<" in runs
    workflows = admin_client.get(reverse("admin:workflows_workflow_changelist")).content.decode()
    assert "escalate" in workflows
    from apps.workflows.models import Workflow

    page = admin_client.get(reverse("admin:workflows_workflow_change", args=[Workflow.objects.get().id]))
    assert page.status_code == 200 and "unread" in page.content.decode()  # the version's steps


def test_a_delivery_the_sweep_ends_dead_wakes_the_run_at_once(api, user, fallback, channels, settings,
                                                              django_capture_on_commit_callbacks):
    from apps.channels.registry import backends_reset
    from apps.notifications.delivery.sweep import deliveries_sweep

    start(api, "fallback")
    runs_scan()  # the push is queued; the SMS step waits for it
    Delivery.objects.filter(channel="push").update(recheck_at=timezone.now())
    del settings.NOTIFIER_CHANNELS["push"]  # push turned off: the sweep ends it dead
    backends_reset()
    with django_capture_on_commit_callbacks(execute=True):
        deliveries_sweep()
    assert Delivery.objects.get(channel="push").status == DeliveryStatus.DEAD
    assert WorkflowRun.objects.get().due_at <= timezone.now()  # woken, not left to the 60 s recheck
    runs_scan()
    assert Delivery.objects.get(channel="sms").status == DeliveryStatus.QUEUED


def test_send_at_delays_the_runs_first_step(api, user, fallback, channels):
    from datetime import timedelta

    start(api, "fallback", send_at=(timezone.now() + timedelta(hours=1)).isoformat())
    work()
    assert not Delivery.objects.exists()
    travel(3601)
    work()
    assert Delivery.objects.filter(channel="push").exists()
