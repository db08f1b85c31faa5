"""A task that does nothing, for the ceiling of the broker and worker settings under test.

Workers load it only in `make bench` (`--include=bench.noop`); it is published to the email queue,
so it goes through the same queue arguments, prefetch, acks and pool as an email delivery.
"""

from celery import shared_task

NOOP_TASK_NAME = "bench.noop"


@shared_task(name=NOOP_TASK_NAME, ignore_result=True)
def noop(delivery_id: str) -> None:
    """The argument has a delivery's shape, so the message is as large as a real one."""
