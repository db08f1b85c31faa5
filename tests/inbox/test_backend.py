"""The in-app channel through the worker's pipeline (claim → render → InboxBackend → record)."""

import copy
import threading
from dataclasses import replace

import psycopg
import pytest
from django.db import connection

from apps.channels.base import PermanentProviderError
from apps.channels.registry import backends_reset
from apps.inbox.backend import InboxBackend
from apps.inbox.models import InboxMessage
from apps.notifications.delivery.sending import delivery_send
from apps.notifications.models import Delivery, DeliveryStatus
from tests.channels.messages import message_for
from tests.inbox.factories import IN_APP_PARTS
from tests.notifications.factories import queued_delivery
from tests.users.factories import RecipientFactory


def attempts(delivery: Delivery) -> list[tuple[str, str]]:
    return [(a.outcome, a.error_code) for a in delivery.attempts.order_by("number")]


@pytest.mark.django_db
def test_an_in_app_delivery_lands_in_the_users_inbox_rendered():
    ada = RecipientFactory(external_id="ada")
    delivery = queued_delivery(recipient=ada, channel="in_app", parts=IN_APP_PARTS, data={"name": "Ada", "order": "42"})

    outcome = delivery_send(delivery_id=str(delivery.id))

    assert outcome.status == DeliveryStatus.SENT
    [message] = InboxMessage.objects.filter(recipient=ada)
    assert (message.title, message.body, message.url) == ("Hello Ada", "Your order 42 shipped.", "https://shop.example/o/42")
    assert message.read_at is None and message.project_id == ada.project_id
    delivery.refresh_from_db()
    assert delivery.provider_message_id == f"inbox:{message.id}"


@pytest.mark.django_db
def test_a_delivery_sent_again_after_a_lost_worker_leaves_one_message():
    ada = RecipientFactory()
    delivery = queued_delivery(recipient=ada, channel="in_app", parts=IN_APP_PARTS)
    delivery_send(delivery_id=str(delivery.id))
    # The worker died after storing the message but before recording it: the sweep queues it again.
    Delivery.objects.filter(id=delivery.id).update(status=DeliveryStatus.QUEUED)

    assert delivery_send(delivery_id=str(delivery.id)).status == DeliveryStatus.SENT

    assert InboxMessage.objects.filter(recipient=ada).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["javascript:alert(document.cookie)", "//evil.example/x", "data:text/html,hi", "https://"])
def test_a_link_that_is_not_http_or_a_path_fails_the_delivery_for_good(url):
    ada = RecipientFactory()
    delivery = queued_delivery(recipient=ada, channel="in_app", parts={**IN_APP_PARTS, "url": "{{ link }}"},
                               data={"link": url})

    assert delivery_send(delivery_id=str(delivery.id)).status == DeliveryStatus.FAILED

    assert attempts(delivery) == [("permanent_error", "invalid_url")]
    assert not InboxMessage.objects.exists()


@pytest.mark.django_db
def test_a_path_is_a_fine_link():
    delivery = queued_delivery(recipient=RecipientFactory(), channel="in_app", parts={**IN_APP_PARTS, "url": "/orders/7"})
    assert delivery_send(delivery_id=str(delivery.id)).status == DeliveryStatus.SENT
    assert InboxMessage.objects.get().url == "/orders/7"


@pytest.mark.django_db
def test_a_user_deleted_before_sending_fails_the_delivery_for_good():
    ada = RecipientFactory()
    delivery = queued_delivery(recipient=ada, channel="in_app", parts=IN_APP_PARTS)
    ada.delete()

    assert delivery_send(delivery_id=str(delivery.id)).status == DeliveryStatus.FAILED
    assert attempts(delivery) == [("permanent_error", "user_deleted")]


@pytest.mark.django_db
def test_a_user_deleted_while_sending_is_a_permanent_error():
    ada = RecipientFactory()
    delivery = queued_delivery(recipient=ada, channel="in_app", parts=IN_APP_PARTS)
    message = message_for("in_app", {"title": "t", "body": "b"}, project_id=ada.project_id, recipient_id=ada.id)
    message = replace(message, delivery_id=str(delivery.id))
    ada.delete()  # after the pipeline built the message, before the backend stores it

    with pytest.raises(PermanentProviderError) as error:
        InboxBackend().send(message)
    assert error.value.code == "user_deleted"


@pytest.fixture
def short_lock_timeout(settings):
    channels = copy.deepcopy(settings.NOTIFIER_CHANNELS)
    channels["in_app"]["OPTIONS"]["lock_timeout_seconds"] = 0.3
    settings.NOTIFIER_CHANNELS = channels
    backends_reset()
    yield
    backends_reset()


@pytest.mark.django_db(transaction=True)
def test_a_database_that_cannot_store_the_message_now_is_retried_and_then_it_lands(short_lock_timeout):
    ada = RecipientFactory()
    delivery = queued_delivery(recipient=ada, channel="in_app", parts=IN_APP_PARTS)
    db = connection.settings_dict
    # Another transaction holds the user's row (a long migration, a stuck admin session...).
    blocker = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"] or "postgres",
                              password=db["PASSWORD"] or None, dbname=db["NAME"])
    try:
        blocker.execute("SELECT 1 FROM recipients_recipient WHERE id = %s FOR UPDATE", [ada.id])

        first = delivery_send(delivery_id=str(delivery.id))
    finally:
        blocker.rollback()
        blocker.close()

    assert first.status == DeliveryStatus.RETRYING
    assert not InboxMessage.objects.exists()
    assert delivery_send(delivery_id=str(delivery.id)).status == DeliveryStatus.SENT
    assert attempts(delivery) == [("transient_error", "database"), ("sent", "")]
    assert InboxMessage.objects.filter(recipient=ada).count() == 1


@pytest.mark.django_db(transaction=True)
def test_deliveries_for_one_user_sent_at_once_all_land():
    ada = RecipientFactory()
    deliveries = [queued_delivery(recipient=ada, channel="in_app", parts=IN_APP_PARTS) for _ in range(4)]
    outcomes = []

    def send(delivery):
        try:
            outcomes.append(delivery_send(delivery_id=str(delivery.id)).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(d,)) for d in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes == [DeliveryStatus.SENT] * 4
    assert InboxMessage.objects.filter(recipient=ada).count() == 4
