"""The webhook channel through the worker's pipeline, posting to a real local HTTP server."""

import copy
import dataclasses
import json
import time
from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.utils import timezone

from apps.channels.registry import backends_reset
from apps.notifications.delivery.sending import delivery_send
from apps.notifications.models import Delivery, DeliveryStatus
from apps.projects.services import project_update
from tests.fakes.dns import FakeDns
from tests.fakes.webhook import Reply
from tests.notifications.factories import queued_delivery
from tests.support.processes import free_port
from tests.support.standard_webhooks import (
    STATUS_WEBHOOK,
    WEBHOOK,
    legacy_signature_verified,
    standard_webhook_verified,
)
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_2f9c"
PARTS = {"event": "order.shipped", "order": "{{ order }}", "lines": [{"sku": "{{ sku }}"}], "count": 2}


def signature_valid(request, secret: str) -> bool:
    """What docs/api.md tells receivers to do: the Standard Webhooks library, the webhook's key."""
    return standard_webhook_verified(request, secret=secret, purpose=WEBHOOK)


@pytest.fixture
def ada(receiver):
    recipient = RecipientFactory(external_id="ada")
    project = recipient.project
    project.webhook_url, project.webhook_secret = receiver.url, SECRET
    project.save()
    return recipient


def _webhook_options(settings, **options):
    channels = copy.deepcopy(settings.NOTIFIER_CHANNELS)
    channels["webhook"]["OPTIONS"].update(options)
    settings.NOTIFIER_CHANNELS = channels
    backends_reset()
    yield
    backends_reset()


@pytest.fixture
def short_timeouts(settings):
    yield from _webhook_options(settings, connect_timeout=1.0, read_timeout=0.5)


def webhook_delivery(recipient) -> Delivery:
    return queued_delivery(recipient=recipient, channel="webhook", parts=PARTS, data={"order": "A-17", "sku": "<sku-1>"})


def send(delivery: Delivery) -> Delivery:
    delivery_send(delivery_id=str(delivery.id))
    delivery.refresh_from_db()
    return delivery


def attempts(delivery: Delivery) -> list[tuple[str, str]]:
    return [(a.outcome, a.error_code) for a in delivery.attempts.order_by("number")]


def test_a_webhook_is_posted_as_signed_json_and_the_delivery_reads_sent(ada, receiver):
    delivery = send(webhook_delivery(ada))

    assert delivery.status == DeliveryStatus.SENT
    [request] = receiver.requests
    assert request.path == "/hook"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Notifier-Delivery-Id"] == str(delivery.id)
    assert signature_valid(request, SECRET)
    assert not signature_valid(request, "another-secret")
    notification = delivery.notification
    assert request.json() == {
        "id": str(delivery.id),
        "notification_id": str(notification.id),
        "to": "ada",
        "template": notification.template.key,
        # Strings are templates (no HTML escaping in JSON); other values pass through.
        "data": {"event": "order.shipped", "order": "A-17", "lines": [{"sku": "<sku-1>"}], "count": 2},
        "created_at": notification.created_at.isoformat().replace("+00:00", "Z"),
    }
    [attempt] = delivery.attempts.all()
    assert attempt.provider_response == {"status": 200, "body": '{"ok": true}'}


def test_a_tampered_body_does_not_verify(ada, receiver):
    send(webhook_delivery(ada))
    [request] = receiver.requests
    tampered = dataclasses.replace(request, body=request.body.replace(b"A-17", b"A-18"))
    assert not signature_valid(tampered, SECRET)


def test_a_server_error_is_retried_and_the_retry_succeeds(ada, receiver):
    receiver.reply_with(Reply(500, '{"error": "db down"}'))
    delivery = send(webhook_delivery(ada))
    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.last_error_code == "500"

    delivery = send(delivery)

    assert delivery.status == DeliveryStatus.SENT
    assert attempts(delivery) == [("transient_error", "500"), ("sent", "")]
    first, second = receiver.requests
    # The same delivery id on every attempt lets the receiver drop duplicates.
    assert first.headers["X-Notifier-Delivery-Id"] == second.headers["X-Notifier-Delivery-Id"] == str(delivery.id)
    assert signature_valid(second, SECRET)


