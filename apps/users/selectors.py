import functools

from django.db import connections
from django.db.models import Exists, OuterRef, QuerySet

from apps.core.exceptions import NotFound
from apps.core.rows import ModelColumns, WhereIn, where_in_together
from apps.projects.models import Project
from apps.users.models import Device, Recipient


def recipient_get(*, project: Project, external_id: str) -> Recipient:
    try:
        return Recipient.objects.get(project=project, external_id=external_id)
    except Recipient.DoesNotExist:
        raise NotFound(f"No user with id {external_id!r}.") from None


def recipients_find(*, project: Project, external_ids) -> dict[str, Recipient]:
    """The project's users among these external ids, by external id, in one query.

    Each carries `has_active_device`, so checking who can be reached by push costs no query per user.
    The SQL is the ORM's for `recipients_with_device_flag(...filter(project=, external_id__in=))`,
    written once (apps/core/rows.py): every single POST makes this read (with the template's, as
    one statement: RECIPIENTS_FIND, the intake's `where_in_together`).
    """
    [found] = where_in_together((RECIPIENTS_FIND, [project.pk], external_ids))
    return found


_RECIPIENT = ModelColumns(Recipient, "r")


@functools.cache
def _recipients_find_columns(using: str) -> str:
    connection = connections[using]
    quote = connection.ops.quote_name
    device = Device._meta
    return (
        f"{_RECIPIENT.sql(connection)}, EXISTS(SELECT 1 FROM {quote(device.db_table)} d"
        f" WHERE d.{quote(device.get_field('active').column)}"
        f" AND d.{quote(device.get_field('recipient').column)} = r.{quote(Recipient._meta.pk.column)})"
    )


@functools.cache
def _recipients_find_rest(using: str) -> str:
    connection = connections[using]
    quote = connection.ops.quote_name
    return (
        f"FROM {_RECIPIENT.table(connection)}"
        f" WHERE r.{quote(Recipient._meta.get_field('project').column)} = %s"
        f" AND r.{quote(Recipient._meta.get_field('external_id').column)} IN ("
    )


def _recipients_by_external_id(connection, rows: list[list]) -> dict[str, Recipient]:
    found = {}
    for row in rows:
        recipient = _RECIPIENT.load(connection, row[:_RECIPIENT.count])
        recipient.has_active_device = bool(row[_RECIPIENT.count])
        found[recipient.external_id] = recipient
    return found


# recipients_find's read, for (RECIPIENTS_FIND, [project.pk], external_ids) in `where_in_together`.
RECIPIENTS_FIND = WhereIn(model=Recipient, width=_RECIPIENT.count + 1, columns=_recipients_find_columns,
                          rest=_recipients_find_rest, result=_recipients_by_external_id)


def recipients_with_device_flag(recipients: QuerySet[Recipient]) -> QuerySet[Recipient]:
    # recipients_find's SQL says the same: change one, change the other.
    return recipients.annotate(has_active_device=Exists(Device.objects.filter(recipient=OuterRef("pk"), active=True)))


def recipients_audience(*, project: Project, locale: str = "", has_channel: str = "") -> QuerySet[Recipient]:
    """The project's users a broadcast audience names: all of them, narrowed by each filter given.

    `locale` matches the user's locale exactly; `has_channel` keeps those with a contact point there
    (`email`: an address, `sms`: a phone number, `push`: an active device).
    """
    recipients = Recipient.objects.filter(project=project)
    if locale:
        recipients = recipients.filter(locale=locale)
    if has_channel == "email":
        recipients = recipients.exclude(email="")
    elif has_channel == "sms":
        recipients = recipients.exclude(phone="")
    elif has_channel == "push":
        recipients = recipients.filter(Exists(Device.objects.filter(recipient=OuterRef("pk"), active=True)))
    return recipients


def device_get(*, recipient: Recipient, token: str) -> Device:
    try:
        return Device.objects.get(recipient=recipient, token=token)
    except Device.DoesNotExist:
        raise NotFound("This user has no device with that token.") from None


def device_active_exists(*, recipient: Recipient) -> bool:
    return Device.objects.filter(recipient=recipient, active=True).exists()


def recipient_preferences(*, recipient: Recipient) -> dict:
    """The user's preferences in the API's shape (see apps/users/preferences.py for their effect)."""
    quiet_hours = None
    if recipient.quiet_hours_start is not None and recipient.quiet_hours_end is not None:
        quiet_hours = {"start": recipient.quiet_hours_start, "end": recipient.quiet_hours_end}
    return {"channels": recipient.channel_preferences, "categories": recipient.category_preferences,
            "quiet_hours": quiet_hours, "critical_categories": list(recipient.project.critical_categories or [])}


def devices_active_by_recipient(*, recipient_ids) -> dict[int, list[Device]]:
    """The active devices of each of these users, oldest registration first, in one query."""
    found: dict[int, list[Device]] = {}
    devices = Device.objects.filter(recipient_id__in=set(recipient_ids), active=True).order_by("created_at", "id")
    for device in devices:
        found.setdefault(device.recipient_id, []).append(device)
    return found


def recipient_for_signed_link(*, project_id: int, recipient_id: int) -> Recipient | None:
    """The user a signed link names (unsubscribe, preference page), with their project; None once erased."""
    return Recipient.objects.select_related("project").filter(id=recipient_id, project_id=project_id).first()
