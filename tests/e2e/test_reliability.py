"""What an operator relies on, against real processes: retries that back off, permanent errors
that stop at once, dead letters that can be replayed, and messages that cannot be a delivery
kept in the broker's dead-letter queue."""

import re
import subprocess
import sys
import uuid
from datetime import timedelta
from itertools import pairwise

import pytest
import requests
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.notifications.models import Delivery, DeliveryAttempt
from apps.notifications.outbox.deliveries import DeliveryMessage, deliveries_publish
from tests.e2e.conftest import notification_when_final, queue_depth
from tests.notifications.factories import DeliveryFactory, NotificationFactory
from tests.support.processes import REPO_ROOT, wait_until

# Beat runs too, as in production: a publish that fails (RabbitMQ restarted by another run on
# this machine) is the sweep's to publish again, and a test must not hang on it.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("beat")]

MAX_ATTEMPTS = 8  # the email channel's default (NOTIFIER_EMAIL_MAX_ATTEMPTS)


@pytest.fixture
def notify(http):
    """notify(user) → the notification id of a fresh email to that user."""
    assert http.put("/api/v1/templates/alert", json={"channels": {"email": {"subject": "Alert", "text": "Hi {{ n }}"}}}).ok

    def notify(user: str) -> str:
        assert http.put(f"/api/v1/users/{user}", json={"email": f"{user}@example.com"}).ok
        response = http.post("/api/v1/notifications", json={"to": user, "template": "alert", "data": {"n": user}})
        assert response.status_code == 202, response.text
        return response.json()["id"]

    return notify


def final(http, notification_id: str, timeout: float = 60) -> dict:
    """The notification's single delivery once it reaches a final state."""
    [delivery] = notification_when_final(http, notification_id, timeout=timeout)["deliveries"]
    return delivery


def test_a_provider_failing_transiently_n_times_then_succeeding(http, worker, smtp, notify):
    smtp.fail_next(3, 451)

    delivery = final(http, notify("flaky"))

    assert delivery["status"] == "sent"
    assert [(a["outcome"], a["error_code"]) for a in delivery["attempts"]] == [
        ("transient_error", "451"), ("transient_error", "451"), ("transient_error", "451"), ("sent", "")]
    assert len(smtp.received_for("flaky@example.com")) == 1
    # Each wait is longer than the one before: planned by the pipeline, and as observed.
    attempts = list(DeliveryAttempt.objects.filter(delivery_id=delivery["id"]).order_by("number"))
    planned = [(a.next_attempt_at - a.started_at).total_seconds() for a in attempts[:-1]]
    observed = [(b.started_at - a.started_at).total_seconds() for a, b in pairwise(attempts)]
    assert planned == sorted(planned) and planned[-1] > planned[0] * 2, planned
    assert all(o >= p - 0.05 for o, p in zip(observed, planned, strict=True)), (observed, planned)
    assert observed[-1] > observed[0], observed


def test_a_permanent_error_fails_after_one_attempt_with_the_providers_answer(http, worker, smtp, notify):
    smtp.reject_recipient("gone@example.com", 550, "5.1.1 mailbox unavailable")

    delivery = final(http, notify("gone"))

    assert delivery["status"] == "failed"
    assert [(a["outcome"], a["error_code"]) for a in delivery["attempts"]] == [("permanent_error", "550")]
    assert delivery["last_error"] == {"code": "550", "message": "SMTP 550 5.1.1 mailbox unavailable"}
    assert smtp.received_for("gone@example.com") == []


@pytest.mark.timeout(240)  # two deliveries through every retry (up to 90 s each), then replays
def test_exhausted_retries_go_dead_and_replay_from_the_admin_and_the_command(http, web, worker, smtp, notify, e2e_env):
    smtp.fail_next(2 * MAX_ATTEMPTS, 451)  # every attempt of both deliveries fails
    by_admin, by_command = notify("admin-replay"), notify("cli-replay")

    dead = [final(http, n, timeout=90) for n in (by_admin, by_command)]

    assert [d["status"] for d in dead] == ["dead", "dead"]
    assert [len(d["attempts"]) for d in dead] == [MAX_ATTEMPTS, MAX_ATTEMPTS]
    assert smtp.messages == []

    admin_replay(web, dead[0]["id"])
    output = subprocess.run([sys.executable, "manage.py", "dlq", "replay", "--id", dead[1]["id"]], cwd=REPO_ROOT,
                            env=e2e_env, capture_output=True, text=True, timeout=60, check=True).stdout
    assert f"Replayed {dead[1]['id']}" in output and "Replayed 1 dead letter(s)." in output

    for notification_id, user in ((by_admin, "admin-replay"), (by_command, "cli-replay")):
        delivery = final(http, notification_id)
        assert delivery["status"] == "sent"
        # A fresh budget, and the history kept: the dead attempts, then the one that worked.
        assert [a["number"] for a in delivery["attempts"]] == list(range(1, MAX_ATTEMPTS + 2))
        assert delivery["attempts"][-1]["outcome"] == "sent"
        assert len(smtp.received_for(f"{user}@example.com")) == 1
    actions = {str(d.id): list(d.operator_actions.values_list("action", "actor_label"))
               for d in Delivery.objects.filter(id__in=[d["id"] for d in dead])}
    assert actions[dead[0]["id"]] == [("replay", "operator")]
    assert actions[dead[1]["id"]][0][0] == "replay" and actions[dead[1]["id"]][0][1].startswith("cli:")