@pytest.mark.parametrize("status", [408, 429, 502, 503])
def test_statuses_that_say_later_are_transient(ada, receiver, status):
    receiver.reply_with(Reply(status))
    delivery = send(webhook_delivery(ada))
    assert delivery.status == DeliveryStatus.RETRYING
    assert attempts(delivery) == [("transient_error", str(status))]


def test_a_retry_after_from_the_receiver_is_honoured(ada, receiver):
    receiver.reply_with(Reply(429, headers={"Retry-After": "120"}))
    before = timezone.now()

    delivery = send(webhook_delivery(ada))

    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.next_attempt_at >= before + timedelta(seconds=119)


@pytest.mark.parametrize("retry_after", ["1000000000000", "inf"])
def test_a_huge_retry_after_from_the_receiver_is_capped(ada, receiver, settings, retry_after):
    receiver.reply_with(Reply(503, headers={"Retry-After": retry_after}))

    delivery = send(webhook_delivery(ada))

    assert delivery.status == DeliveryStatus.RETRYING
    assert delivery.next_attempt_at <= timezone.now() + timedelta(seconds=settings.NOTIFIER_MAX_RETRY_AFTER_SECONDS)


def test_a_retry_after_given_as_an_http_date_is_honoured(ada, receiver):
    receiver.reply_with(Reply(429, headers={"Retry-After": format_datetime(timezone.now() + timedelta(minutes=10),
                                                                            usegmt=True)}))
    before = timezone.now()

    delivery = send(webhook_delivery(ada))

    assert before + timedelta(minutes=9) <= delivery.next_attempt_at <= timezone.now() + timedelta(minutes=10)


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_other_client_errors_fail_the_delivery_for_good(ada, receiver, status):
    receiver.reply_with(Reply(status, '{"error": "gone"}'))

    delivery = send(webhook_delivery(ada))

    assert delivery.status == DeliveryStatus.FAILED
    assert attempts(delivery) == [("permanent_error", str(status))]
    assert delivery.attempts.get().provider_response == {"status": status, "body": '{"error": "gone"}'}


def test_an_answer_with_nul_characters_is_recorded_not_left_sending(ada, receiver):
    # PostgreSQL refuses NUL in text and jsonb; the answer must still be recorded.
    receiver.reply_with(Reply(400, '{"error": "bad\\u0000input"}\x00tail'))

    delivery = send(webhook_delivery(ada))

    assert delivery.status == DeliveryStatus.FAILED
    assert "\x00" not in delivery.attempts.get().provider_response["body"]
    assert delivery.attempts.get().provider_response["body"].endswith("tail")


def test_a_redirect_is_not_followed(ada, receiver):
    receiver.reply_with(Reply(307, headers={"Location": "/elsewhere"}))

    delivery = send(webhook_delivery(ada))

    assert delivery.status == DeliveryStatus.FAILED
    assert attempts(delivery) == [("permanent_error", "307")]
    assert "final address" in delivery.last_error
    assert [r.path for r in receiver.requests] == ["/hook"]


def assert_cut_off_and_retried(ada, receiver, reply: Reply, *, within: float) -> None:
    """The receiver answers with `reply`; the send gives up within `within` seconds, to retry."""
    receiver.reply_with(reply)
    started = time.monotonic()

    delivery = send(webhook_delivery(ada))

    assert time.monotonic() - started < within
    assert delivery.status == DeliveryStatus.RETRYING
    assert attempts(delivery) == [("transient_error", "timeout")]


def test_a_receiver_that_hangs_times_out_and_is_retried(ada, receiver, short_timeouts):
    # The read timeout is 0.5 s; the wide margin is for shared machines, the hang is far longer.
    assert_cut_off_and_retried(ada, receiver, Reply(200, delay=6.0), within=4)


@pytest.fixture
def dripping_allowed(settings):
    """Reads time out after 1 s and the whole request after 2 s."""
    yield from _webhook_options(settings, connect_timeout=1.0, read_timeout=1.0, total_timeout=2.0)


@pytest.mark.slow
def test_a_receiver_dripping_its_answer_is_cut_off_at_the_total_deadline(ada, receiver, dripping_allowed):
    # A byte every 0.3 s never trips the 1 s read timeout; the whole answer would take ~25 s.
    # The deadline is 2 s; the margin is for shared machines, the drip is far longer.
    assert_cut_off_and_retried(ada, receiver, Reply(200, drip=0.3), within=8)
    # The cut connection is not reused: the next delivery goes out normally.
    assert send(webhook_delivery(ada)).status == DeliveryStatus.SENT


