from django.db import transaction
from django.utils import timezone

from apps.projects.models import Project
from apps.users.models import Device, Recipient, Unsubscribe
from apps.users.unsubscribe import UnsubscribeTarget


@transaction.atomic
def recipient_upsert(*, project: Project, external_id: str, **fields) -> tuple[Recipient, bool]:
    """Create the user or update the given fields; fields left out keep their value."""
    recipient, created = Recipient.objects.select_for_update().get_or_create(
        project=project, external_id=external_id, defaults=fields
    )
    if not created and fields:
        for field, value in fields.items():
            setattr(recipient, field, value)
        recipient.save(update_fields=[*fields, "updated_at"])
    return recipient, created


@transaction.atomic
def recipients_upsert(*, project: Project, items: list[tuple[str, dict]]) -> list[tuple[Recipient, bool]]:
    """Upsert many users as recipient_upsert does each; (user, created) per item, in order.

    A fixed handful of statements for any number: one SELECT of which exist, one INSERT … ON
    CONFLICT DO UPDATE per distinct set of fields given (items usually share one), and the rows
    read back with their devices. An external id given twice takes both items' fields, the later
    winning, and both answer the resulting user.
    """
    merged: dict[str, dict] = {}
    for external_id, fields in items:
        merged[external_id] = {**merged.get(external_id, {}), **fields}
    existing = set(
        Recipient.objects.filter(project=project, external_id__in=merged).values_list("external_id", flat=True)
    )
    # Every request locks its users' rows in one order, sorted by external id: two bulks of the
    # same users in different orders then wait for each other instead of deadlocking.
    ordered = sorted(merged)
    # ON CONFLICT DO UPDATE sets the same columns on every row of a statement, and fields left out
    # must keep their value: one statement per set of fields.
    groups: dict[tuple[str, ...], list[Recipient]] = {}
    for external_id in ordered:
        fields = merged[external_id]
        groups.setdefault(tuple(sorted(fields)), []).append(Recipient(project=project, external_id=external_id, **fields))
    if len(groups) > 1:
        # Several statements would each lock their own rows, in an order another request's groups
        # may cross: one sorted statement first locks (or inserts) them all.
        Recipient.objects.bulk_create(
            [Recipient(project=project, external_id=external_id, **merged[external_id]) for external_id in ordered],
            update_conflicts=True, unique_fields=["project", "external_id"], update_fields=["updated_at"])
    for names, rows in groups.items():
        Recipient.objects.bulk_create(rows, update_conflicts=True, unique_fields=["project", "external_id"],
                                      update_fields=[*names, "updated_at"])
    stored = Recipient.objects.filter(project=project, external_id__in=merged).prefetch_related("devices")
    by_external_id = {recipient.external_id: recipient for recipient in stored}
    return [(by_external_id[external_id], external_id not in existing) for external_id, _ in items]


def recipient_delete(*, recipient: Recipient) -> None:
    """Delete the user and what the users app holds of them (devices). Erasing a user from every
    app is apps/erasure/services.py's recipient_erase."""
    recipient.delete()


def recipient_preferences_set(*, recipient: Recipient, channels: dict, categories: dict, quiet_hours: dict | None) -> None:
    """Replace the user's preferences; notifications created from now on follow them."""
    recipient.channel_preferences = channels
    recipient.category_preferences = categories
    recipient.quiet_hours_start = quiet_hours["start"] if quiet_hours else None
    recipient.quiet_hours_end = quiet_hours["end"] if quiet_hours else None
    recipient.save(update_fields=["channel_preferences", "category_preferences", "quiet_hours_start",
                                  "quiet_hours_end", "updated_at"])


@transaction.atomic
def recipient_unsubscribe(*, target: UnsubscribeTarget, channel: str, source: str) -> Recipient | None:
    """Turn the channel off for the target's category in the user's preferences, and record it.

    Returns the user, or None when they no longer exist (erased since the email was sent). Asking
    again changes nothing and records nothing more (the first request is the record): a link
    POSTed 300 times is one row.
    """
    recipient = (
        Recipient.objects.select_for_update()
        .filter(id=target.recipient_id, project_id=target.project_id).first()
    )
    if recipient is None:
        return None
    switches = recipient.category_preferences.get(target.category, {})
    if switches.get(channel, True):
        recipient.category_preferences = {**recipient.category_preferences,
                                          target.category: {**switches, channel: False}}
        recipient.save(update_fields=["category_preferences", "updated_at"])
    # The user's row is locked: no concurrent request can insert between this look and the insert.
    Unsubscribe.objects.get_or_create(recipient=recipient, category=target.category, channel=channel,
                                      defaults={"project_id": target.project_id, "source": source})
    return recipient


@transaction.atomic
def device_register(*, recipient: Recipient, token: str, platform: str) -> tuple[Device, bool]:
    """Register the app instance's push token for the user, or re-activate it; (device, created).

    A token names one app instance, so it belongs to whoever registered it last: when another
    user of the project had it (someone else signs in on the same phone), it is removed from
    them, or their notifications would reach this person.
    """
    Device.objects.filter(recipient__project_id=recipient.project_id, token=token).exclude(recipient=recipient).delete()
    device, created = Device.objects.select_for_update().get_or_create(
        recipient=recipient, token=token, defaults={"platform": platform}
    )
    if not created:
        device.platform = platform
        device.active = True
        device.last_seen_at = timezone.now()
        device.save(update_fields=["platform", "active", "last_seen_at", "updated_at"])
    return device, created


def device_remove(*, device: Device) -> None:
    device.delete()


def device_deactivate(*, device_id: int) -> bool:
    """Stop pushing to a device FCM no longer knows (UNREGISTERED); False if it was already inactive or gone.

    The row stays (not deleted) so the delivery log can still name it, and a new registration of
    the same token brings it back.
    """
    return Device.objects.filter(id=device_id, active=True).update(active=False, updated_at=timezone.now()) == 1