def admin_replay(base_url: str, delivery_id: str) -> None:
    """Log into the admin of the web process as an operator and run Replay on one dead letter."""
    get_user_model().objects.create_superuser("operator", "operator@example.com", "a-long-password")
    with requests.Session() as browser:
        browser.get(f"{base_url}/admin/login/", timeout=15)
        login = browser.post(f"{base_url}/admin/login/?next=/admin/", timeout=15, data={
            "username": "operator", "password": "a-long-password", "next": "/admin/",
            "csrfmiddlewaretoken": browser.cookies["csrftoken"]})
        assert login.url.endswith("/admin/"), login.text[:500]
        dead_letters = f"{base_url}/admin/notifications/deadletter/"
        assert delivery_id in browser.get(dead_letters, timeout=15).text
        selection = {"action": "replay", "_selected_action": delivery_id, "index": 0,
                     "csrfmiddlewaretoken": browser.cookies["csrftoken"]}
        asked = browser.post(dead_letters, timeout=15, data=selection)
        assert "Replay 1 delivery" in asked.text  # a confirmation first
        response = browser.post(dead_letters, timeout=15, data={**selection, "confirmed": "yes"})
        assert "Replayed 1 deliveries." in response.text


def test_a_message_for_a_delivery_already_final_is_acknowledged_and_does_nothing(http, worker, smtp, notify):
    delivery = final(http, notify("once"))
    assert delivery["status"] == "sent"

    assert deliveries_publish([DeliveryMessage(delivery_id=delivery["id"], channel="email", priority="normal")]) == 1

    wait_until(lambda: f"delivery {delivery['id']} is not claimable" in worker.log(), timeout=20,
               message="the worker to drop the message")
    wait_until(lambda: queue_depth("notifications.email") == 0, timeout=10, message="the message to be acknowledged")
    assert len(smtp.received_for("once@example.com")) == 1
    assert DeliveryAttempt.objects.filter(delivery_id=delivery["id"]).count() == 1


def test_a_message_that_names_no_delivery_goes_to_the_broker_dead_letter_queue_and_can_be_replayed(
    worker, smtp, e2e_env
):
    not_yet = uuid.uuid4()  # a delivery whose row is not there when its message arrives
    assert deliveries_publish([DeliveryMessage(delivery_id=str(not_yet), channel="email", priority="normal"),
                               DeliveryMessage(delivery_id="garbage", channel="email", priority="normal")]) == 2

    def dlq(*args) -> str:
        return subprocess.run([sys.executable, "manage.py", "dlq", *args, "--broker", "--channel", "email"],
                              cwd=REPO_ROOT, env=e2e_env, capture_output=True, text=True, timeout=60, check=True).stdout

    def listed():
        out = dlq("list")
        return out if str(not_yet) in out and "garbage" in out else None

    listing = wait_until(listed, timeout=30, interval=0.5, message="both messages in notifications.email.dead")
    assert re.search(rf"notifications\.email\.dead: task notifier\.deliveries\.send .*'{not_yet}'.*\(rejected", listing)

    delivery = DeliveryFactory(id=not_yet, recheck_at=timezone.now() + timedelta(hours=1),
                               notification=NotificationFactory(recipient__email="late@example.com"))
    replayed = dlq("replay", "--id", str(not_yet))
    assert "→ notifications.email" in replayed and "Replayed 1 broker dead letter(s)." in replayed

    wait_until(lambda: smtp.received_for("late@example.com"), timeout=30, message="the replayed message to be sent")
    delivery.refresh_from_db()
    assert delivery.status == "sent"
    remaining = dlq("list")
    assert "garbage" in remaining and str(not_yet) not in remaining
    dlq("discard", "--id", "garbage")
    assert "garbage" not in dlq("list")