@pytest.fixture
def body_dripping_allowed(settings):
    """The whole request may take 4 s: the status and headers drip in well within it."""
    yield from _webhook_options(settings, connect_timeout=1.0, read_timeout=1.0, total_timeout=4.0)


@pytest.mark.slow
def test_a_receiver_dripping_only_its_body_has_answered(ada, receiver, body_dripping_allowed):
    """Once the status is in, the receiver has taken the webhook: the deadline only shortens the
    excerpt kept, it does not make a retry (which would be a duplicate)."""
    receiver.reply_with(Reply(200, body="x" * 1000, drip=0.01))  # headers in ~0.7 s, the body would take 10 s more
    started = time.monotonic()

    delivery = send(webhook_delivery(ada))

    assert time.monotonic() - started < 8
    assert delivery.status == DeliveryStatus.SENT
    [attempt] = delivery.attempts.all()
    assert attempt.provider_response["status"] == 200
    assert len(attempt.provider_response["body"]) < 1000


def test_a_receiver_that_is_down_is_retried(ada, short_timeouts):
    project = ada.project
    project.webhook_url = f"http://127.0.0.1:{free_port()}/hook"
    project.save()

    delivery = send(webhook_delivery(ada))

    assert delivery.status == DeliveryStatus.RETRYING
    assert attempts(delivery) == [("transient_error", "connection")]


def test_a_webhook_unconfigured_since_queueing_fails_for_good(ada, receiver):
    delivery = webhook_delivery(ada)
    ada.project.webhook_url = ""
    ada.project.save()

    delivery = send(delivery)

    assert delivery.status == DeliveryStatus.FAILED
    assert attempts(delivery) == [("permanent_error", "webhook_not_configured")]
    assert receiver.requests == []


def test_without_a_webhook_url_and_secret_the_channel_is_skipped(api, project, dns):
    api.put("/api/v1/users/ada", {"email": "ada@example.com"}, format="json")
    api.put("/api/v1/templates/shipped", {"channels": {"webhook": PARTS, "email": {"subject": "s", "text": "t"}}},
            format="json")
    patched = api.patch("/api/v1/project", {"webhook_url": "https://hooks.example/notifier"}, format="json")  # no secret
    assert patched.status_code == 200

    response = api.post("/api/v1/notifications", {"to": "ada", "template": "shipped", "channels": ["webhook"]},
                        format="json")

    assert response.status_code == 422
    assert response.json()["error"]["details"] == {"webhook": "the project has no webhook_url and webhook_secret"}


def test_the_webhook_secret_is_never_shown(api, dns):
    api.patch("/api/v1/project", {"webhook_url": "https://hooks.example/n", "webhook_secret": SECRET}, format="json")
    body = api.get("/api/v1/project").json()
    assert body["webhook_url"] == "https://hooks.example/n"
    assert SECRET not in json.dumps(body)


# --- Egress: webhooks go only to allowed addresses, checked again at send time (apps/core/egress.py).

PUBLIC = "93.184.215.14"


@pytest.fixture
def dns(monkeypatch):
    """hooks.example is public; this machine has no DNS for real public names."""
    fake = FakeDns.install(monkeypatch)
    fake.answer("hooks.example", [PUBLIC])
    return fake


def test_a_webhook_to_an_address_that_is_not_allowed_fails_without_being_sent(ada, receiver, settings):
    settings.NOTIFIER_WEBHOOK_ALLOWED_NETWORKS = []  # production's default: loopback is not allowed

    delivery = send(webhook_delivery(ada))  # webhook_url is the receiver on 127.0.0.1

    assert delivery.status == DeliveryStatus.FAILED
    assert attempts(delivery) == [("permanent_error", "address_not_allowed")]
    assert "public addresses" in delivery.last_error
    assert receiver.requests == []


