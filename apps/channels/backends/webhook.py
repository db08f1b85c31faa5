"""Webhooks: the rendered JSON POSTed to the project's webhook_url, signed with its webhook_secret.

Signed as Standard Webhooks (apps/channels/signed_post.py), with the key derived for webhooks:
`webhook-id` is the delivery's id, as is `X-Notifier-Delivery-Id`, the same on every attempt of
one delivery: receivers use it to drop the duplicates that at-least-once brings.
"""

import json
from datetime import UTC

from apps.channels.base import (
    ChannelBackend,
    ChannelMessage,
    ContactPoints,
    PermanentProviderError,
    SendResult,
)
from apps.channels.headers import DELIVERY_ID_HEADER
from apps.channels.signed_post import WEBHOOK_PURPOSE, SignedPoster, signed_headers

USER_AGENT = "Notifier-Webhook/1"


class WebhookBackend(ChannelBackend):
    """One requests.Session per worker process, so connections to a receiver are reused.

    OPTIONS: `connect_timeout`, `read_timeout` (seconds, per connection attempt and per read;
    defaults 5 and 10) and `total_timeout` (seconds for the whole request, answer included;
    default 15): a receiver that drips its answer is cut off there (apps/core/deadline.py).
    Redirects are not followed: they would replay the signed request, user data included, to an
    address the project never configured (and 301/302 turn a POST into a GET). A 3xx is therefore
    a permanent error telling the project to set webhook_url to the final address.
    Requests go only to allowed addresses (apps/core/egress.py), checked again at each send
    and connected to as checked, since DNS may answer otherwise than when webhook_url was set.
    The request itself (signing, posting, reading the answer) is apps/channels/signed_post.py,
    shared with status webhooks.
    """

    channel = "webhook"
    held_by_quiet_hours = False  # it goes to the product's backend, not to the user
    provider = "webhook"
    circuit_breaker = False  # each project has its own receiver: one down says nothing of the rest

    def __init__(self, *, connect_timeout: float = 5.0, read_timeout: float = 10.0, total_timeout: float = 15.0,
                 **options):
        super().__init__(**options)
        self.poster = SignedPoster(what="webhook", url_field="webhook_url", connect_timeout=connect_timeout,
                                   read_timeout=read_timeout, total_timeout=total_timeout)

    def missing_contact_reason(self, contacts: ContactPoints) -> str:
        # Webhooks are always signed, so the secret is as necessary as the URL.
        if contacts.webhook_url and contacts.webhook_secret:
            return ""
        return "the project has no webhook_url and webhook_secret"

    def send(self, message: ChannelMessage) -> SendResult:
        if not message.webhook_url or not message.webhook_secrets:
            raise PermanentProviderError("The project has no webhook_url and webhook_secret.", code="webhook_not_configured")
        body = json.dumps(
            {
                "id": message.delivery_id,
                "notification_id": message.notification_id,
                "to": message.user_external_id,
                "template": message.template_key,
                "data": message.content,
                "created_at": message.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        headers = signed_headers(secrets=message.webhook_secrets, purpose=WEBHOOK_PURPOSE,
                                 message_id=message.delivery_id, body=body, user_agent=USER_AGENT)
        headers[DELIVERY_ID_HEADER] = message.delivery_id
        return SendResult(response=self.poster.post(message.webhook_url, body=body, headers=headers))
