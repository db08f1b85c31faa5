"""Bearer tokens for one user's inbox, handed by the product backend to its browser or app.

Stateless: a token is the signed (Django's signing, SECRET_KEY) payload {project, user, expiry},
so the web processes can check it without a lookup table. It cannot be revoked before it
expires, hence the short default life (NOTIFIER_INBOX_TOKEN_TTL_SECONDS); erasing the user
does end it, since the user it names is looked up on every use.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core import signing

from apps.users.models import Recipient

# A signature made for anything else with the same SECRET_KEY never verifies as an inbox token.
_SALT = "notifier.inbox.user-token"


class InvalidInboxToken(Exception):
    pass


@dataclass(frozen=True)
class InboxAccess:
    """What a valid token grants: this one user's inbox, until expires_at."""

    recipient: Recipient
    expires_at: datetime


def inbox_token_issue(*, recipient: Recipient, ttl_seconds: int | None = None) -> tuple[str, datetime]:
    """A token opening the user's inbox, and when it expires."""
    ttl = settings.NOTIFIER_INBOX_TOKEN_TTL_SECONDS if ttl_seconds is None else ttl_seconds
    expires = int(time.time()) + int(ttl)
    token = signing.dumps({"p": recipient.project_id, "r": recipient.id, "e": expires}, salt=_SALT, compress=False)
    return token, datetime.fromtimestamp(expires, tz=UTC)


def inbox_token_authenticate(*, token: str) -> InboxAccess:
    """The access the token grants; InvalidInboxToken if it is forged, expired, or its user is gone."""
    try:
        payload = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        raise InvalidInboxToken("Invalid token.") from None
    try:
        project_id, recipient_id, expires = int(payload["p"]), int(payload["r"]), int(payload["e"])
    except (KeyError, TypeError, ValueError):
        raise InvalidInboxToken("Invalid token.") from None
    if expires <= time.time():
        raise InvalidInboxToken("The token has expired; ask for a new one.")
    recipient = Recipient.objects.select_related("project").filter(id=recipient_id, project_id=project_id).first()
    if recipient is None:
        raise InvalidInboxToken("The token's user no longer exists.")
    return InboxAccess(recipient=recipient, expires_at=datetime.fromtimestamp(expires, tz=UTC))
