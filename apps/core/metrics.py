"""GET /metrics for Prometheus, closed to whoever lacks the scrape token when one is configured.

Metrics name endpoints, queues and error rates: useful to an attacker mapping the service. With
NOTIFIER_METRICS_TOKEN set, a scrape must send `Authorization: Bearer <token>` (Prometheus:
`authorization: {credentials: ...}` in the scrape config); NOTIFIER_METRICS_ALLOWED_NETWORKS
limits the client addresses as well.

What one scrape shows: in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, the default), the sum over
every process of this host that writes to that folder (web, workers, beat), whichever web process
answers; plus the collectors of NOTIFIER_METRICS_COLLECTORS, read at scrape time (the dead-letter
queue from the database, queue depths from the broker). See docs/operations.md, "Metrics".
"""

import hmac
import ipaddress
import logging
import os
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils.module_loading import import_string
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess, values

from apps.core.api import error_body

logger = logging.getLogger(__name__)


def metrics_view(request):
    if settings.NOTIFIER_METRICS_ALLOWED_NETWORKS and not _client_in(settings.NOTIFIER_METRICS_ALLOWED_NETWORKS, request):
        return JsonResponse(error_body("permission_denied", "Metrics are not served to this address."), status=403)
    token = settings.NOTIFIER_METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            response = JsonResponse(error_body("not_authenticated", "Metrics need the scrape token (Bearer)."), status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return HttpResponse(generate_latest(_Scrape()), content_type=CONTENT_TYPE_LATEST)


class _Scrape:
    """What one scrape collects: the processes' metrics, then each scrape-time collector."""

    def collect(self):
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if folder:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=folder)
            yield from registry.collect()
        else:
            yield from REGISTRY.collect()
        for path in settings.NOTIFIER_METRICS_COLLECTORS:
            try:
                yield from import_string(path)().collect()
            except Exception:
                # One source failing (a bug, a timeout) leaves its metrics out, not the scrape.
                logger.exception("metrics: collector %s failed", path)


def metrics_folder_prepare() -> None:
    """Make the multiprocess folder if missing and clean it, as the process starts (before any
    metric of ours is created: the apps' ready(), ahead of the tasks and the first request).

    Where it cannot be made (a read-only filesystem), the process keeps its metrics to itself
    rather than fail to start: prometheus_client chose its file-backed values when imported, so
    the choice is undone here too.
    """
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        logger.warning("metrics folder %s cannot be made (%s): this process's metrics stay its own", folder, exc)
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        values.ValueClass = values.MutexValue
        return
    metrics_folder_clean(folder=folder)


def metrics_folder_clean(*, folder: str | None = None) -> int:
    """Remove a previous run's files from the multiprocess folder, at a process's start; return how many.

    prometheus_client wants the folder wiped between runs: files of processes gone would otherwise
    add old counts to the new run's. "A run" is this host's processes together, which start in
    any order: a process that finds a live process's file in the folder joins that run and only
    drops the live-gauge files of processes gone (what mark_process_dead does); one that finds
    none alive starts a new run and removes every file of a process gone. Counters of a pool
    child that exits during a run stay, so totals never go backwards while the host runs.
    """
    folder = folder or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder or not Path(folder).is_dir():
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


def _client_in(networks: list[str], request) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network) for network in networks)
