"""Settings shared by every environment; read from the environment (and `.env` when present).

The environment names are public (README, "Configuration"): add new ones freely, never rename.
"""

import ipaddress
import os
from pathlib import Path

import environ
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Embedded-mode state: the SQLite file, the filesystem broker's folders, the file mailbox.
VAR_DIR = Path(env("NOTIFIER_DATA_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

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
]
LOCAL_APPS = [
    "apps.core",
    "apps.projects",
    "apps.users",
    "apps.templates",
    "apps.notifications",
    "apps.channels",
    "apps.inbox",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
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
    # Before Prometheus' own: exceptions go up the list, so Prometheus counts one before it becomes a 503.
    "apps.core.middleware.DatabaseUnavailableMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "notifier.urls"
ASGI_APPLICATION = "notifier.asgi.application"
WSGI_APPLICATION = "notifier.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
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
EMAIL_FILE_PATH = EMAIL_FILE_PATH or str(VAR_DIR / "mail")  # noqa: F821  (set by the line above)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Notifier <notifications@localhost>")
# Each email's Message-ID is <delivery id@this domain>, the same on every attempt (receivers drop
# the repeat); empty means the domain of DEFAULT_FROM_EMAIL.
NOTIFIER_EMAIL_MESSAGE_ID_DOMAIN = env("NOTIFIER_EMAIL_MESSAGE_ID_DOMAIN", default="")

# --- Providers ----------------------------------------------------------------------------------
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env("TWILIO_FROM_NUMBER", default="")
TWILIO_API_BASE_URL = env("TWILIO_API_BASE_URL", default="https://api.twilio.com")
FCM_CREDENTIALS_FILE = env("FCM_CREDENTIALS_FILE", default="")
FCM_API_BASE_URL = env("FCM_API_BASE_URL", default="https://fcm.googleapis.com")
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")

# --- Channels ------------------------------------------------------------------------------------
# One backend class per channel, chosen by dotted path (see apps/channels/registry.py).
# MAX_ATTEMPTS bounds the tries of one delivery before it goes to the dead-letter queue.
NOTIFIER_CHANNELS = {
    "email": {
        "BACKEND": "apps.channels.backends.email.DjangoEmailBackend",
        "OPTIONS": {},
        "MAX_ATTEMPTS": env.int("NOTIFIER_EMAIL_MAX_ATTEMPTS", default=8),
        # Deliveries one task sends on one SMTP connection, claimed and recorded together.
        "BATCH_SIZE": env.int("NOTIFIER_EMAIL_BATCH_SIZE", default=50),
    },
    "in_app": {
        "BACKEND": "apps.inbox.backend.InboxBackend",
        "OPTIONS": {"lock_timeout_seconds": env.float("NOTIFIER_INBOX_LOCK_TIMEOUT_SECONDS", default=5.0)},
        "MAX_ATTEMPTS": env.int("NOTIFIER_IN_APP_MAX_ATTEMPTS", default=8),
    },
    "webhook": {
        "BACKEND": "apps.channels.backends.webhook.WebhookBackend",
        "OPTIONS": {
            "connect_timeout": env.float("NOTIFIER_WEBHOOK_CONNECT_TIMEOUT_SECONDS", default=5.0),
            "read_timeout": env.float("NOTIFIER_WEBHOOK_READ_TIMEOUT_SECONDS", default=10.0),
            # The whole request, answer included: the read timeout bounds each read only, and a
            # receiver dripping a byte at a time would hold a worker for as long as it likes.
            "total_timeout": env.float("NOTIFIER_WEBHOOK_TOTAL_TIMEOUT_SECONDS", default=15.0),
        },
        "MAX_ATTEMPTS": env.int("NOTIFIER_WEBHOOK_MAX_ATTEMPTS", default=8),
    },
}
# SMS and push need provider credentials, so each is enabled only when they are given: without
# them the API refuses the channel up front ("not enabled on this server") rather than accepting
# deliveries that could only end dead. A half-given configuration fails `manage.py check`.
if TWILIO_ACCOUNT_SID:
    NOTIFIER_CHANNELS["sms"] = {
        "BACKEND": "apps.channels.backends.twilio.TwilioSmsBackend",
        "OPTIONS": {"timeout": env.float("TWILIO_TIMEOUT_SECONDS", default=10.0)},
        "MAX_ATTEMPTS": env.int("NOTIFIER_SMS_MAX_ATTEMPTS", default=8),
    }
if FCM_CREDENTIALS_FILE:
    NOTIFIER_CHANNELS["push"] = {
        "BACKEND": "apps.channels.backends.fcm.FcmPushBackend",
        "OPTIONS": {"timeout": env.float("FCM_TIMEOUT_SECONDS", default=10.0)},
        "MAX_ATTEMPTS": env.int("NOTIFIER_PUSH_MAX_ATTEMPTS", default=8),
    }
# --- Webhook egress (apps/channels/egress.py) ---
# Webhooks (webhook_url, status_webhook_url: set by any API key holder) go only to public
# addresses, so a tenant cannot make the workers call the metadata service or internal hosts.
# Self-hosted installations whose receivers live on a private network list those networks here,
# e.g. "10.20.0.0/16,fd00:1::/64"; a bad value stops startup.
NOTIFIER_WEBHOOK_ALLOWED_NETWORKS = [
    str(ipaddress.ip_network(value.strip(), strict=False))
    for value in env.list("NOTIFIER_WEBHOOK_ALLOWED_NETWORKS", default=[]) if value.strip()
]

# --- Webhook shares (apps/channels/shares.py) ---
# Webhook sends of one project in flight at once, across every worker (leases in Redis; no bound
# without REDIS_URL). Keep it well under the webhook workers' concurrency (8 in the README's
# layout): a project whose receiver hangs then holds at most this many, and the others' webhooks
# go on. A send over its share waits in the broker, not on a worker, retried after
# NOTIFIER_SHARE_DEFER_SECONDS, doubling with each deferral up to NOTIFIER_SHARE_DEFER_MAX_SECONDS.
NOTIFIER_WEBHOOK_PROJECT_MAX_CONCURRENCY = env.int("NOTIFIER_WEBHOOK_PROJECT_MAX_CONCURRENCY", default=2)
NOTIFIER_SHARE_DEFER_SECONDS = env.float("NOTIFIER_SHARE_DEFER_SECONDS", default=1.0)
NOTIFIER_SHARE_DEFER_MAX_SECONDS = env.float("NOTIFIER_SHARE_DEFER_MAX_SECONDS", default=30.0)
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
# Prefix of the Redis pub/sub channels that wake streams, and of the keys holding webhook leases:
# installations sharing one Redis differ here.
NOTIFIER_INBOX_CHANNEL_PREFIX = env("NOTIFIER_INBOX_CHANNEL_PREFIX", default="notifier:")
# The inbox is called from the product's own pages, usually on another origin: those origins
# (e.g. https://app.example.com) may call /api/v1/inbox* with a bearer token. Nothing else is
# opened to browsers; the server-to-server API never needs CORS.
CORS_ALLOWED_ORIGINS = env.list("NOTIFIER_INBOX_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/v1/inbox(/.*)?$"
CORS_ALLOW_HEADERS = ("authorization", "content-type", "last-event-id")
CORS_PREFLIGHT_MAX_AGE = 3600

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

# --- Delivery pipeline ----------------------------------------------------------------------------
# Retry delays grow as BASE * 2**n seconds with "equal jitter" (half fixed, half random), capped.
# The cap stays far below RabbitMQ's consumer_timeout (30 min): a retry is a countdown message
# held unacknowledged by the worker until due. Longer waits are kept in the database instead and
# published by the sweep when due (NOTIFIER_MAX_COUNTDOWN_SECONDS).
NOTIFIER_RETRY_BACKOFF_BASE_SECONDS = env.float("NOTIFIER_RETRY_BACKOFF_BASE_SECONDS", default=5.0)
NOTIFIER_RETRY_BACKOFF_MAX_SECONDS = env.float("NOTIFIER_RETRY_BACKOFF_MAX_SECONDS", default=600.0)
NOTIFIER_MAX_COUNTDOWN_SECONDS = env.float("NOTIFIER_MAX_COUNTDOWN_SECONDS", default=300.0)
# A provider's Retry-After is honoured up to this: beyond, a stuck or hostile provider would park
# deliveries for good (and a value like 10**12 s would not even fit a datetime).
NOTIFIER_MAX_RETRY_AFTER_SECONDS = env.float("NOTIFIER_MAX_RETRY_AFTER_SECONDS", default=3600.0)
# The sweep's watchdog deadlines: a queued delivery whose message was lost, a delivery whose
# worker died mid-send, a retry whose countdown message never came back.
NOTIFIER_SWEEP_INTERVAL_SECONDS = env.float("NOTIFIER_SWEEP_INTERVAL_SECONDS", default=15.0)
NOTIFIER_SWEEP_BATCH_SIZE = env.int("NOTIFIER_SWEEP_BATCH_SIZE", default=500)
NOTIFIER_QUEUED_TIMEOUT_SECONDS = env.float("NOTIFIER_QUEUED_TIMEOUT_SECONDS", default=900.0)
NOTIFIER_RETRY_GRACE_SECONDS = env.float("NOTIFIER_RETRY_GRACE_SECONDS", default=60.0)
# A send that has not finished by the task's hard time limit is dead; the watchdog waits longer.
NOTIFIER_SEND_TIME_LIMIT_SECONDS = env.int("NOTIFIER_SEND_TIME_LIMIT_SECONDS", default=120)
NOTIFIER_SENDING_TIMEOUT_SECONDS = env.float(
    "NOTIFIER_SENDING_TIMEOUT_SECONDS", default=NOTIFIER_SEND_TIME_LIMIT_SECONDS + 60
)
# --- Broadcasts (apps/notifications/broadcasts.py): the fan-out's batch size, how long one task run
# goes on before handing over to a fresh one (under the task's soft time limit), when a silent
# fan-out is presumed lost and republished by the sweep, and how many failed runs end it.
NOTIFIER_BROADCAST_QUEUE = env("NOTIFIER_BROADCAST_QUEUE", default="notifications.broadcast")
NOTIFIER_BROADCAST_BATCH_SIZE = env.int("NOTIFIER_BROADCAST_BATCH_SIZE", default=1000)
NOTIFIER_BROADCAST_RUN_SECONDS = env.float("NOTIFIER_BROADCAST_RUN_SECONDS", default=60.0)
NOTIFIER_BROADCAST_STALE_SECONDS = env.float("NOTIFIER_BROADCAST_STALE_SECONDS", default=120.0)
NOTIFIER_BROADCAST_MAX_ERRORS = env.int("NOTIFIER_BROADCAST_MAX_ERRORS", default=5)
# A worker that cannot reach the database to claim tries the same message again after this long,
# doubling per try up to the maximum (the sweep's queued deadline is the backstop).
NOTIFIER_DATABASE_RETRY_SECONDS = env.float("NOTIFIER_DATABASE_RETRY_SECONDS", default=2.0)
NOTIFIER_DATABASE_RETRY_MAX_SECONDS = env.float("NOTIFIER_DATABASE_RETRY_MAX_SECONDS", default=30.0)
# A delivery still `queued` this long after it was last queued (no worker consumes its channel's
# queue, or a backlog that old) ends `dead` with code `not_consumed` instead of being published
# again forever; replay it once a worker serves the channel.
NOTIFIER_QUEUED_MAX_AGE_SECONDS = env.float("NOTIFIER_QUEUED_MAX_AGE_SECONDS", default=24 * 3600.0)
# --- Publishing when the broker is slow or down (apps/notifications/dispatch.py).
# How long a publish waits for RabbitMQ's confirm: a broker under a resource alarm blocks
# publishers instead of refusing them, and the API must not hang on it.
NOTIFIER_PUBLISH_CONFIRM_TIMEOUT_SECONDS = env.float("NOTIFIER_PUBLISH_CONFIRM_TIMEOUT_SECONDS", default=3.0)
# After a failed publish, a process leaves publishing to the sweep for this long.
NOTIFIER_PUBLISH_PAUSE_SECONDS = env.float("NOTIFIER_PUBLISH_PAUSE_SECONDS", default=5.0)

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
    for _folder in ("queue", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
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
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = NOTIFIER_SEND_TIME_LIMIT_SECONDS
CELERY_TASK_SOFT_TIME_LIMIT = NOTIFIER_SEND_TIME_LIMIT_SECONDS - 10
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_WORKER_SEND_TASK_EVENTS = True  # Flower shows tasks as they run
# Sends wait on providers (SMTP, HTTP), not on the CPU: one process runs many at once in threads,
# sharing its connection pools, where prefork would need a process (and its own database and
# broker connections) per send in flight. docs/performance.md, "Workers", has the figures.
CELERY_WORKER_POOL = env("CELERY_WORKER_POOL", default="threads")
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=16)
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
# Queue arguments are sticky in RabbitMQ (redeclaring with other ones fails), so they are fixed
# here once: a dead-letter exchange for what the broker rejects, and three priority levels.
NOTIFIER_DEAD_LETTER_EXCHANGE = "notifications.dlx"
NOTIFIER_QUEUE_MAX_PRIORITY = 3
_notifications_exchange = Exchange("notifications", type="direct", durable=True)
_dead_letter_exchange = Exchange(NOTIFIER_DEAD_LETTER_EXCHANGE, type="direct", durable=True)
CELERY_TASK_QUEUES = [
    Queue(
        f"notifications.{channel}",
        _notifications_exchange,
        routing_key=f"notifications.{channel}",
        durable=True,
        queue_arguments={
            "x-dead-letter-exchange": NOTIFIER_DEAD_LETTER_EXCHANGE,
            "x-max-priority": NOTIFIER_QUEUE_MAX_PRIORITY,
        },
    )
    for channel in NOTIFICATION_CHANNELS
] + [
    Queue("notifications.maintenance", _notifications_exchange, routing_key="notifications.maintenance"),
    # Broadcast fan-outs run for seconds to minutes: on their own queue, they never hold up the sweep.
    Queue(NOTIFIER_BROADCAST_QUEUE, _notifications_exchange, routing_key=NOTIFIER_BROADCAST_QUEUE, durable=True),
]
# What the broker dead-letters (rejected, undecodable), one queue per channel, kept until an
# operator looks (`manage.py dlq`). Declared when a worker starts, never consumed by one.
NOTIFIER_DEAD_LETTER_QUEUES = [
    Queue(f"notifications.{channel}.dead", _dead_letter_exchange, routing_key=f"notifications.{channel}", durable=True)
    for channel in NOTIFICATION_CHANNELS
]
CELERY_TASK_DEFAULT_QUEUE = "notifications.maintenance"
# Sends are published to their channel queue explicitly (dispatch.py); periodic work goes here.
CELERY_TASK_ROUTES = {
    "notifier.deliveries.sweep": {"queue": "notifications.maintenance"},
    "notifier.broadcasts.resume": {"queue": "notifications.maintenance"},
    "notifier.broadcasts.fan_out": {"queue": NOTIFIER_BROADCAST_QUEUE},
}
CELERY_BEAT_SCHEDULE = {
    "deliveries-sweep": {
        "task": "notifier.deliveries.sweep",
        "schedule": NOTIFIER_SWEEP_INTERVAL_SECONDS,
        "options": {"expires": NOTIFIER_SWEEP_INTERVAL_SECONDS},
    },
    "broadcasts-resume": {
        "task": "notifier.broadcasts.resume",
        "schedule": NOTIFIER_SWEEP_INTERVAL_SECONDS,
        "options": {"expires": NOTIFIER_SWEEP_INTERVAL_SECONDS},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- API ------------------------------------------------------------------------------------------
# The largest request body the API reads (a template with its HTML is the largest legitimate one).
# Refused with a 413 at the ASGI edge, before the body is read or the caller authenticated
# (apps/core/asgi.py), so no caller can make the web process buffer more than this.
NOTIFIER_MAX_REQUEST_BYTES = env.int("NOTIFIER_MAX_REQUEST_BYTES", default=1024 * 1024)
# The bulk endpoints (POST /api/v1/notifications/bulk, PUT /api/v1/users) take up to 1,000 items:
# about 10 KiB each, far more than a real notification or user needs.
NOTIFIER_MAX_BULK_REQUEST_BYTES = env.int("NOTIFIER_MAX_BULK_REQUEST_BYTES", default=10 * 1024 * 1024)
# Form bodies Django reads itself (the admin): the same limit, and a 413 envelope too.
DATA_UPLOAD_MAX_MEMORY_SIZE = NOTIFIER_MAX_REQUEST_BYTES
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
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.projects.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.projects.authentication.HasProjectApiKey"],
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The twilio SDK logs each request's URL and headers at INFO, a dozen lines per SMS.
        "twilio.http_client": {"level": "WARNING"},
    },
}
