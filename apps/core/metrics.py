"""GET /metrics for Prometheus, served only to the scrapers an operator let in.

Metrics name endpoints, queues and error rates: useful to an attacker mapping the service. With
NOTIFIER_METRICS_TOKEN set, a scrape must send `Authorization: Bearer <token>` (Prometheus:
`authorization: {credentials: ...}` in the scrape config); NOTIFIER_METRICS_ALLOWED_NETWORKS
limits the client addresses as well. With neither, production answers 403 (NOTIFIER_METRICS_OPEN).

What one scrape shows: in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, the default), the sum over
every process of this host that writes to that folder (web, workers, beat), whichever web process
answers; plus the collectors of NOTIFIER_METRICS_COLLECTORS, read at scrape time (the dead-letter
queue from the database, queue depths from the broker) and kept NOTIFIER_METRICS_CACHE_SECONDS, so
that a burst of scrapes costs the database and the broker one read. See docs/operations.md, "Metrics".
"""

import hmac
import ipaddress
import logging
import threading
import time

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils.module_loading import import_string
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from apps.core.api import error_body
from apps.core.metrics_folder import metrics_folder_in_use
from apps.core.metrics_middleware import request_metrics_flush

logger = logging.getLogger(__name__)


def metrics_view(request):
    networks, token = settings.NOTIFIER_METRICS_ALLOWED_NETWORKS, settings.NOTIFIER_METRICS_TOKEN
    if not (networks or token or settings.NOTIFIER_METRICS_OPEN):
        return JsonResponse(error_body(
            "permission_denied",
            "Metrics are closed: set NOTIFIER_METRICS_TOKEN or NOTIFIER_METRICS_ALLOWED_NETWORKS to let a scraper in.",
        ), status=403)
    if networks and not _client_in(networks, request):
        return JsonResponse(error_body("permission_denied", "Metrics are not served to this address."), status=403)
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            response = JsonResponse(error_body("not_authenticated", "Metrics need the scrape token (Bearer)."), status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    request_metrics_flush()  # this process's last second of HTTP counts, which its flusher has not written yet
    return HttpResponse(generate_latest(_Scrape()), content_type=CONTENT_TYPE_LATEST)


class _Scrape:
    """What one scrape collects: the processes' metrics, then each scrape-time collector."""

    def collect(self):
        folder = metrics_folder_in_use()
        if folder:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=folder)
            yield from registry.collect()
        else:
            yield from REGISTRY.collect()
        for path in settings.NOTIFIER_METRICS_COLLECTORS:
            yield from _collected(path)


_collected_cache: dict[str, tuple[float, list]] = {}
_collected_lock = threading.Lock()


def _collected(path: str) -> list:
    """What the scrape-time collector at `path` reports, read at most once per
    NOTIFIER_METRICS_CACHE_SECONDS in this process. Under a lock: scrapes run on several threads
    of a web process, and two arriving together must not both go to the broker."""
    with _collected_lock:
        read_at, families = _collected_cache.get(path, (None, []))
        now = time.monotonic()
        if read_at is None or now - read_at >= settings.NOTIFIER_METRICS_CACHE_SECONDS:
            try:
                families = list(import_string(path)().collect())
            except Exception:
                # One source failing (a bug, a timeout) leaves its metrics out, not the scrape.
                logger.exception("metrics: collector %s failed", path)
                families = []
            _collected_cache[path] = (now, families)
        return families


def metrics_cache_clear() -> None:
    """Forget what the scrape-time collectors read (the next scrape reads again)."""
    with _collected_lock:
        _collected_cache.clear()


def _client_in(networks: list[str], request) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network) for network in networks)
