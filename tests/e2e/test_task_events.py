"""A worker sends no task events until a monitor asks for them, as Flower does while it runs
(`enable_events`); then a task's run is seen in them, as Flower's task list shows it."""

import threading
import time

import pytest

from apps.notifications.tasks import deliveries_sweep_task
from celery_app import app

pytestmark = pytest.mark.e2e


def task_events_seen(seconds: float, *, during) -> list[dict]:
    """The task events the broker carried while `during()` ran and for `seconds` after."""
    seen: list[dict] = []
    with app.connection_for_read() as connection:
        receiver = app.events.Receiver(connection, handlers={"*": seen.append})
        listening = threading.Thread(target=receiver.capture, kwargs={"limit": None, "wakeup": False}, daemon=True)
        listening.start()
        time.sleep(2)  # its queue bound to the events exchange
        during()
        time.sleep(seconds)
        receiver.should_stop = True
        listening.join(5)
    return [event for event in seen if event["type"].startswith("task-")]


def test_task_events_are_sent_only_once_a_monitor_asks(worker):
    assert task_events_seen(3, during=lambda: deliveries_sweep_task.delay()) == []

    replies = app.control.enable_events(reply=True, timeout=5)
    try:
        assert replies and all("ok" in reply for answer in replies for reply in answer.values()), replies
        events = task_events_seen(3, during=lambda: deliveries_sweep_task.delay())
    finally:
        app.control.disable_events(reply=True, timeout=5)

    assert {"task-received", "task-started", "task-succeeded"} <= {event["type"] for event in events}
