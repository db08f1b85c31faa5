"""Settings shared by every environment; read from the environment (and `.env` when present).

The environment names are public (README, "Configuration"): add new ones freely, never rename.
"""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

from apps.notifications import queues
from notifier.settings.environment import BASE_DIR, env
from notifier.settings.pipeline import *  # noqa: F403  (providers, channels and delivery tuning)
from notifier.settings.pipeline import (
    NOTIFIER_BROADCAST_QUEUE,
    NOTIFIER_RETENTION_INTERVAL_SECONDS,
    NOTIFIER_SEND_TIME_LIMIT_SECONDS,
    NOTIFIER_SWEEP_INTERVAL_SECONDS,
)

# Embedded-mode state: the SQLite file, the filesystem broker's folders, the file mailbox. Nothing
# here creates a directory: a process creates the ones it needs when it starts (NOTIFIER_STATE_DIRS).
VAR_DIR = Path(env("NOTIFIER_DATA_DIR", default=str(BASE_DIR / "var")))

SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-only-insecure-secret-key-change-me")
DEBUG = False
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "django_prometheus",
    "corsheaders",
    # Rate-limits admin logins (settings below); the API's Api-Key and user tokens never go
    # through Django's authenticate(), so axes never sees them.
    "axes",
]
LOCAL_APPS = [
    "apps.projects",
    "apps.users",
    "apps.templates",
    "apps.notifications",
    "apps.channels",
    "apps.inbox",
    "apps.retention",
    # No models: the users' console page with its erasing delete (apps/erasure/admin.py).
    "apps.erasure",
    "apps.preference_center",
]
# apps.core first: its ready() prepares what every process needs before any other app's ready()
# runs, notably the metrics folder, which must exist before the admin's autodiscovery imports the
# modules that declare metrics. (Its templates have names of their own: nothing of Django's is
# overridden by coming first.)
INSTALLED_APPS = ["apps.core", *DJANGO_APPS, *THIRD_PARTY_APPS, *LOCAL_APPS]

