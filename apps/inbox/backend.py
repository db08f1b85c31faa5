"""In-app: the message is stored in the user's inbox, and their open live streams are woken."""

from urllib.parse import urlsplit

from django.db import DataError, InterfaceError, OperationalError

from apps.channels.base import ChannelBackend, ChannelMessage, PermanentProviderError, SendResult, TransientProviderError
from apps.inbox.services import InboxRecipientGone, inbox_message_create

# Link schemes an inbox may show: a rendered `javascript:` URL would run in the product's page.
_SAFE_URL_SCHEMES = ("http", "https")


class InboxBackend(ChannelBackend):
    """OPTIONS: `lock_timeout_seconds` (default 5): how long to wait for a user's row locked by
    another transaction (PostgreSQL) before calling the attempt transient."""

    channel = "in_app"
    held_by_quiet_hours = False  # silent until the user opens the inbox; needs nothing but the user
    provider = "inbox"
    circuit_breaker = False  # it writes to our own database: nothing to fail over to

    def __init__(self, *, lock_timeout_seconds: float = 5.0, **options):
        super().__init__(**options)
        self.lock_timeout_seconds = lock_timeout_seconds

    def send(self, message: ChannelMessage) -> SendResult:
        content = message.content
        url = content.get("url", "").strip()
        if url and not _url_is_safe(url):
            raise PermanentProviderError(
                f"The rendered url {url[:200]!r} is neither an http(s) URL nor a path.", code="invalid_url"
            )
        try:
            stored, _ = inbox_message_create(
                delivery_id=message.delivery_id, project_id=message.project_id, recipient_id=message.recipient_id,
                title=content["title"], body=content["body"], url=url, lock_timeout_seconds=self.lock_timeout_seconds,
            )
        except InboxRecipientGone:
            raise PermanentProviderError("The user was deleted before this was sent.", code="user_deleted") from None
        except DataError as exc:  # e.g. a NUL character, which PostgreSQL text refuses
            raise PermanentProviderError(f"The database refused the message: {exc}", code="invalid_content") from exc
        except (OperationalError, InterfaceError) as exc:  # connection lost, lock timeout, SQLite busy
            raise TransientProviderError(f"Could not store the message: {exc}", code="database") from exc
        return SendResult(provider_message_id=f"inbox:{stored.id}")


def _url_is_safe(url: str) -> bool:
    if url.startswith("/") and not url.startswith("//"):
        return True  # a path in the product's own site
    parts = urlsplit(url)
    return parts.scheme.lower() in _SAFE_URL_SCHEMES and bool(parts.netloc)
