"""Preference links: the signed URL of the page where a user sets their own preferences.

A token names the project and the user (by internal id, as unsubscribe tokens do: external ids
may be email addresses, which do not belong in a URL) and when it expires. It is signed with
DJANGO_SECRET_KEY under a salt of its own, so neither an inbox token nor an unsubscribe token
(same key, other salts) opens the page, and this token opens nothing else. It is the page's only
credential: whoever holds the link can change that user's preferences until it expires, which is
why it expires (NOTIFIER_PREFERENCES_LINK_TTL_SECONDS) and the page keeps it out of caches and
Referer headers. Signing costs one HMAC, microseconds: cheap enough for every email's footer.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core import signing

_SALT = "notifier.users.preferences-page"
PAGE_PATH = "/preferences/"


class InvalidPreferencesToken(Exception):
    """The token was not made by this installation, or was altered or cut short."""


class ExpiredPreferencesToken(InvalidPreferencesToken):
    pass


@dataclass(frozen=True)
class PreferencesTarget:
    project_id: int
    recipient_id: int
    expires_at: datetime


def preferences_link_issue(*, project_id: int, recipient_id: int, ttl_seconds: int | None = None,
                           base_url: str = "") -> tuple[str, datetime]:
    """The page's URL for this user, and when it stops working: under PUBLIC_BASE_URL, else under
    `base_url` (where a request came in; production without PUBLIC_BASE_URL sends no email)."""
    ttl = settings.NOTIFIER_PREFERENCES_LINK_TTL_SECONDS if ttl_seconds is None else ttl_seconds
    expires = int(time.time()) + int(ttl)
    token = signing.dumps({"p": project_id, "r": recipient_id, "e": expires}, salt=_SALT, compress=False)
    url = f"{(settings.PUBLIC_BASE_URL or base_url).rstrip('/')}{PAGE_PATH}{token}"
    return url, datetime.fromtimestamp(expires, tz=UTC)


def preferences_token_read(token: str) -> PreferencesTarget:
    """What a valid token names; InvalidPreferencesToken (or its subclass Expired…) otherwise."""
    try:
        payload = signing.loads(token, salt=_SALT)
        project_id, recipient_id, expires = int(payload["p"]), int(payload["r"]), int(payload["e"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise InvalidPreferencesToken from None
    if expires <= time.time():
        raise ExpiredPreferencesToken
    return PreferencesTarget(project_id=project_id, recipient_id=recipient_id,
                             expires_at=datetime.fromtimestamp(expires, tz=UTC))