MIDDLEWARE = [
    # First: every later middleware's log lines carry the request's correlation id.
    "apps.core.correlation.CorrelationIdMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.projects.throttling.RateLimitHeadersMiddleware",  # RateLimit-* on API-key answers
    # Before Prometheus' own: exceptions go up the list, so Prometheus counts one before it becomes a 503.
    "apps.core.middleware.DatabaseUnavailableMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Answers a locked-out admin login with the lockout page; last, as django-axes asks.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "notifier.urls"
ASGI_APPLICATION = "notifier.asgi.application"
WSGI_APPLICATION = "notifier.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The project's overrides of the admin's own templates (its index links the dashboard): found
        # before the apps' templates, which django.contrib.admin's would otherwise shadow.
        "DIRS": [BASE_DIR / "notifier" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'notifier.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Connections one web process may hold (README, "Capacity").
NOTIFIER_DB_POOL_MAX_SIZE = env.int("NOTIFIER_DB_POOL_MAX_SIZE", default=8)
# A worker's wait for a connection: short, so that while the database refuses connections a send
# gives up well inside the task's time limit and is tried again seconds later (celery_app.py).
NOTIFIER_WORKER_DB_POOL_TIMEOUT_SECONDS = env.float("NOTIFIER_WORKER_DB_POOL_TIMEOUT_SECONDS", default=2.0)
# A prefork worker's child keeps one plain connection across its tasks (celery_app.py,
# database_connection_per_child), replaced after this long so none lives for ever.
NOTIFIER_WORKER_DB_CONN_MAX_AGE_SECONDS = env.int("NOTIFIER_WORKER_DB_CONN_MAX_AGE_SECONDS", default=600)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat write to the one file at once in embedded mode: WAL lets readers run
    # beside the writer, IMMEDIATE takes the write lock up front (no upgrade deadlocks), and the
    # timeout waits for the lock instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
elif env.bool("NOTIFIER_DB_POOL", default=True):
    # A bounded pool per process, shared by its threads. Under ASGI Django runs each request's
    # sync code in a thread of its own, so persistent connections (CONN_MAX_AGE > 0) would leave
    # one open connection behind per request thread until PostgreSQL refuses new clients; the
    # pool caps a web process at NOTIFIER_DB_POOL_MAX_SIZE and makes requests wait their turn
    # (up to the timeout, then 503). Django requires CONN_MAX_AGE = 0 with it: "closing" a
    # connection hands it back to the pool. min_size 0: a Celery prefork child gets a fresh
    # pool per task (Celery closes it after each), which must not open spare connections.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # the pool checks a connection before lending it
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("NOTIFIER_DB_POOL_MIN_SIZE", default=0),
        "max_size": NOTIFIER_DB_POOL_MAX_SIZE,
        # How long a request waits for a free connection (or for PostgreSQL to accept a new
        # one) before it gets a 503 database_unavailable.
        "timeout": env.float("NOTIFIER_DB_POOL_TIMEOUT_SECONDS", default=10.0),
        # Idle connections beyond min_size are closed after this long.
        "max_idle": env.float("NOTIFIER_DB_POOL_MAX_IDLE_SECONDS", default=300.0),
    }
else:
    # Behind an external pooler (PgBouncer) that already bounds connections.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The connection budget (README, "Capacity"; checked by apps/core/checks.py): how many web
# processes (the Procfile's `web` starts WEB_CONCURRENCY, one per core by default) and Celery
# worker processes the deployment runs, what is kept free for operators, and the limit when it
# should not be read from the server.
NOTIFIER_WEB_CONCURRENCY = env.int(
    "WEB_CONCURRENCY", default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
)
NOTIFIER_CELERY_WORKERS = env.int("NOTIFIER_CELERY_WORKERS", default=1)
NOTIFIER_DB_RESERVED_CONNECTIONS = env.int("NOTIFIER_DB_RESERVED_CONNECTIONS", default=5)
NOTIFIER_DB_MAX_CONNECTIONS = env.int("NOTIFIER_DB_MAX_CONNECTIONS", default=None)
# The Retry-After of the 503 a request gets while the database refuses connections.
NOTIFIER_DB_UNAVAILABLE_RETRY_AFTER_SECONDS = env.int("NOTIFIER_DB_UNAVAILABLE_RETRY_AFTER_SECONDS", default=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Admin logins: rate-limited by django-axes (docs/operations.md, "The console") ---------------
# AxesStandaloneBackend first: it refuses a locked-out login before a password is even checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# Failed logins for one user name from one address before both are locked out; a success resets them.
AXES_FAILURE_LIMIT = env.int("NOTIFIER_ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# How long a lockout lasts (then the failures are forgotten).
AXES_COOLOFF_TIME = timedelta(minutes=env.int("NOTIFIER_ADMIN_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/login_locked_out.html"


def _admin_login_client_address(request) -> str | None:
    """The connection's address. uvicorn sets it from X-Forwarded-For only for the proxies in
    FORWARDED_ALLOW_IPS, so a client cannot pick its own address to dodge the limit (as it could if
    the header were read here, which django-ipware does when installed)."""
    return request.META.get("REMOTE_ADDR")


AXES_CLIENT_IP_CALLABLE = _admin_login_client_address

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Admin static files are served by WhiteNoise straight from the apps, so `make run` needs no
# collectstatic step.
WHITENOISE_USE_FINDERS = True

# --- Email ------------------------------------------------------------------------------------
# EMAIL_URL: smtp://user:pass@host:port (plain), smtp+tls:// or smtps:// (STARTTLS, e.g. port 587),
# smtp+ssl:// (implicit TLS, port 465): django-environ's mapping.
# Without it, mail goes to files a developer can read in var/mail/.
vars().update(env.email_url("EMAIL_URL", default="filemail://"))
EMAIL_FILE_PATH = EMAIL_FILE_PATH or str(VAR_DIR / "mail")  # noqa: F405  (set by the line above)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Notifier <notifications@localhost>")
# Each email's Message-ID is <delivery id@this domain>, the same on every attempt (receivers drop
# the repeat); empty means the domain of DEFAULT_FROM_EMAIL.
NOTIFIER_EMAIL_MESSAGE_ID_DOMAIN = env("NOTIFIER_EMAIL_MESSAGE_ID_DOMAIN", default="")

# --- Redis for workers (apps/core/redis.py): webhook leases, inbox wake-ups ---
# A worker waits at most this long for Redis, then leaves it alone for the pause: a Redis that
# accepts connections and never answers must not hold up sends.
NOTIFIER_REDIS_TIMEOUT_SECONDS = env.float("NOTIFIER_REDIS_TIMEOUT_SECONDS", default=0.5)
NOTIFIER_REDIS_PAUSE_SECONDS = env.float("NOTIFIER_REDIS_PAUSE_SECONDS", default=5.0)

# --- In-app inbox (apps/inbox) -------------------------------------------------------------------------
# Life of a user's inbox token (POST /api/v1/users/{id}/token). Tokens are stateless and cannot be
# revoked early, so keep it short; the app asks its backend for a new one when a call gets 401.
NOTIFIER_INBOX_TOKEN_TTL_SECONDS = env.int("NOTIFIER_INBOX_TOKEN_TTL_SECONDS", default=3600)
# The live stream's heartbeat (a comment line that keeps proxies from closing an idle stream; each
# also re-reads the database, bounding what a lost wake-up can delay) and the reconnect delay it
# suggests to browsers (the SSE `retry:` field).
NOTIFIER_INBOX_HEARTBEAT_SECONDS = env.float("NOTIFIER_INBOX_HEARTBEAT_SECONDS", default=15.0)
NOTIFIER_INBOX_STREAM_RETRY_MS = env.int("NOTIFIER_INBOX_STREAM_RETRY_MS", default=3000)
# Open live streams allowed per user and per web process; one more is refused with 429
# (`too_many_streams`, Retry-After). A stream costs memory and a socket, not a database
# connection: the process cap keeps one process from running out of file descriptors.
NOTIFIER_INBOX_STREAMS_PER_USER = env.int("NOTIFIER_INBOX_STREAMS_PER_USER", default=5)
NOTIFIER_INBOX_STREAMS_PER_PROCESS = env.int("NOTIFIER_INBOX_STREAMS_PER_PROCESS", default=1000)
# Prefix of the Redis pub/sub channels that wake streams, and of the keys holding webhook leases
# and providers' circuits: installations sharing one Redis differ here.
NOTIFIER_INBOX_CHANNEL_PREFIX = env("NOTIFIER_INBOX_CHANNEL_PREFIX", default="notifier:")
# The inbox is called from the product's own pages, usually on another origin: those origins
# (e.g. https://app.example.com) may call /api/v1/inbox* with a bearer token. Nothing else is
# opened to browsers; the server-to-server API never needs CORS.
CORS_ALLOWED_ORIGINS = env.list("NOTIFIER_INBOX_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/v1/inbox(/.*)?$"
CORS_ALLOW_HEADERS = ("authorization", "content-type", "last-event-id")
CORS_PREFLIGHT_MAX_AGE = 3600
# The token travels in the Authorization header (or ?token= for the stream), never in a cookie:
# browsers are not to send any credentials cross-origin (django-cors-headers' default, said here).
CORS_ALLOW_CREDENTIALS = False
# The page /inbox/demo/ (the widget for the demo user of `make run`): the dev settings turn it on.
NOTIFIER_INBOX_DEMO = False

# --- The preference page (apps/preference_center) --------------------------------------------------
# Life of a preference link (POST /users/{id}/preferences-link, and every email's footer link,
# `{{ preferences_url }}`). The link is its own credential, so it expires; long enough for an email
# read a few weeks late.
NOTIFIER_PREFERENCES_LINK_TTL_SECONDS = env.int("NOTIFIER_PREFERENCES_LINK_TTL_SECONDS", default=30 * 24 * 3600)
# The languages the pages end users see are written in (the user's locale picks one; else English).
LANGUAGES = [("en", "English"), ("fr", "Français")]

# --- Templates (apps/templates/rendering.py) -------------------------------------------------------
# Templates are written by API key holders and rendered on our servers: one channel's rendering
# stops with an error (preview: 422 template_render_error; sending: failed, template_error) past
# this much output (or any one value a filter builds; 8x it for all of them) or time. A
# legitimate notification is far below both.
NOTIFIER_TEMPLATE_MAX_RENDERED_BYTES = env.int("NOTIFIER_TEMPLATE_MAX_RENDERED_BYTES", default=1024 * 1024)
NOTIFIER_TEMPLATE_MAX_RENDER_SECONDS = env.float("NOTIFIER_TEMPLATE_MAX_RENDER_SECONDS", default=2.0)
# Compiled template parts kept per process for reuse, by estimated size (least recently used out).
NOTIFIER_TEMPLATE_CACHE_MAX_BYTES = env.int("NOTIFIER_TEMPLATE_CACHE_MAX_BYTES", default=64 * 1024 * 1024)
# A preview renders a template no one has sent yet: it runs in a separate render process, so
# whatever it does, the web process stays up. Each web process starts at most this many (on first
# use, kept for the next ones); a preview waits up to QUEUE_SECONDS for a free one (then 503).
NOTIFIER_TEMPLATE_PREVIEW_PROCESSES = env.int("NOTIFIER_TEMPLATE_PREVIEW_PROCESSES", default=2)
NOTIFIER_TEMPLATE_PREVIEW_QUEUE_SECONDS = env.float("NOTIFIER_TEMPLATE_PREVIEW_QUEUE_SECONDS", default=10.0)
# The memory a render process may take beyond what it has once started (its RLIMIT_AS).
NOTIFIER_TEMPLATE_PREVIEW_MEMORY_BYTES = env.int("NOTIFIER_TEMPLATE_PREVIEW_MEMORY_BYTES", default=256 * 1024 * 1024)

# --- Celery ---------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Embedded broker: messages are files in one folder that every process shares.
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "polling_interval": 0.2,
    }
else:
    # Publisher confirms: apply_async() returns only once RabbitMQ has taken the message, so a
    # broker under a resource alarm cannot drop it silently.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
# Delivery outcomes live in our own tables; results are stored only for the tasks that opt in
# (the periodic sweeps), so operators can read their last runs in the admin.
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_IGNORE_RESULT = True
# Celery's Django fixup closes every database connection before and after each task unless this
# many tasks have run since it last did: a child then opened one connection per task (a new
# PostgreSQL backend each time). Our own task hooks (celery_app.py) check the connection instead,
# as Django does between requests; the fixup still recycles it after this many tasks.
CELERY_DB_REUSE_MAX = 10_000
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = NOTIFIER_SEND_TIME_LIMIT_SECONDS
CELERY_TASK_SOFT_TIME_LIMIT = NOTIFIER_SEND_TIME_LIMIT_SECONDS - 10
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_WORKER_SEND_TASK_EVENTS = True  # Flower shows tasks as they run
# Sends wait on providers (SMTP, HTTP), not on the CPU, so a worker runs several at once: 8 by
# default, not Celery's one per core, so a 5 ms provider is not held to 2 sends at a time. Prefork,
# not threads: Celery's non-prefork pools defer each acks_late acknowledgement until the
# consumer's loop next wakes (up to 2 s), which holds a threads worker to about 5-16 tasks/s
# whatever its concurrency (docs/performance.md, "Workers").
CELERY_WORKER_POOL = env("CELERY_WORKER_POOL", default="prefork")
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=8)
# 1 for the Procfile's `worker`, which consumes every queue: a larger multiplier lets one slow
# channel's reserved messages wait behind each other while other workers idle, and undermines
# priorities. Per-channel workers pass --prefetch-multiplier (README, "Reliability").
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=1)
# On a lost broker connection, let running sends finish: their messages come back and find the
# delivery no longer claimable. Cancelling them would cut sends mid-conversation instead.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# RabbitMQ's consumer_timeout (30 min by default): a message a worker holds unacknowledged longer
# closes its channel. Countdown retries are held from their arrival until they have run, so each
# worker caps how many messages it holds (worker_eta_task_limit) from this, its concurrency, the
# longest countdown and the task time limit (celery_app.eta_task_limit, set when a worker starts).
NOTIFIER_BROKER_CONSUMER_TIMEOUT_SECONDS = env.float("NOTIFIER_BROKER_CONSUMER_TIMEOUT_SECONDS", default=1800.0)
# A publish that cannot reach the broker gives up fast: the delivery row is the truth and the
# sweep publishes it again, so the API never waits on a dead broker.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}

NOTIFICATION_CHANNELS = ("email", "sms", "push", "in_app", "webhook")
# Queue and task names, and the queues' arguments, have one home: apps/notifications/queues.py.
NOTIFIER_DEAD_LETTER_EXCHANGE = queues.DEAD_LETTER_EXCHANGE
CELERY_TASK_QUEUES = queues.celery_queues(channels=NOTIFICATION_CHANNELS, broadcast_queue=NOTIFIER_BROADCAST_QUEUE)
NOTIFIER_DEAD_LETTER_QUEUES = queues.dead_letter_queues(channels=NOTIFICATION_CHANNELS)
CELERY_TASK_DEFAULT_QUEUE = queues.MAINTENANCE_QUEUE
CELERY_TASK_ROUTES = queues.celery_task_routes(broadcast_queue=NOTIFIER_BROADCAST_QUEUE)
CELERY_BEAT_SCHEDULE = {
    "deliveries-sweep": {
        "task": queues.TASK_DELIVERIES_SWEEP,
        "schedule": NOTIFIER_SWEEP_INTERVAL_SECONDS,
        "options": {"expires": NOTIFIER_SWEEP_INTERVAL_SECONDS},
    },
    "broadcasts-resume": {
        "task": queues.TASK_BROADCASTS_RESUME,
        "schedule": NOTIFIER_SWEEP_INTERVAL_SECONDS,
        "options": {"expires": NOTIFIER_SWEEP_INTERVAL_SECONDS},
    },
    "retention-purge": {
        "task": queues.TASK_RETENTION_PURGE,
        "schedule": NOTIFIER_RETENTION_INTERVAL_SECONDS,
        "options": {"expires": NOTIFIER_RETENTION_INTERVAL_SECONDS},
    },
    "status-webhooks-sweep": {
        "task": queues.TASK_STATUS_WEBHOOKS_SWEEP,
        "schedule": NOTIFIER_SWEEP_INTERVAL_SECONDS,
        "options": {"expires": NOTIFIER_SWEEP_INTERVAL_SECONDS},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULER = "celery_app:ScheduleFolderScheduler"

# --- Local state ----------------------------------------------------------------------------------
# The directories this configuration writes to, created when a process starts if missing
# (apps/core/apps.py; beat creates its schedule's folder itself, celery_app.py), never when the
# settings are imported: on a read-only filesystem, a process whose folders exist starts.
NOTIFIER_STATE_DIRS = [STATIC_ROOT]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" and DATABASES["default"]["NAME"] != ":memory:":
    NOTIFIER_STATE_DIRS.append(Path(DATABASES["default"]["NAME"]).parent)
if CELERY_BROKER_URL.startswith("filesystem://"):
    NOTIFIER_STATE_DIRS += [_broker_dir / "queue", _broker_dir / "control"]

# --- API ------------------------------------------------------------------------------------------
# The largest request body the API reads (a template with its HTML is the largest legitimate one).
# Refused with a 413 at the ASGI edge, before the body is read or the caller authenticated
# (apps/core/asgi.py), so no caller can make the web process buffer more than this.
NOTIFIER_MAX_REQUEST_BYTES = env.int("NOTIFIER_MAX_REQUEST_BYTES", default=1024 * 1024)
# The bulk endpoints (POST /api/v1/notifications/bulk, PUT /api/v1/users) take up to 1,000 items:
# about 10 KiB each, far more than a real notification or user needs.
NOTIFIER_MAX_BULK_REQUEST_BYTES = env.int("NOTIFIER_MAX_BULK_REQUEST_BYTES", default=10 * 1024 * 1024)
# Bodies Django reads itself: DRF reads a JSON body through request.body, which refuses anything
# over this before our parser can apply the path's own limit (apps/core/limits.py), so it must be
# the larger of the two or the bulk endpoints stop at 1 MiB. The per-path limits still hold: the
# ASGI edge refuses by Content-Length before reading, and the JSON parser after. Form bodies (the
# admin) get a 413 envelope past it.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(NOTIFIER_MAX_REQUEST_BYTES, NOTIFIER_MAX_BULK_REQUEST_BYTES)
CSRF_FAILURE_VIEW = "apps.core.api.csrf_failure_view"
# GET /metrics (apps/core/metrics.py): with a token, scrapes need `Authorization: Bearer <token>`;
# with networks (CIDRs, comma-separated), only clients there are served. Both empty: open, for
# deployments where only the cluster network reaches the web port.
NOTIFIER_METRICS_TOKEN = env("NOTIFIER_METRICS_TOKEN", default="")
NOTIFIER_METRICS_ALLOWED_NETWORKS = [
    str(ipaddress.ip_network(value.strip(), strict=False))
    for value in env.list("NOTIFIER_METRICS_ALLOWED_NETWORKS", default=[]) if value.strip()
]
# How far ahead a notification's send_at may be (a 400 beyond): a year covers any reminder.
NOTIFIER_MAX_SEND_AT_DAYS = env.int("NOTIFIER_MAX_SEND_AT_DAYS", default=365)
# Requests per API key (apps/projects/throttling.py): N/s, N/m, N/h or N/d, or `off`; a project's
# own `api_rate_limit` (set in the admin) overrides it. A bucket of N refilling over the period,
# shared by every web process through Redis (each process its own without REDIS_URL).
# 1,000 a second per key: the throughput an installation of the documented size is built for
# (docs/performance.md), so one key can use all of it but cannot queue work faster than it drains.
NOTIFIER_API_RATE_LIMIT = env("NOTIFIER_API_RATE_LIMIT", default="1000/s")
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.projects.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.projects.authentication.HasProjectApiKey"],
    "DEFAULT_THROTTLE_CLASSES": ["apps.projects.throttling.ApiKeyRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.JSONParser"],  # a too-deep body is a 400, not a 500
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Notifier API",
    "DESCRIPTION": "Send notifications by email, SMS, push, in-app inbox and webhooks.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.schema.add_error_envelope_and_stream",
    ],
    # A broadcast's status and a delivery's are both "status": name each set.
    "ENUM_NAME_OVERRIDES": {
        "BroadcastStatusEnum": "apps.notifications.models.BroadcastStatus.choices",
        "DeliveryStatusEnum": "apps.notifications.models.DeliveryStatus.choices",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# Log lines: JSON (one object per line, for a log pipeline) or text (for a terminal). Production
# defaults to JSON, the dev and test settings to text. Both mask addresses and credentials and
# carry the correlation id (apps/core/logs.py). Celery workers and beat use this configuration too
# (celery_app.py), and uvicorn's loggers are routed through it in the web processes.
NOTIFIER_LOG_FORMAT = env("NOTIFIER_LOG_FORMAT", default="text")
_LOG_HANDLER = {"class": "logging.StreamHandler", "formatter": NOTIFIER_LOG_FORMAT, "filters": ["correlation_id"]}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation_id": {"()": "apps.core.logs.CorrelationIdFilter"}},
    "formatters": {
        "text": {"()": "apps.core.logs.TextFormatter", "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "apps.core.logs.JsonFormatter"},
    },
    "handlers": {"console": _LOG_HANDLER},
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

# --- Metrics --------------------------------------------------------------------------------------
# prometheus_client's multiprocess mode: every process of this host (uvicorn workers, Celery pool
# children, beat) writes its metrics to files here, and one scrape of /metrics on any web process
# reads them all (docs/operations.md, "Metrics"). It must be set before prometheus_client is
# imported, which Django does only after reading these settings. Empty: each process keeps its own,
# and /metrics shows only the web process that answered.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "metrics"))
# The folder is made when a process starts (apps/core/metrics.py, metrics_folder_prepare).
if PROMETHEUS_MULTIPROC_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
else:
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
# The broker is asked for queue depths at each scrape, with this timeout: a broker that is down or
# silent costs a scrape at most this long, and /metrics still answers.
NOTIFIER_METRICS_BROKER_TIMEOUT_SECONDS = env.float("NOTIFIER_METRICS_BROKER_TIMEOUT_SECONDS", default=1.0)
# Collectors read at scrape time, by dotted path (the metrics view lives below the apps it reads).
NOTIFIER_METRICS_COLLECTORS = [
    "apps.notifications.metrics.DeadLetterCollector",
    "apps.notifications.metrics.QueueDepthCollector",
    "apps.channels.circuit_report.CircuitStateCollector",
]
