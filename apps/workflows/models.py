import uuid

from django.db import models

from apps.notifications.models import Delivery, Notification
from apps.projects.models import Project
from apps.templates.models import Template
from apps.users.models import Recipient


class Workflow(models.Model):
    """A named sequence of steps across channels (`comment-fallback`), whose content lives in versions."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="workflows")
    key = models.SlugField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "key"], name="workflow_unique_key")]

    def __str__(self) -> str:
        return self.key


class WorkflowVersion(models.Model):
    """One immutable revision of a workflow; a run keeps the version it started with.

    `steps` is the validated list (definitions.py): `{"channel": c, "if": cond?}` or
    `{"wait": seconds}`; `digest` is `{"window": seconds, "key"?, "max"?}` or
    `{"schedule": {"at": "HH:MM"}, "key"?, "max"?}`, or null.
    """

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    template = models.ForeignKey(Template, on_delete=models.PROTECT, related_name="workflow_versions")
    steps = models.JSONField()
    digest = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workflow", "version"], name="workflow_version_unique")]

    def __str__(self) -> str:
        return f"{self.workflow.key} v{self.version}"


class RunState(models.TextChoices):
    COLLECTING = "collecting"  # a digest still taking events, until due_at (or its max)
    ACTIVE = "active"  # steps to run; the next one at due_at
    DONE = "done"
    CANCELLED = "cancelled"


OPEN_RUN_STATES = (RunState.COLLECTING, RunState.ACTIVE)


class WorkflowRun(models.Model):
    """One notification going through a workflow version's steps.

    The run's position (`next_step`) and the moment it is due to move again (`due_at`) live here,
    in the database: a wait of a week is this row with a due time, picked up by the periodic scan
    (scan.py), never a delayed broker message. A digest's run is created by its first event and
    collects the others (RunEvent) until `due_at`.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="workflow_runs")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="runs")
    # The notification whose deliveries the run creates (a digest's: its first event's).
    notification = models.OneToOneField(Notification, on_delete=models.CASCADE, related_name="workflow_run")
    # CASCADE: erasing a user ends their runs (apps.erasure); the key of an open digest.
    recipient = models.ForeignKey(Recipient, null=True, on_delete=models.CASCADE, related_name="workflow_runs")
    digest_key = models.CharField(max_length=200, blank=True, help_text="The value of data[digest.key], if any.")
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.ACTIVE)
    next_step = models.PositiveSmallIntegerField(default=0)
    due_at = models.DateTimeField(null=True, blank=True)
    # True while the next step waits for earlier deliveries to settle: a delivery reaching a
    # final status then brings due_at forward (hooks.py), the scan being the safety net.
    awaiting_deliveries = models.BooleanField(default=False)
    event_count = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One open digest per user, workflow version and key value: events join it, never race
            # into two (the insert of a second waits for the first's commit, then joins it).
            models.UniqueConstraint(fields=["version", "recipient", "digest_key"],
                                    condition=models.Q(state="collecting"), name="workflow_run_one_open_digest"),
        ]
        indexes = [
            # The scan's only query: small, because it holds open runs alone.
            models.Index(fields=["due_at"], condition=models.Q(state__in=["collecting", "active"]),
                         name="workflow_run_due"),
            models.Index(fields=["notification"], condition=models.Q(awaiting_deliveries=True),
                         name="workflow_run_awaiting"),
        ]

    def __str__(self) -> str:
        return f"run {self.id} of {self.version} ({self.state})"


class StepState(models.TextChoices):
    PENDING = "pending"  # not reached yet
    WAITING = "waiting"  # a wait until due_at, or a condition waiting for earlier deliveries
    DONE = "done"
    SKIPPED = "skipped"  # its condition did not hold (reason)
    CANCELLED = "cancelled"


class RunStep(models.Model):
    """One step of one run: what happened to it, and its delivery if it created one.

    Unique per (run, index), and moved to `done` in the transaction that creates its delivery, so
    a process killed at any point neither loses the step nor runs it twice.
    """

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="steps")
    index = models.PositiveSmallIntegerField()
    channel = models.CharField(max_length=16, blank=True)
    condition = models.CharField(max_length=16, blank=True)
    wait_seconds = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=StepState.choices, default=StepState.PENDING)
    reason = models.CharField(max_length=200, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    delivery = models.OneToOneField(Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("run", "index")
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="run_step_unique_index")]

    def __str__(self) -> str:
        return f"step {self.index} of {self.run_id} ({self.state})"


class RunEvent(models.Model):
    """A notification that joined a digest's run, in order of arrival (the first is the run's own)."""

    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="events")
    notification = models.OneToOneField(Notification, on_delete=models.CASCADE, related_name="workflow_event")
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ("run", "position")
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="run_event_unique_position")]

    def __str__(self) -> str:
        return f"event {self.position} of {self.run_id}"
