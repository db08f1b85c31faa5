"""Logs and metrics (docs/operations.md, "Metrics" and "Logs and the correlation id"). Imported by base.py."""

import ipaddress

from notifier.settings.environment import VAR_DIR, env

# --- Logs ---
# JSON (one object per line, for a log pipeline) or text (for a terminal). Production defaults to
# JSON, the dev and test settings to text. Both mask addresses and credentials and carry the
# correlation id (apps/core/logs.py). Celery workers and beat use this configuration too
# (celery_app.py), and uvicorn's loggers are routed through it in the web processes.
NOTIFIER_LOG_FORMAT = env("NOTIFIER_LOG_FORMAT", default="text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation_id": {"()": "apps.core.logs.CorrelationIdFilter"}},
    "formatters": {
        "text": {"()": "apps.core.logs.TextFormatter", "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "apps.core.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": NOTIFIER_LOG_FORMAT, "filters": ["correlation_id"]},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Celery's line per task received and per task succeeded: two formatted lines per message,
        # written by the worker's main process, whose one consumer loop bounds the whole worker (it
        # cut the no-op ceiling by 39%). Flower and the delivery log show each task; failures are
        # still logged (ERROR). NOTIFIER_TASK_LOG_LEVEL=INFO brings the lines back.
        "celery.worker.strategy": {"level": env("NOTIFIER_TASK_LOG_LEVEL", default="WARNING")},
        "celery.app.trace": {"level": env("NOTIFIER_TASK_LOG_LEVEL", default="WARNING")},
        # The twilio SDK logs each request's URL and headers at INFO, a dozen lines per SMS.
        "twilio.http_client": {"level": "WARNING"},
        # uvicorn configures its own handlers before Django starts; these replace them.
        "uvicorn": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"handlers": [], "level": "INFO", "propagate": True},
        # Our middleware logs each request with its correlation id: uvicorn's line would repeat it.
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": True},
    },
}
# Celery configures logging itself unless told not to; celery_app.py applies LOGGING instead.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Task events (received, started, succeeded: Flower's task list) cost the worker's consumer loop a
# publish each, confirmed like every publish here, for every task: off unless a monitor asks.
# Flower does (its --enable-events, on by default, sends `enable_events` to the workers while it
# runs). Publishers' `task-sent` events cannot be asked for, and Flower's list does not need them.
CELERY_WORKER_SEND_TASK_EVENTS = env.bool("CELERY_WORKER_SEND_TASK_EVENTS", default=False)
CELERY_TASK_SEND_SENT_EVENT = False

# --- Metrics ---
# prometheus_client's multiprocess mode: every process of this host (uvicorn workers, Celery pool
# children, beat) writes its metrics to files in this folder, and one scrape of /metrics on any
# web process reads them all. Empty: each process keeps its own, and /metrics shows only the web
# process that answered. A process enters the folder as it starts (apps/core/metrics_folder.py,
# called by notifier/asgi.py, manage.py and celery_app.py), never when these settings are read.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "metrics"))
# GET /metrics (apps/core/metrics.py): with a token, scrapes need `Authorization: Bearer <token>`;
# with networks (CIDRs, comma-separated), only clients there are served. With neither, /metrics is
# open where NOTIFIER_METRICS_OPEN is true (dev, test) and answers 403 in production: metrics
# name queues, endpoints and error rates, which maps the service for an attacker.
NOTIFIER_METRICS_TOKEN = env("NOTIFIER_METRICS_TOKEN", default="")
NOTIFIER_METRICS_ALLOWED_NETWORKS = [
    str(ipaddress.ip_network(value.strip(), strict=False))
    for value in env.list("NOTIFIER_METRICS_ALLOWED_NETWORKS", default=[]) if value.strip()
]
NOTIFIER_METRICS_OPEN = True
# The broker is asked for queue depths with this timeout: a broker that is down or silent costs a
# scrape at most this long, and /metrics still answers.
NOTIFIER_METRICS_BROKER_TIMEOUT_SECONDS = env.float("NOTIFIER_METRICS_BROKER_TIMEOUT_SECONDS", default=1.0)
# Collectors read at scrape time, by dotted path (the metrics view lives below the apps it reads).
# What they read (a query, a broker connection) is kept this long per web process, so scrapes in
# quick succession, or anyone allowed to scrape, cost the database and the broker one read.
NOTIFIER_METRICS_COLLECTORS = [
    "apps.notifications.metrics.DeadLetterCollector",
    "apps.notifications.metrics.QueueDepthCollector",
    "apps.channels.circuit_report.CircuitStateCollector",
]
NOTIFIER_METRICS_CACHE_SECONDS = env.float("NOTIFIER_METRICS_CACHE_SECONDS", default=5.0)
