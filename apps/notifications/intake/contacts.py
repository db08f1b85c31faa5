"""A user's contact points as the channel backends read them: plain values, not rows."""

from apps.channels.base import ContactPoints
from apps.projects.models import Project
from apps.users.models import Recipient
from apps.users.selectors import device_active_exists


def contact_points(*, recipient: Recipient, project: Project) -> ContactPoints:
    """How the user and their project can be reached, for the backends' `missing_contact_reason`."""
    # Users loaded in batches carry the device flag (users.selectors.recipients_with_device_flag).
    has_active_device = getattr(recipient, "has_active_device", None)
    if has_active_device is None:
        has_active_device = device_active_exists(recipient=recipient)
    return ContactPoints(
        email=recipient.email, phone=recipient.phone, has_active_device=has_active_device,
        webhook_url=project.webhook_url, webhook_secret=project.webhook_secret,
    )
