from celery import shared_task

from apps.notifications.queues import TASK_RETENTION_PURGE
from apps.retention.services import retention_purge


@shared_task(name=TASK_RETENTION_PURGE, ignore_result=False)
def retention_purge_task() -> dict:
    """Delete what is past the retention period, within the time budget (see services.py)."""
    return retention_purge().as_dict()
