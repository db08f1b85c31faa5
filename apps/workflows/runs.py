"""Starting runs: in the transaction that inserts their notifications, so a run exists exactly
when its notification does (an idempotent repeat or a rolled-back batch starts nothing)."""

from datetime import datetime, timedelta

from django.utils import timezone

from apps.users.preferences import recipient_zone
from apps.workflows.engine import digest_close
from apps.workflows.models import RunEvent, RunState, RunStep, WorkflowRun, WorkflowVersion
from apps.workflows.selectors import workflow_versions_newest
from apps.workflows.wakeups import runs_advance_on_commit

DIGEST_PROVIDES = ("events", "event_count")


def runs_start(*, project, started: list) -> None:
    """A run for each (notification, workflow key); a digest's event joins the open digest."""
    versions = workflow_versions_newest(project=project, keys={key for _, key in started})
    now = timezone.now()
    plain, due_now = [], []
    for notification, key in started:
        version = versions[key]
        if version.digest:
            if (run_id := _digest_join(version=version, notification=notification, now=now)) is not None:
                due_now.append(run_id)
            continue
        due = notification.send_at if notification.send_at and notification.send_at > now else now
        run = WorkflowRun(project=project, version=version, notification=notification,
                          recipient=notification.recipient, due_at=due)
        plain.append(run)
        if due == now:
            due_now.append(run.id)
    if plain:
        WorkflowRun.objects.bulk_create(plain)
        RunStep.objects.bulk_create([step for run in plain for step in _steps_of(run)])
    runs_advance_on_commit(due_now)


def _steps_of(run: WorkflowRun) -> list[RunStep]:
    return [
        RunStep(run=run, index=index, channel=step.get("channel", ""), condition=step.get("if", ""),
                wait_seconds=step.get("wait"))
        for index, step in enumerate(run.version.steps)
    ]


def _digest_join(*, version: WorkflowVersion, notification, now: datetime):
    """Add the notification to its user's open digest of this workflow (and key value), opening
    one if there is none. Returns the run's id when the digest is now full (its `max`).

    Concurrency: the open digest is unique (workflow_run_one_open_digest); an insert racing
    another one for the same digest waits for it (ON CONFLICT DO NOTHING), then joins it under
    its row lock, as does everyone who finds it open.
    """
    digest = version.digest
    key_value = str(notification.data.get(digest["key"], ""))[:200] if digest.get("key") else ""
    for _ in range(3):
        run = (WorkflowRun.objects.select_for_update(of=("self",))
               .filter(version=version, recipient=notification.recipient, digest_key=key_value,
                       state=RunState.COLLECTING).first())
        if run is not None:
            run.event_count += 1
            RunEvent.objects.create(run=run, notification=notification, position=run.event_count)
            full = digest.get("max") is not None and run.event_count >= digest["max"]
            if full:
                # Closed now, under the lock: the next event opens a digest of its own.
                digest_close(run)
                run.due_at = now
            run.save(update_fields=["event_count", "due_at", "state"])
            return run.id if full else None
        run = WorkflowRun(project_id=notification.project_id, version=version, notification=notification,
                          recipient=notification.recipient, digest_key=key_value, state=RunState.COLLECTING,
                          due_at=digest_closes_at(digest=digest, recipient=notification.recipient, first=now))
        WorkflowRun.objects.bulk_create([run], ignore_conflicts=True)
        if WorkflowRun.objects.filter(id=run.id).exists():
            RunStep.objects.bulk_create(_steps_of(run))
            RunEvent.objects.create(run=run, notification=notification, position=1)
            if digest.get("max") == 1:  # full with its first event
                digest_close(run)
                run.due_at = now
                run.save(update_fields=["state", "due_at"])
                return run.id
            return None
    raise RuntimeError("the open digest kept changing under this event")


def digest_closes_at(*, digest: dict, recipient, first: datetime) -> datetime:
    """When a digest whose first event came at `first` is sent: `window` after it, or the next
    `schedule.at` in the user's timezone."""
    if "window" in digest:
        return first + timedelta(seconds=digest["window"])
    hour, minute = (int(part) for part in digest["schedule"]["at"].split(":"))
    local = first.astimezone(recipient_zone(recipient))
    at = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if at <= local:
        # Tomorrow's, by the calendar: a DST change keeps the local time, not 24 hours.
        at = (local + timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return at
