"""Unsubscribe tokens: what an email's List-Unsubscribe link carries (RFC 8058 one-click).

A token names the project, the user (by internal id: the project's external ids may be email
addresses, which do not belong in a URL) and the category, signed with the installation's
DJANGO_SECRET_KEY under its own salt, so a token made for anything else cannot be replayed here.
Tokens do not expire: RFC 8058 wants the link to keep working as long as the message may be read,
and a mail read a year later must still unsubscribe. Changing DJANGO_SECRET_KEY invalidates them all.
Signed, not encrypted: the payload (two internal ids and a category) tells the email's reader
nothing new; the token is a credential all the same, masked in logs (apps/core/logs.py).
"""

from dataclasses import dataclass

from django.core import signing

_SALT = "notifier.unsubscribe"


@dataclass(frozen=True)
class UnsubscribeTarget:
    project_id: int
    recipient_id: int
    category: str


def unsubscribe_token(*, project_id: int, recipient_id: int, category: str) -> str:
    """URL-safe; one HMAC-SHA256, microseconds: cheap enough to sign on every email."""
    return signing.dumps([project_id, recipient_id, category], salt=_SALT)


def unsubscribe_token_read(token: str) -> UnsubscribeTarget | None:
    """What a token names, or None when it was not made by this installation (or was altered)."""
    try:
        project_id, recipient_id, category = signing.loads(token, salt=_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not (isinstance(project_id, int) and isinstance(recipient_id, int) and isinstance(category, str)):
        return None
    return UnsubscribeTarget(project_id=project_id, recipient_id=recipient_id, category=category)
