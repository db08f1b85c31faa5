"""Advance one run with a pause between "condition evaluated" and "delivery created", so a test
can SIGKILL this process right there. Run as: python -m tests.workflows.crash_step RUN_ID."""

import sys
import time

import django

django.setup()

from apps.workflows import engine  # noqa: E402


def _paused(**kwargs):
    print("condition evaluated", flush=True)
    time.sleep(600)  # killed here, inside the step's open transaction


engine.notification_delivery_add = _paused
engine.run_advance(run_id=sys.argv[1])
