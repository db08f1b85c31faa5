"""The dead-letter queue: listing, replaying and discarding, from the services, the command and the admin."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from kombu import Exchange, Queue

from apps.notifications.models import DeliveryOperatorAction, DeliveryStatus
from apps.notifications.operations.dead_letters import dead_letters_discard, dead_letters_list, dead_letters_replay
from tests.notifications.factories import DeliveryFactory, dead_delivery

pytestmark = pytest.mark.django_db


def dlq(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("dlq", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


class TestList:
    def test_the_queue_holds_dead_deliveries_not_discarded_oldest_first(self):
        newer = dead_delivery()
        older = dead_delivery(status_changed_at=timezone.now() - timedelta(days=2))
        dead_delivery(discarded_at=timezone.now())
        DeliveryFactory(status=DeliveryStatus.FAILED)
        DeliveryFactory(status=DeliveryStatus.SENT)

        assert list(dead_letters_list()) == [older, newer]

    def test_filters(self):
        email = dead_delivery()
        sms = dead_delivery(channel="sms")
        old = dead_delivery(status_changed_at=timezone.now() - timedelta(days=2))

        assert list(dead_letters_list(channel="sms")) == [sms]
        assert list(dead_letters_list(since=timezone.now() - timedelta(days=1))) == [email, sms]
        assert list(dead_letters_list(ids=[str(old.id)])) == [old]


class TestReplay:
    def test_a_replay_queues_it_with_a_fresh_budget_and_keeps_its_history(self, admin_user, django_capture_on_commit_callbacks):
        delivery = dead_delivery(attempts=3)

        with django_capture_on_commit_callbacks() as published:
            result = dead_letters_replay(delivery_ids=[delivery.id], actor=admin_user, note="SMTP fixed")

        delivery.refresh_from_db()
        assert result.done == [delivery] and result.skipped == {}
        assert delivery.status == DeliveryStatus.QUEUED
        assert (delivery.budget_attempts, delivery.attempt_count) == (0, 3)
        assert delivery.next_attempt_at is None and delivery.recheck_at > timezone.now()
        assert delivery.attempts.count() == 3
        assert len(published) == 1  # the message goes out once the replay is committed
        [action] = delivery.operator_actions.all()
        assert (action.action, action.actor, action.actor_label, action.previous_status, action.note) == (
            "replay", admin_user, admin_user.username, "dead", "SMTP fixed")

    def test_failed_deliveries_can_be_replayed_too(self):
        delivery = DeliveryFactory(status=DeliveryStatus.FAILED, last_error_code="535")

        assert dead_letters_replay(delivery_ids=[delivery.id], actor_label="ops").done == [delivery]

    def test_what_is_not_dead_or_failed_is_skipped_and_untouched(self):
        sent = DeliveryFactory(status=DeliveryStatus.SENT)
        discarded = dead_delivery(discarded_at=timezone.now())

        result = dead_letters_replay(delivery_ids=[sent.id, discarded.id], actor_label="ops")

        assert result.done == []
        assert result.skipped == {str(sent.id): "sent", str(discarded.id): "discarded"}
        sent.refresh_from_db()
        assert sent.status == DeliveryStatus.SENT
        assert not DeliveryOperatorAction.objects.exists()


class TestDiscard:
    def test_a_discarded_delivery_stays_dead_and_leaves_the_queue(self, admin_user):
        delivery = dead_delivery()

        result = dead_letters_discard(delivery_ids=[delivery.id], actor=admin_user)

        delivery.refresh_from_db()
        assert result.done == [delivery]
        assert delivery.status == DeliveryStatus.DEAD and delivery.discarded_at is not None
        assert list(dead_letters_list()) == []
        assert delivery.operator_actions.get().action == "discard"

    def test_only_dead_deliveries_can_be_discarded(self):
        failed = DeliveryFactory(status=DeliveryStatus.FAILED)

        assert dead_letters_discard(delivery_ids=[failed.id], actor_label="ops").skipped == {str(failed.id): "failed"}


class TestCommand:
    def test_list_prints_each_dead_letter_with_its_error(self):
        delivery = dead_delivery(error_code="451")

        out, _ = dlq("list")

        assert str(delivery.id) in out and "451" in out and "after 3 attempt(s)" in out
        assert out.rstrip().endswith("Listed 1 dead letter(s).")

    def test_replay_by_channel_and_since(self):
        recent_email = dead_delivery()
        dead_delivery(status_changed_at=timezone.now() - timedelta(days=3))
        sms = dead_delivery(channel="sms")
        since = (timezone.now() - timedelta(days=1)).isoformat()

        out, _ = dlq("replay", "--channel", "email", "--since", since)

        assert f"Replayed {recent_email.id}" in out and "Replayed 1 dead letter(s)." in out
        recent_email.refresh_from_db()
        sms.refresh_from_db()
        assert (recent_email.status, sms.status) == (DeliveryStatus.QUEUED, DeliveryStatus.DEAD)
        action = recent_email.operator_actions.get()
        assert action.actor is None and action.actor_label.startswith("cli:")

    def test_a_dry_run_changes_nothing(self):
        delivery = dead_delivery()

        out, _ = dlq("discard", "--id", str(delivery.id), "--dry-run")

        assert f"Would discard {delivery.id}" in out and "Would discard 1 dead letter(s)." in out
        delivery.refresh_from_db()
        assert delivery.discarded_at is None and not delivery.operator_actions.exists()

    def test_ids_not_in_the_queue_are_reported(self):
        sent = DeliveryFactory(status=DeliveryStatus.SENT)

        out, err = dlq("replay", "--id", str(sent.id))

        assert f"Skipped {sent.id}" in err and "Replayed 0 dead letter(s)." in out

    @pytest.mark.parametrize("args", [["list", "--since", "yesterday"], ["list", "--id", "nope"]])
    def test_bad_arguments_are_refused(self, args):
        with pytest.raises(CommandError):
            dlq(*args)


class TestAdmin:
    def changelist(self, admin_client, model: str, **params):
        return admin_client.get(reverse(f"admin:notifications_{model}_changelist"), params)

    def test_dead_letters_are_listed_with_filters_for_channel_error_and_age(self, admin_client):
        email = dead_delivery(error_code="451")
        old_sms = dead_delivery(channel="sms", error_code="worker_lost", status_changed_at=timezone.now() - timedelta(days=9))
        dead_delivery(discarded_at=timezone.now())
        DeliveryFactory(status=DeliveryStatus.SENT)

        def listed(**params):
            response = self.changelist(admin_client, "deadletter", **params)
            assert response.status_code == 200
            return {str(d.id) for d in response.context["cl"].result_list}

        assert listed() == {str(email.id), str(old_sms.id)}
        assert listed(channel="sms") == {str(old_sms.id)}
        assert listed(last_error_code="451") == {str(email.id)}
        assert listed(age="day") == {str(email.id)}
        assert listed(age="older") == {str(old_sms.id)}
        assert listed(q=str(email.notification_id)) == {str(email.id)}
        assert listed(q="not-a-uuid") == set()

    def test_replay_and_discard_actions_are_recorded_with_the_operator(self, admin_client, admin_user):
        replayed, discarded = dead_delivery(), dead_delivery()
        url = reverse("admin:notifications_deadletter_changelist")

        for action, delivery in (("replay", replayed), ("discard", discarded)):
            asked = admin_client.post(url, {"action": action, "_selected_action": [delivery.id]})
            assert asked.status_code == 200 and "confirmed" in asked.content.decode()  # nothing done before confirming
            admin_client.post(url, {"action": action, "_selected_action": [delivery.id], "confirmed": "yes"})

        replayed.refresh_from_db()
        discarded.refresh_from_db()
        assert replayed.status == DeliveryStatus.QUEUED
        assert discarded.discarded_at is not None
        actions = DeliveryOperatorAction.objects.order_by("created_at")
        assert [(a.delivery_id, a.action, a.actor) for a in actions] == [
            (replayed.id, "replay", admin_user), (discarded.id, "discard", admin_user)]

    def test_a_delivery_page_shows_its_attempts_and_what_operators_did(self, admin_client, admin_user):
        delivery = dead_delivery(error_code="451")
        dead_letters_replay(delivery_ids=[delivery.id], actor=admin_user)

        response = admin_client.get(reverse("admin:notifications_delivery_change", args=[delivery.id]))

        assert response.status_code == 200
        page = response.content.decode()
        assert "SMTP 451 try again later" in page and admin_user.username in page

    def test_the_notification_and_audit_pages_open(self, admin_client):
        delivery = dead_delivery()
        dead_letters_discard(delivery_ids=[delivery.id], actor_label="cli:ops")

        assert self.changelist(admin_client, "notification").status_code == 200
        assert admin_client.get(reverse("admin:notifications_notification_change",
                                        args=[delivery.notification_id])).status_code == 200
        assert "cli:ops" in self.changelist(admin_client, "deliveryoperatoraction").content.decode()


class TestBrokerDeadLetters:
    """Messages RabbitMQ dead-lettered: read, sent back to their queue, or dropped."""

    @pytest.fixture
    def dead_lettered(self, settings, rabbitmq_vhost):
        """A private channel queue with its dead-letter queue; `reject(body)` dead-letters a message."""
        from celery_app import app

        exchange = Exchange(settings.NOTIFIER_DEAD_LETTER_EXCHANGE, type="direct", durable=True)
        source = Queue("notifications.dlqtest", routing_key="notifications.dlqtest",
                       queue_arguments={"x-dead-letter-exchange": settings.NOTIFIER_DEAD_LETTER_EXCHANGE})
        dead = Queue("notifications.dlqtest.dead", exchange, routing_key="notifications.dlqtest", durable=True)
        settings.NOTIFIER_DEAD_LETTER_QUEUES = [dead]

        class Broker:
            def reject(self, delivery_id: str, task_id: str) -> None:
                with app.connection_for_write() as connection:
                    channel = connection.default_channel
                    connection.Producer(channel).publish(
                        json.dumps([[delivery_id], {}, {}]), exchange="", routing_key=source.name,
                        content_type="application/json", content_encoding="utf-8",
                        headers={"task": "notifier.deliveries.send", "id": task_id}, declare=[source],
                    )
                    source(channel).get(no_ack=False).reject(requeue=False)

            def take(self, queue: Queue) -> list[str]:
                with app.connection_for_write() as connection:
                    bound = queue(connection.default_channel)
                    bound.declare()
                    taken = []
                    while (message := bound.get(no_ack=True)) is not None:
                        taken.append(json.loads(message.body)[0][0])
                    return taken

        broker = Broker()
        broker.source, broker.dead = source, dead
        with app.connection_for_write() as connection:
            for queue in (source, dead):
                queue(connection.default_channel).declare()
                queue(connection.default_channel).purge()
        yield broker
        with app.connection_for_write() as connection:
            for queue in (source, dead):
                queue(connection.default_channel).delete()

    def test_list_shows_them_and_leaves_them_there(self, dead_lettered):
        dead_lettered.reject("not-a-delivery", task_id="task-1")

        out, _ = dlq("list", "--broker")

        assert "notifications.dlqtest.dead" in out and "task-1" in out and "not-a-delivery" in out
        assert "rejected 1x" in out and "Listed 1 broker dead letter(s)." in out
        assert dead_lettered.take(dead_lettered.dead) == ["not-a-delivery"]

    def test_replay_sends_them_back_to_the_queue_they_came_from(self, dead_lettered):
        dead_lettered.reject("d-1", task_id="task-1")
        dead_lettered.reject("d-2", task_id="task-2")

        out, _ = dlq("replay", "--broker", "--id", "d-2")

        assert "→ notifications.dlqtest" in out and "Replayed 1 broker dead letter(s)." in out
        assert dead_lettered.take(dead_lettered.source) == ["d-2"]
        assert dead_lettered.take(dead_lettered.dead) == ["d-1"]

    def test_discard_drops_them_and_a_dry_run_does_not(self, dead_lettered):
        dead_lettered.reject("d-1", task_id="task-1")

        dlq("discard", "--broker", "--dry-run")
        assert dlq("list", "--broker")[0].rstrip().endswith("Listed 1 broker dead letter(s).")
        dlq("discard", "--broker", "--since", (timezone.now() - timedelta(minutes=1)).isoformat())

        assert dead_lettered.take(dead_lettered.dead) == []
