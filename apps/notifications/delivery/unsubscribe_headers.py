"""The one-click unsubscribe headers of an email (RFC 8058), computed by the pipeline for the
email backend to send as they are.

An email gets them when its notification has a category and that category is not one of the
project's critical categories: a category is what a user can turn off, and RFC 8058 is about
unsubscribing from a kind of mail. An email without a category is taken as transactional (a
password reset, a receipt) and gets none: unsubscribing from "all email" through a receipt would
also stop the password resets. Bulk senders therefore give every bulk notification a category.

    List-Unsubscribe: <https://notifier.example.com/unsubscribe/<token>>, <mailto:unsub@example.com?subject=unsubscribe%20<token>>
    List-Unsubscribe-Post: List-Unsubscribe=One-Click

The HTTPS link is built from PUBLIC_BASE_URL (mail clients require https there); the mailto:
only when NOTIFIER_UNSUBSCRIBE_MAILTO names a mailbox the operator reads (the token in its subject
names the user and category).
"""

from urllib.parse import quote

from django.conf import settings

from apps.channels.headers import LIST_UNSUBSCRIBE_HEADER, LIST_UNSUBSCRIBE_POST_HEADER, LIST_UNSUBSCRIBE_POST_VALUE
from apps.projects.selectors import category_is_critical
from apps.users.unsubscribe import unsubscribe_token

UNSUBSCRIBE_CHANNELS = frozenset({"email"})


def unsubscribe_headers(*, channel: str, project, recipient_id: int, category: str) -> dict[str, str]:
    """The List-Unsubscribe headers for one delivery's message; {} when it gets none."""
    if channel not in UNSUBSCRIBE_CHANNELS or not category or category_is_critical(project=project, category=category):
        return {}
    token = unsubscribe_token(project_id=project.id, recipient_id=recipient_id, category=category)
    # No base (production without PUBLIC_BASE_URL, refused by the system checks): no link that
    # would point at a host the reader cannot reach.
    links = [f"<{settings.PUBLIC_BASE_URL.rstrip('/')}/unsubscribe/{token}>"] if settings.PUBLIC_BASE_URL else []
    if settings.NOTIFIER_UNSUBSCRIBE_MAILTO:
        links.append(f"<mailto:{settings.NOTIFIER_UNSUBSCRIBE_MAILTO}?subject={quote('unsubscribe ' + token)}>")
    if not links:
        return {}
    return {LIST_UNSUBSCRIBE_HEADER: ", ".join(links), LIST_UNSUBSCRIBE_POST_HEADER: LIST_UNSUBSCRIBE_POST_VALUE}
