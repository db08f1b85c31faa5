"""Retention keeps what an open run still needs; erasing a user ends their runs."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.notifications.models import Delivery, Notification
from apps.retention.services import retention_purge
from apps.workflows.models import RunState, RunStep, WorkflowRun
from tests.workflows.conftest import put_workflow
from tests.workflows.helpers import start, work

pytestmark = pytest.mark.django_db


def age_everything(days: float) -> None:
    past = timezone.now() - timedelta(days=days)
    Notification.objects.update(created_at=past)
    Delivery.objects.update(status_changed_at=past)


def test_a_run_in_its_30_day_wait_keeps_its_notification_and_deliveries_past_retention(api, user, template, channels,
                                                                                        settings):
    settings.NOTIFIER_RETENTION_DAYS = 30
    put_workflow(api, "long", template="alert",
                 steps=[{"channel": "email"}, {"wait": "30d"}, {"channel": "sms", "if": "not_delivered"}])
    start(api, "long")
    work()
    age_everything(31)

    retention_purge()
    assert Notification.objects.count() == 1 and Delivery.objects.count() == 1
    assert WorkflowRun.objects.get().state == RunState.ACTIVE

    WorkflowRun.objects.update(state=RunState.DONE, due_at=None)  # the run has ended: its rows may go now
    retention_purge()
    assert not Notification.objects.exists() and not WorkflowRun.objects.exists() and not RunStep.objects.exists()


def test_erasing_the_user_ends_their_runs(api, user, template, channels):
    put_workflow(api, "long", template="alert", steps=[{"channel": "email"}, {"wait": "1d"}, {"channel": "sms"}])
    start(api, "long")
    work()
    assert api.delete("/api/v1/users/ada").status_code in (200, 204)
    assert not WorkflowRun.objects.exists()
    assert Notification.objects.get().data == {}
