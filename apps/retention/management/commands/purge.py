"""`manage.py purge [--dry-run]`: what beat does periodically, by hand."""

from django.core.management.base import BaseCommand, CommandParser

from apps.retention.services import retention_purge


class Command(BaseCommand):
    help = ("Delete deliveries, attempts, notifications, broadcasts and inbox messages older than the retention "
            "period (NOTIFIER_RETENTION_DAYS, NOTIFIER_INBOX_RETENTION_DAYS), in batches.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")
        parser.add_argument("--batch-size", type=int, default=None, help="Rows per transaction "
                            "(default NOTIFIER_RETENTION_BATCH_SIZE).")
        parser.add_argument("--budget-seconds", type=float, default=None, help="Stop after this long "
                            "(default NOTIFIER_RETENTION_TIME_BUDGET_SECONDS); run again to continue.")

    def handle(self, *args, dry_run: bool, batch_size: int | None, budget_seconds: float | None, **options) -> None:
        result = retention_purge(dry_run=dry_run, batch_size=batch_size, budget_seconds=budget_seconds)
        for label, before in (("delivery log", result.delivery_log_before), ("inbox", result.inbox_before)):
            self.stdout.write(f"{label}: " + (f"older than {before.isoformat()}" if before else "kept forever"))
        verb = "would delete" if dry_run else "deleted"
        rows = ", ".join(f"{count} {name}" for name, count in sorted(result.rows.items())) or "nothing"
        self.stdout.write(f"{verb}: {rows}" + ("" if dry_run else f" in {result.batches} batches"))
        if not result.complete:
            self.stdout.write("stopped at the time budget; run again to continue")
