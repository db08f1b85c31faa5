"""Webhooks through the real path: API → RabbitMQ → worker → a local receiving server."""

import socket
from datetime import datetime, timedelta

import pytest

from apps.core.egress import ADDRESS_NOT_ALLOWED_MESSAGE
from apps.projects.models import Project
from tests.e2e.conftest import notification_when_final
from tests.fakes.webhook import Reply
from tests.support.standard_webhooks import STATUS_WEBHOOK, WEBHOOK, standard_webhook_verified

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "whsec_e2e_91d3"
TEMPLATE = {"channels": {"webhook": {"event": "invoice.paid", "invoice": "{{ invoice }}", "amount": "{{ amount }}"}}}


@pytest.fixture
def receiver(receiver, http):
    project = http.patch("/api/v1/project", json={"webhook_url": receiver.url, "webhook_secret": SECRET})
    assert project.status_code == 200, project.text
    assert http.put("/api/v1/users/acme", json={"name": "Acme"}).status_code == 201
    assert http.put("/api/v1/templates/invoice-paid", json=TEMPLATE).status_code == 201
    return receiver


def send_invoice_paid(http) -> dict:
    response = http.post("/api/v1/notifications",
                         json={"to": "acme", "template": "invoice-paid", "data": {"invoice": "INV-7", "amount": "12.50"}})
    assert response.status_code == 202, response.text
    return notification_when_final(http, response.json()["id"])


def verified(request, secret: str = SECRET) -> bool:
    """The receiver's check, as docs/api.md describes it: the Standard Webhooks library."""
    return standard_webhook_verified(request, secret=secret, purpose=WEBHOOK)


def test_a_webhook_reaches_the_receiver_signed_and_reads_sent(http, worker, receiver):
    notification = send_invoice_paid(http)

    assert notification["status"] == "sent"
    [delivery] = notification["deliveries"]
    assert [a["outcome"] for a in delivery["attempts"]] == ["sent"]
    [request] = receiver.requests
    assert verified(request)
    assert not standard_webhook_verified(request, secret=SECRET, purpose=STATUS_WEBHOOK)
    assert request.headers["webhook-id"] == request.headers["X-Notifier-Delivery-Id"] == delivery["id"]
    body = request.json()
    assert body["id"] == delivery["id"] and body["notification_id"] == notification["id"]
    assert body["to"] == "acme" and body["template"] == "invoice-paid"
    assert body["data"] == {"event": "invoice.paid", "invoice": "INV-7", "amount": "12.50"}


def test_a_secret_rotated_through_the_api_signs_beside_the_new_one(http, worker, receiver):
    response = http.patch("/api/v1/project", json={"webhook_secret": "whsec_e2e_rotated"})
    assert response.status_code == 200, response.text
    until = datetime.fromisoformat(response.json()["webhook_secret_previous_until"])
    assert timedelta(hours=23) < until - datetime.now(until.tzinfo) <= timedelta(hours=24)

    assert send_invoice_paid(http)["status"] == "sent"

    [request] = receiver.requests
    assert verified(request, SECRET) and verified(request, "whsec_e2e_rotated")


def test_a_receiver_that_says_gone_fails_the_delivery_without_retrying(http, worker, receiver):
    receiver.reply_with(Reply(410, '{"error": "endpoint removed"}'))

    notification = send_invoice_paid(http)

    assert notification["status"] == "failed"
    [delivery] = notification["deliveries"]
    assert [(a["outcome"], a["error_code"]) for a in delivery["attempts"]] == [("permanent_error", "410")]
    assert len(receiver.requests) == 1


def test_a_receiver_failing_for_a_while_gets_the_webhook_when_it_recovers(http, worker, receiver):
    receiver.reply_with(Reply(503), Reply(429, headers={"Retry-After": "1"}))

    notification = send_invoice_paid(http)

    assert notification["status"] == "sent"
    [delivery] = notification["deliveries"]
    assert [(a["outcome"], a["error_code"]) for a in delivery["attempts"]] == [
        ("transient_error", "503"), ("transient_error", "429"), ("sent", "")]
    assert len(receiver.requests) == 3
    assert {r.headers["X-Notifier-Delivery-Id"] for r in receiver.requests} == {delivery["id"]}
    assert all(verified(r) for r in receiver.requests)
    # Retry-After was honoured: the third try came at least a second after the second.
    assert receiver.requests[2].received_at - receiver.requests[1].received_at >= 1.0


def test_webhooks_go_only_to_allowed_addresses(http, worker, receiver, project):
    """The test settings allow 127.0.0.1/32 only (where the receivers listen): 127.0.0.2 stands
    for an internal address here, so that nothing leaves this machine even if the rule broke."""
    with socket.create_server(("127.0.0.2", 0)) as internal:
        internal.setblocking(False)
        internal_url = f"http://127.0.0.2:{internal.getsockname()[1]}/hook"
        # The web process refuses internal addresses when they are set...
        for url in ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/admin", internal_url]:
            response = http.patch("/api/v1/project", json={"webhook_url": url})
            assert response.status_code == 400, url
            assert response.json()["error"]["details"] == {"webhook_url": [ADDRESS_NOT_ALLOWED_MESSAGE]}
        # ...and the worker checks again when it sends: an address written past the API (the admin,
        # the database, or a name that resolves elsewhere since it was set) is not called.
        Project.objects.filter(pk=project.pk).update(webhook_url=internal_url)

        notification = send_invoice_paid(http)

        assert notification["status"] == "failed"
        [delivery] = notification["deliveries"]
        assert [(a["outcome"], a["error_code"]) for a in delivery["attempts"]] == [
            ("permanent_error", "address_not_allowed")]
        with pytest.raises(BlockingIOError):
            internal.accept()  # no connection came
    assert receiver.requests == []
