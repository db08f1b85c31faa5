"""Django's and the third-party apps' wiring, shared by every environment; the product's own
settings live in the component files imported here (api, console, database, inbox, observability,
pipeline, preference_center, templates). Everything is read from the environment (and `.env` when
present); the names are public (docs/operations.md, "Environment variables"): add new ones freely,
never rename.

SECRET_KEY is not here: dev and test give it a default, prod reads it with none.
"""

from pathlib import Path

from notifier.settings.api import *  # noqa: F403  (request sizes, rate limits, DRF)
from notifier.settings.console import *  # noqa: F403  (admin logins)
from notifier.settings.database import *  # noqa: F403  (connection pools and their budget)
from notifier.settings.environment import BASE_DIR, VAR_DIR, env
from notifier.settings.inbox import *  # noqa: F403
from notifier.settings.observability import *  # noqa: F403  (logs, metrics)
from notifier.settings.pipeline import *  # noqa: F403  (providers, channels and delivery tuning)
from notifier.settings.pipeline import NOTIFIER_SEND_TIME_LIMIT_SECONDS
from notifier.settings.preference_center import *  # noqa: F403  (the end users' preference page)
from notifier.settings.templates import *  # noqa: F403  (rendering limits, previews)

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
    "apps.workflows",
    "apps.retention",
    # No models: the users' console page with its erasing delete (apps/erasure/admin.py).
    "apps.erasure",
    "apps.preference_center",
]
# apps.core first: its ready() prepares what every process needs (its state folders, the system
# checks) before any other app's ready() runs. (Its templates have names of their own: nothing of
# Django's is overridden by coming first.)
INSTALLED_APPS = ["apps.core", *DJANGO_APPS, *THIRD_PARTY_APPS, *LOCAL_APPS]

# Sessions, CSRF, the user and messages are the browser's: skipped on /api/v1/ (browser_middleware).
MIDDLEWARE = [
    # First: every later middleware's log lines carry the request's correlation id.
    "apps.core.correlation.CorrelationIdMiddleware",
    "apps.core.metrics_middleware.PrometheusBeforeMiddleware",  # django-prometheus', written once a second
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "apps.core.browser_middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "apps.core.browser_middleware.CsrfViewMiddleware",
    "apps.core.browser_middleware.AuthenticationMiddleware",
    "apps.core.browser_middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.projects.throttling.RateLimitHeadersMiddleware",  # RateLimit-* on API-key answers
    # Before Prometheus' own: exceptions go up the list, so Prometheus counts one before it becomes a 503.
    "apps.core.middleware.DatabaseUnavailableMiddleware",
    "apps.core.metrics_middleware.PrometheusAfterMiddleware",  # django-prometheus', written once a second
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
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # ...by a round trip when in doubt
        DATABASES["default"]["ENGINE"] = "notifier.postgresql"
    DATABASES["default"].setdefault("OPTIONS", {}).update(prepare_threshold=NOTIFIER_DB_PREPARE_THRESHOLD, pool={  # noqa: F405
        "min_size": env.int("NOTIFIER_DB_POOL_MIN_SIZE", default=0),
        "max_size": NOTIFIER_DB_POOL_MAX_SIZE,  # noqa: F405  (database.py)
        # How long a request waits for a free connection (or for PostgreSQL to accept a new
        # one) before it gets a 503 database_unavailable.
        "timeout": env.float("NOTIFIER_DB_POOL_TIMEOUT_SECONDS", default=10.0),
        # Idle connections beyond min_size are closed after this long.
        "max_idle": env.float("NOTIFIER_DB_POOL_MAX_IDLE_SECONDS", default=300.0),
    })
else:
    # Behind an external pooler (PgBouncer) that already bounds connections.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
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
# The languages the pages end users see are written in (the user's locale picks one; else English).
LANGUAGES = [("en", "English"), ("fr", "Français")]
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
_email = env.email_url("EMAIL_URL", default="filemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
EMAIL_PORT = _email["EMAIL_PORT"] or 25
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
EMAIL_FILE_PATH = _email["EMAIL_FILE_PATH"] or str(VAR_DIR / "mail")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Notifier <notifications@localhost>")


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
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_TIME_LIMIT = NOTIFIER_SEND_TIME_LIMIT_SECONDS
CELERY_TASK_SOFT_TIME_LIMIT = NOTIFIER_SEND_TIME_LIMIT_SECONDS - 10
# Sends wait on providers (SMTP, HTTP), not on the CPU, so a worker runs several at once: 12 by
# default, not Celery's one per core (with 8, a 5 ms provider held email under 1,000/s). Prefork,
# not threads: Celery's non-prefork pools defer each acks_late acknowledgement until the
# consumer's loop next wakes (up to 2 s), which holds a threads worker to about 5-16 tasks/s
# whatever its concurrency (docs/performance.md, "Workers").
CELERY_WORKER_POOL = env("CELERY_WORKER_POOL", default="prefork")
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=12)
# 1 for the Procfile's `worker`, which consumes every queue: a larger multiplier lets one slow
# channel's reserved messages wait behind each other while other workers idle, and undermines
# priorities. Per-channel workers pass --prefetch-multiplier (docs/reliability.md).
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=1)
# On a lost broker connection, let running sends finish: their messages come back and find the
# delivery no longer claimable. Cancelling them would cut sends mid-conversation instead.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# A publish that cannot reach the broker gives up fast: the delivery row is the truth and the
# sweep publishes it again, so the API never waits on a dead broker.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}

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