def test_a_host_that_resolves_elsewhere_since_it_was_set_is_refused_at_send_time(api, project, receiver, dns, settings):
    """DNS rebinding: the name was public when set, and points at an internal address when sent."""
    settings.NOTIFIER_WEBHOOK_ALLOWED_NETWORKS = []
    url = f"http://hooks.example:{receiver.port}/hook"
    response = api.patch("/api/v1/project", {"webhook_url": url, "webhook_secret": SECRET}, format="json")
    assert response.status_code == 200
    dns.answer("hooks.example", ["127.0.0.1"])  # the receiver's address, now

    delivery = send(webhook_delivery(RecipientFactory(project=project)))

    assert delivery.status == DeliveryStatus.FAILED
    assert attempts(delivery) == [("permanent_error", "address_not_allowed")]
    assert receiver.requests == []


def test_a_row_written_past_the_api_is_checked_too(ada, settings):
    """An address set in the admin or the database directly: 127.0.0.2 is outside the test settings' 127.0.0.1/32."""
    ada.project.webhook_url = f"http://127.0.0.2:{free_port()}/hook"
    ada.project.save()

    delivery = send(webhook_delivery(ada))

    assert delivery.status == DeliveryStatus.FAILED
    assert attempts(delivery) == [("permanent_error", "address_not_allowed")]


def test_the_request_carries_the_name_while_connecting_to_the_checked_address(ada, receiver, dns):
    dns.answer("hooks.example", ["127.0.0.1"])
    ada.project.webhook_url = f"http://hooks.example:{receiver.port}/hook"
    ada.project.save()

    delivery = send(webhook_delivery(ada))

    assert delivery.status == DeliveryStatus.SENT
    [request] = receiver.requests
    assert request.headers["Host"] == f"hooks.example:{receiver.port}"
    assert signature_valid(request, SECRET)


# --- Signatures (docs/api.md, "Signatures") ----------------------------------------------------------

def test_a_webhook_is_signed_as_standard_webhooks_over_its_id_for_the_webhook_key_only(ada, receiver):
    delivery = send(webhook_delivery(ada))

    [request] = receiver.requests
    assert request.headers["webhook-id"] == str(delivery.id)
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["webhook-signature"].startswith("v1,") and " " not in request.headers["webhook-signature"]
    assert standard_webhook_verified(request, secret=SECRET, purpose=WEBHOOK)
    # The id is signed: a request replayed under another id does not verify...
    renamed = dataclasses.replace(request, headers={**request.headers, "webhook-id": "another-delivery"})
    assert not standard_webhook_verified(renamed, secret=SECRET, purpose=WEBHOOK)
    # ...nor at a status webhook receiver of the same project (another key).
    assert not standard_webhook_verified(request, secret=SECRET, purpose=STATUS_WEBHOOK)
    # The deprecated headers are still sent, for one release.
    assert legacy_signature_verified(request, secret=SECRET)


def test_a_rotated_secret_signs_beside_the_new_one_until_its_time_is_up(ada, receiver, settings):
    settings.NOTIFIER_WEBHOOK_SECRET_ROTATION_HOURS = 24
    project_update(project=ada.project, webhook_secret="whsec_the_new_one")
    ada.project.refresh_from_db()
    assert ada.project.webhook_secret_previous_until > timezone.now() + timedelta(hours=23)

    send(webhook_delivery(ada))

    [request] = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    # A receiver on either secret takes it: none is refused while receivers switch.
    assert standard_webhook_verified(request, secret=SECRET, purpose=WEBHOOK)
    assert standard_webhook_verified(request, secret="whsec_the_new_one", purpose=WEBHOOK)
    assert legacy_signature_verified(request, secret="whsec_the_new_one")

    ada.project.webhook_secret_previous_until = timezone.now() - timedelta(seconds=1)
    ada.project.save()
    send(webhook_delivery(ada))

    later = receiver.requests[1]
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    assert not standard_webhook_verified(later, secret=SECRET, purpose=WEBHOOK)
    assert standard_webhook_verified(later, secret="whsec_the_new_one", purpose=WEBHOOK)


def test_only_two_secrets_are_ever_active_and_an_empty_one_ends_the_rotation(ada):
    project = ada.project
    project_update(project=project, webhook_secret="second")
    project_update(project=project, webhook_secret="third")
    assert (project.webhook_secret, project.webhook_secret_previous) == ("third", "second")

    project_update(project=project, webhook_secret="")
    project.refresh_from_db()
    assert (project.webhook_secret, project.webhook_secret_previous, project.webhook_secret_previous_until) == (
        "", "", None)
