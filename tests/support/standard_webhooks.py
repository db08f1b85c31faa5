"""A receiver's check of our signatures, written as docs/api.md ("Signatures") tells receivers to
write it, with the Standard Webhooks specification's own Python library, and independently of
apps/: the key is HMAC-SHA256(webhook_secret, purpose), encoded as the library's `whsec_` secret."""

import base64
import hashlib
import hmac
import time

from standardwebhooks import Webhook, WebhookVerificationError

WEBHOOK = "notifier.webhook"
STATUS_WEBHOOK = "notifier.status_webhook"


def notifier_verifier(secret: str, purpose: str) -> Webhook:
    key = hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()
    return Webhook("whsec_" + base64.b64encode(key).decode())


def standard_webhook_verified(request, *, secret: str, purpose: str) -> bool:
    """Whether the library takes `request` (its `headers` and raw `body`) for one signed with `secret`."""
    try:
        notifier_verifier(secret, purpose).verify(request.body, dict(request.headers))
    except WebhookVerificationError:
        return False
    return True


def legacy_signature_verified(request, *, secret: str, tolerance: int = 300) -> bool:
    """The deprecated X-Notifier-Signature, as the previous release told receivers to check it."""
    fields = dict(part.split("=", 1) for part in request.headers["X-Notifier-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + request.body, hashlib.sha256).hexdigest()
    return (hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) <= tolerance
            and request.headers["X-Notifier-Timestamp"] == fields["t"])
