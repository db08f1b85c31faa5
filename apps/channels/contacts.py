"""Whether a user can be reached on a channel at all: a delivery without a contact point is skipped."""

from collections.abc import Callable

from apps.projects.models import Project
from apps.users.models import Recipient
from apps.users.selectors import device_active_exists

# channel -> function returning why the user cannot be reached there, or "" if they can.
_MISSING_CONTACT_CHECKS: dict[str, Callable[[Recipient, Project], str]] = {
    "email": lambda recipient, project: "" if recipient.email else "the user has no email address",
    "sms": lambda recipient, project: "" if recipient.phone else "the user has no phone number",
    "push": lambda recipient, project: "" if _has_active_device(recipient) else "the user has no active device for push",
    "in_app": lambda recipient, project: "",  # the inbox needs nothing but the user
    # Webhooks are always signed, so the secret is as necessary as the URL.
    "webhook": lambda recipient, project: (
        "" if project.webhook_url and project.webhook_secret else "the project has no webhook_url and webhook_secret"
    ),
}


def _has_active_device(recipient: Recipient) -> bool:
    # Users loaded in batches carry the answer (users.selectors.recipients_with_device_flag).
    flag = getattr(recipient, "has_active_device", None)
    return device_active_exists(recipient=recipient) if flag is None else flag


def missing_contact_reason(*, channel: str, recipient: Recipient, project: Project) -> str:
    check = _MISSING_CONTACT_CHECKS.get(channel)
    return check(recipient, project) if check else ""
