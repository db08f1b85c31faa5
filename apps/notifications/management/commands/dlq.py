"""`manage.py dlq list|replay|discard`: the dead-letter queue from the command line.

Without --broker it acts on the dead-letter queue of record (dead deliveries in the database);
with --broker, on the messages RabbitMQ dead-lettered (notifications.<channel>.dead).
"""

import getpass
import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from apps.notifications.operations.dead_letters import (
    broker_dead_letters,
    dead_letters_discard,
    dead_letters_list,
    dead_letters_replay,
)

_PAST = {"list": "Listed", "replay": "Replayed", "discard": "Discarded"}


class Command(BaseCommand):
    help = "List, replay or discard dead letters (dead deliveries; with --broker, broker dead-lettered messages)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "replay", "discard"])
        parser.add_argument("--channel", choices=settings.NOTIFICATION_CHANNELS, help="Only this channel.")
        parser.add_argument("--since", help="Only what died at or after this ISO-8601 time (UTC if no offset).")
        parser.add_argument("--id", dest="ids", nargs="+", default=[], metavar="ID",
                            help="Only these delivery ids (with --broker: delivery or task ids).")
        parser.add_argument("--dry-run", action="store_true", help="Print what would be done; change nothing.")
        parser.add_argument("--broker", action="store_true",
                            help="Act on the broker's dead-letter queues instead: replay sends a message back to "
                                 "the queue it came from.")
        parser.add_argument("--limit", type=int, default=1000, help="At most this many (default 1000).")
        parser.add_argument("--note", default="", help="Recorded with each replay or discard.")

    def handle(self, *args, action, channel, since, ids, dry_run, broker, limit, note, **options):
        since = _parse_since(since) if since else None
        if broker:
            self._broker(action, channel=channel or "", since=since, ids=ids, dry_run=dry_run, limit=limit)
        else:
            self._deliveries(action, channel=channel or "", since=since, ids=_parse_ids(ids), dry_run=dry_run,
                             limit=limit, note=note)

    def _deliveries(self, action, *, channel, since, ids, dry_run, limit, note):
        letters = list(dead_letters_list(channel=channel, since=since, ids=ids)[:limit])
        missing = set(ids) - {str(d.id) for d in letters}
        verb = _verb(action, dry_run)
        if action != "list" and not dry_run:
            service = dead_letters_replay if action == "replay" else dead_letters_discard
            result = service(delivery_ids=[d.id for d in letters], actor_label=_cli_actor(), note=note)
            missing |= set(result.skipped)
            letters = result.done
        for delivery in letters:
            self.stdout.write(_describe(delivery) if action == "list" else f"{verb} {_describe(delivery)}")
        for delivery_id in sorted(missing):
            self.stderr.write(f"Skipped {delivery_id}: not in the dead-letter queue.")
        self.stdout.write(f"{verb} {len(letters)} dead letter(s).")

    def _broker(self, action, *, channel, since, ids, dry_run, limit):
        letters = broker_dead_letters(action=action, channel=channel, since=since, ids=ids, dry_run=dry_run, limit=limit,
                                      actor_label=_cli_actor())
        verb = _verb(action, dry_run)
        for letter in letters:
            where = f" → {letter.original_queue}" if action == "replay" else ""
            dead_at = letter.dead_at.isoformat() if letter.dead_at else "?"
            self.stdout.write(
                f"{verb} {letter.queue}{where}: task {letter.task} id {letter.task_id} args {letter.args} "
                f"({letter.reason} {letter.times}x, last at {dead_at})"
            )
        self.stdout.write(f"{verb} {len(letters)} broker dead letter(s).")


def _verb(action: str, dry_run: bool) -> str:
    return f"Would {action}" if dry_run and action != "list" else _PAST[action]


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # a container user with no passwd entry
        return "cli:unknown"


def _describe(delivery) -> str:
    error = f"{delivery.last_error_code}: {delivery.last_error}" if delivery.last_error_code else delivery.last_error
    return (f"{delivery.id} {delivery.channel} to {delivery.notification.to!r} dead since "
            f"{delivery.status_changed_at.isoformat()} after {delivery.attempt_count} attempt(s) [{error[:200]}]")


def _parse_since(value: str) -> datetime:
    try:
        parsed = parse_datetime(value)
        if parsed is None and (day := parse_date(value)) is not None:
            parsed = datetime(day.year, day.month, day.day)
    except ValueError:
        parsed = None
    if parsed is None:
        raise CommandError(f"--since {value!r} is not an ISO-8601 date or time.")
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def _parse_ids(values: list[str]) -> list[str]:
    try:
        return [str(uuid.UUID(v)) for v in values]
    except ValueError as exc:
        raise CommandError(f"--id takes delivery ids (UUIDs): {exc}") from None
