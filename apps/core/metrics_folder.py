"""The folder in which the processes of one host share their metrics (prometheus_client's
multiprocess mode; docs/operations.md, "Metrics").

Each process enters it as it starts, before Django sets up the apps that create metrics: the web
processes in notifier/asgi.py (and manage.py, whose runserver serves /metrics too), Celery's
worker and beat in celery_app.py, before the worker's pool children fork (they inherit it). The
settings only name it (PROMETHEUS_MULTIPROC_DIR); reading them changes nothing.

Imports nothing of the apps: it runs before the app registry is ready.
"""

import logging
import os
from pathlib import Path

from django.conf import settings
from prometheus_client import values

logger = logging.getLogger(__name__)

ENVIRONMENT_NAME = "PROMETHEUS_MULTIPROC_DIR"


def metrics_folder_use() -> str:
    """Make this process write its metrics to the configured folder; return the folder, or "" when
    the process keeps them to itself (none configured, or it cannot be made: a read-only filesystem
    must not stop a process from starting).

    prometheus_client picks file-backed or in-memory values when it is first imported, from the
    environment, and that can be before this runs: Celery's command line imports Flower's plugin,
    which imports prometheus_client, before our app is loaded. So the choice is made again here.
    """
    folder = settings.PROMETHEUS_MULTIPROC_DIR
    if folder:
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            logger.warning("metrics folder %s cannot be made (%s): this process's metrics stay its own", folder, exc)
            folder = ""
    if folder:
        os.environ[ENVIRONMENT_NAME] = str(folder)  # read by prometheus_client, and by children this process starts
    else:
        os.environ.pop(ENVIRONMENT_NAME, None)
    values.ValueClass = values.get_value_class()
    if folder:
        metrics_folder_clean(folder=folder)
    return folder


def metrics_folder_in_use() -> str:
    """The folder this process writes its metrics to, or "" (metrics_folder_use)."""
    return os.environ.get(ENVIRONMENT_NAME, "")


def metrics_folder_clean(*, folder: str) -> int:
    """Remove a previous run's files from the multiprocess folder, at a process's start; return how many.

    prometheus_client wants the folder wiped between runs: files of processes gone would otherwise
    add old counts to the new run's. "A run" is this host's processes together, which start in
    any order: a process that finds a live process's file in the folder joins that run and only
    drops the live-gauge files of processes gone (what mark_process_dead does); one that finds
    none alive starts a new run and removes every file of a process gone. Counters of a pool
    child that exits during a run stay, so totals never go backwards while the host runs.
    """
    if not Path(folder).is_dir():
        return 0
    files = {}
    for path in Path(folder).glob("*.db"):
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit():
            files.setdefault(int(pid), []).append(path)
    alive = {pid for pid in files if pid == os.getpid() or _alive(pid)}
    removed = 0
    for pid, paths in files.items():
        if pid in alive:
            continue
        for path in paths:
            if not alive or path.name.startswith("gauge_live"):
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
