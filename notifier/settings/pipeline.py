"""Settings of the delivery pipeline: providers, channels and their backends, retries, the sweep,
broadcasts, publishing, retention. Imported by base.py; environment names are public (docs/operations.md).
"""

import ipaddress

from django.core.exceptions import ImproperlyConfigured
from environ import Env

from apps.notifications import queues
from notifier.settings.environment import env

# --- Providers ----------------------------------------------------------------------------------
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env("TWILIO_FROM_NUMBER", default="")
TWILIO_API_BASE_URL = env("TWILIO_API_BASE_URL", default="https://api.twilio.com")
FCM_CREDENTIALS_FILE = env("FCM_CREDENTIALS_FILE", default="")
FCM_API_BASE_URL = env("FCM_API_BASE_URL", default="https://fcm.googleapis.com")
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
# A mailbox for the mailto: link of List-Unsubscribe (e.g. unsubscribe@example.com); empty: https link only.
NOTIFIER_UNSUBSCRIBE_MAILTO = env("NOTIFIER_UNSUBSCRIBE_MAILTO", default="")

# Each email's Message-ID is <delivery id@this domain>, the same on every attempt (receivers drop
# the repeat); empty means the domain of DEFAULT_FROM_EMAIL.
NOTIFIER_EMAIL_MESSAGE_ID_DOMAIN = env("NOTIFIER_EMAIL_MESSAGE_ID_DOMAIN", default="")

# --- Channels ------------------------------------------------------------------------------------
# One backend class per channel, chosen by dotted path (see apps/channels/registry.py).
# MAX_ATTEMPTS bounds the tries of one delivery before it goes to the dead-letter queue.
# More SMTP servers, space-separated, each in EMAIL_URL's form: the email channel's providers
# after EMAIL_URL's, tried in order when the ones before them fail (apps/channels/failover.py).
EMAIL_FAILOVER_URLS = env("EMAIL_FAILOVER_URLS", default="").split()
for _url in EMAIL_FAILOVER_URLS:
    try:
        Env.email_url_config(_url)
    except ImproperlyConfigured as exc:  # a bad value stops startup rather than the first failover
        raise ImproperlyConfigured(f"EMAIL_FAILOVER_URLS: {exc}") from None
_EMAIL_BACKEND = "apps.channels.backends.email.DjangoEmailBackend"
NOTIFIER_CHANNELS = {
    "email": {
        # EMAIL_URL's server first (OPTIONS without `url`), then each failover server.
        "BACKENDS": [{"BACKEND": _EMAIL_BACKEND, "OPTIONS": {}}]
        + [{"BACKEND": _EMAIL_BACKEND, "OPTIONS": {"url": url}} for url in EMAIL_FAILOVER_URLS],
        "MAX_ATTEMPTS": env.int("NOTIFIER_EMAIL_MAX_ATTEMPTS", default=8),
        # Deliveries one task sends on one SMTP connection, claimed and recorded together.
        "BATCH_SIZE": env.int("NOTIFIER_EMAIL_BATCH_SIZE", default=50),
        # A batch's emails a worker process sends at once, each on an SMTP connection of its own
        # (apps/notifications/delivery/send_pool.py); 1: one after the other on one connection.
        "SEND_CONCURRENCY": env.int("NOTIFIER_EMAIL_SEND_CONCURRENCY", default=4),
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
# --- Provider circuit breakers (apps/channels/circuit.py; docs/operations.md, "Provider failover") ---
# This many transient failures of one provider within the window open its circuit: its sends go
# to the channel's next provider. After the cool-down one send probes it; success closes the
# circuit. The cool-down is also how soon traffic returns to a provider that recovered.
NOTIFIER_CIRCUIT_FAILURE_THRESHOLD = env.int("NOTIFIER_CIRCUIT_FAILURE_THRESHOLD", default=5)
NOTIFIER_CIRCUIT_WINDOW_SECONDS = env.float("NOTIFIER_CIRCUIT_WINDOW_SECONDS", default=60.0)
NOTIFIER_CIRCUIT_COOL_DOWN_SECONDS = env.float("NOTIFIER_CIRCUIT_COOL_DOWN_SECONDS", default=30.0)
# How long a worker trusts a closed circuit it read from Redis before reading it again: the send
# path's cost (one read per provider per this many seconds, per process) against how long a
# process goes on sending to a provider another process found down (one failure each, at most).
NOTIFIER_CIRCUIT_STATE_CACHE_SECONDS = env.float("NOTIFIER_CIRCUIT_STATE_CACHE_SECONDS", default=1.0)
# --- Webhook egress (apps/core/egress.py) ---
# Webhooks (webhook_url, status_webhook_url: set by any API key holder) go only to public
# addresses, so a tenant cannot make the workers call the metadata service or internal hosts.
# Self-hosted installations whose receivers live on a private network list those networks here,
# e.g. "10.20.0.0/16,fd00:1::/64"; a bad value stops startup.
NOTIFIER_WEBHOOK_ALLOWED_NETWORKS = [
    str(ipaddress.ip_network(value.strip(), strict=False))
    for value in env.list("NOTIFIER_WEBHOOK_ALLOWED_NETWORKS", default=[]) if value.strip()
]

# --- Redis for workers (apps/core/redis.py): webhook leases, inbox wake-ups ---
# A worker waits at most this long for Redis, then leaves it alone for the pause: a Redis that
# accepts connections and never answers must not hold up sends.
NOTIFIER_REDIS_TIMEOUT_SECONDS = env.float("NOTIFIER_REDIS_TIMEOUT_SECONDS", default=0.5)
NOTIFIER_REDIS_PAUSE_SECONDS = env.float("NOTIFIER_REDIS_PAUSE_SECONDS", default=5.0)

# --- Webhook shares (apps/channels/shares.py) ---
# Webhook sends of one project in flight at once, across every worker (leases in Redis; no bound
# without REDIS_URL). Keep it well under the webhook workers' concurrency (8 in docs/operations.md,
# "Workers: one per queue"): a project whose receiver hangs then holds at most this many, and the others' webhooks
# go on. A send over its share waits in the broker, not on a worker, retried after
# NOTIFIER_SHARE_DEFER_SECONDS, doubling with each deferral up to NOTIFIER_SHARE_DEFER_MAX_SECONDS.
NOTIFIER_WEBHOOK_PROJECT_MAX_CONCURRENCY = env.int("NOTIFIER_WEBHOOK_PROJECT_MAX_CONCURRENCY", default=2)
NOTIFIER_SHARE_DEFER_SECONDS = env.float("NOTIFIER_SHARE_DEFER_SECONDS", default=1.0)
NOTIFIER_SHARE_DEFER_MAX_SECONDS = env.float("NOTIFIER_SHARE_DEFER_MAX_SECONDS", default=30.0)
# --- Status webhooks (apps/notifications/status_webhooks/posting.py): every reported status change POSTed
# to the project's status_webhook_url, signed like webhooks. Tries per event before it is `dead`
# (the admin replays it), the whole request's deadline, and how many of one project's events may
# be posted at once across every worker (a receiver that hangs holds no more workers than that).
NOTIFIER_STATUS_WEBHOOK_MAX_ATTEMPTS = env.int("NOTIFIER_STATUS_WEBHOOK_MAX_ATTEMPTS", default=12)
NOTIFIER_STATUS_WEBHOOK_TIMEOUT_SECONDS = env.float("NOTIFIER_STATUS_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
NOTIFIER_STATUS_WEBHOOK_PROJECT_MAX_CONCURRENCY = env.int("NOTIFIER_STATUS_WEBHOOK_PROJECT_MAX_CONCURRENCY", default=2)
# When a project's webhook_secret changes, the old one keeps signing (a second signature) for this
# long, so receivers can switch to the new secret without refusing a request (docs/api.md, "Signatures").
NOTIFIER_WEBHOOK_SECRET_ROTATION_HOURS = env.float("NOTIFIER_WEBHOOK_SECRET_ROTATION_HOURS", default=24.0)
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
# A queued delivery whose publish RabbitMQ has not confirmed by then (the process that committed
# it died before publishing) is published by the sweep: found within this plus one sweep interval.
NOTIFIER_UNPUBLISHED_TIMEOUT_SECONDS = env.float("NOTIFIER_UNPUBLISHED_TIMEOUT_SECONDS", default=20.0)
NOTIFIER_RETRY_GRACE_SECONDS = env.float("NOTIFIER_RETRY_GRACE_SECONDS", default=60.0)
# A send that has not finished by the task's hard time limit is dead; the watchdog waits longer.
NOTIFIER_SEND_TIME_LIMIT_SECONDS = env.int("NOTIFIER_SEND_TIME_LIMIT_SECONDS", default=120)
NOTIFIER_SENDING_TIMEOUT_SECONDS = env.float(
    "NOTIFIER_SENDING_TIMEOUT_SECONDS", default=NOTIFIER_SEND_TIME_LIMIT_SECONDS + 60
)
# --- Broadcasts (apps/notifications/intake/broadcasts.py): the fan-out's batch size, how long one task run
# goes on before handing over to a fresh one (under the task's soft time limit), when a silent
# fan-out is presumed lost and republished by the sweep, and how many failed runs end it.
NOTIFIER_BROADCAST_QUEUE = env("NOTIFIER_BROADCAST_QUEUE", default=queues.BROADCAST_QUEUE)
NOTIFIER_BROADCAST_BATCH_SIZE = env.int("NOTIFIER_BROADCAST_BATCH_SIZE", default=1000)
NOTIFIER_BROADCAST_RUN_SECONDS = env.float("NOTIFIER_BROADCAST_RUN_SECONDS", default=60.0)
# A fan-out that created at least this many notifications ends with ANALYZE of the notification
# and delivery tables, so the planner need not wait for autovacuum (apps/notifications/intake/broadcasts.py).
NOTIFIER_BROADCAST_ANALYZE_AFTER = env.int("NOTIFIER_BROADCAST_ANALYZE_AFTER", default=10_000)
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
# --- Publishing when the broker is slow or down (apps/notifications/outbox/deliveries.py).
# How long a publish waits for RabbitMQ's confirm: a broker under a resource alarm blocks
# publishers instead of refusing them, and the API must not hang on it.
NOTIFIER_PUBLISH_CONFIRM_TIMEOUT_SECONDS = env.float("NOTIFIER_PUBLISH_CONFIRM_TIMEOUT_SECONDS", default=3.0)
# After a failed publish, a process leaves publishing to the sweep for this long.
NOTIFIER_PUBLISH_PAUSE_SECONDS = env.float("NOTIFIER_PUBLISH_PAUSE_SECONDS", default=5.0)
# A web process's publishing thread waits this long after a request's first commit for more to
# publish in the same round (outbox/publisher.py): one publish, confirm and UPDATE per round.
NOTIFIER_PUBLISH_GATHER_SECONDS = env.float("NOTIFIER_PUBLISH_GATHER_SECONDS", default=0.05)
# A web process's niceness (and its session's, where it leads one; apps/core/cpu_priority.py): on a
# machine shared with workers, the API yields the CPU to deliveries when both want it. 0: as started.
NOTIFIER_WEB_NICENESS = env.int("NOTIFIER_WEB_NICENESS", default=10)


# --- Retention (apps/retention) ---------------------------------------------------------------------
# Deliveries (with their attempts) final for longer than this many days are deleted, then the
# notifications and broadcasts left without any; dead letters wait for an operator first. 0 keeps
# everything. Idempotency keys are remembered as long as their notification: this long.
NOTIFIER_RETENTION_DAYS = env.int("NOTIFIER_RETENTION_DAYS", default=30)
# In-app inbox messages, read or not (0: kept until the user is erased).
NOTIFIER_INBOX_RETENTION_DAYS = env.int("NOTIFIER_INBOX_RETENTION_DAYS", default=NOTIFIER_RETENTION_DAYS)
# Rows per transaction, and how long one run may go on (the rest is the next run's); beat runs it
# every NOTIFIER_RETENTION_INTERVAL_SECONDS on the maintenance queue. The budget stays well under
# the task time limit (NOTIFIER_SEND_TIME_LIMIT_SECONDS).
NOTIFIER_RETENTION_BATCH_SIZE = env.int("NOTIFIER_RETENTION_BATCH_SIZE", default=1000)
NOTIFIER_RETENTION_TIME_BUDGET_SECONDS = env.float("NOTIFIER_RETENTION_TIME_BUDGET_SECONDS", default=60.0)
NOTIFIER_RETENTION_INTERVAL_SECONDS = env.float("NOTIFIER_RETENTION_INTERVAL_SECONDS", default=3600.0)


# --- Queues and the beat schedule (Celery) ------------------------------------------------------------
# RabbitMQ's consumer_timeout (30 min by default): a message a worker holds unacknowledged longer
# closes its channel. Countdown retries are held from their arrival until they have run, so each
# worker caps how many messages it holds (worker_eta_task_limit) from this, its concurrency, the
# longest countdown and the task time limit (celery_app.eta_task_limit, set when a worker starts).
NOTIFIER_BROKER_CONSUMER_TIMEOUT_SECONDS = env.float("NOTIFIER_BROKER_CONSUMER_TIMEOUT_SECONDS", default=1800.0)
NOTIFICATION_CHANNELS = ("email", "sms", "push", "in_app", "webhook")
# Workflow runs (apps/workflows): how often beat looks for runs whose wait or digest is due (one
# query on a partial index of open runs: a wait ends at most this late), and how long a step
# waiting for an earlier delivery to settle waits before looking again if no wake-up came.
NOTIFIER_WORKFLOW_SCAN_SECONDS = env.float("NOTIFIER_WORKFLOW_SCAN_SECONDS", default=5.0)
NOTIFIER_WORKFLOW_SETTLE_RECHECK_SECONDS = env.float("NOTIFIER_WORKFLOW_SETTLE_RECHECK_SECONDS", default=60.0)
# Queue and task names, and the queues' arguments, have one home: apps/notifications/queues.py.
NOTIFIER_DEAD_LETTER_EXCHANGE = queues.DEAD_LETTER_EXCHANGE
CELERY_TASK_QUEUES = queues.celery_queues(channels=NOTIFICATION_CHANNELS, broadcast_queue=NOTIFIER_BROADCAST_QUEUE)
NOTIFIER_DEAD_LETTER_QUEUES = queues.dead_letter_queues(channels=NOTIFICATION_CHANNELS)
CELERY_TASK_DEFAULT_QUEUE = queues.MAINTENANCE_QUEUE
CELERY_TASK_ROUTES = queues.celery_task_routes(broadcast_queue=NOTIFIER_BROADCAST_QUEUE)


def _periodic(task: str, seconds: float) -> dict:
    # A run that could not start before the next one is due is dropped, not queued behind it.
    return {"task": task, "schedule": seconds, "options": {"expires": seconds}}


CELERY_BEAT_SCHEDULE = {
    "deliveries-sweep": _periodic(queues.TASK_DELIVERIES_SWEEP, NOTIFIER_SWEEP_INTERVAL_SECONDS),
    "statistics-refresh": _periodic(queues.TASK_STATISTICS_REFRESH, NOTIFIER_SWEEP_INTERVAL_SECONDS),
    "broadcasts-resume": _periodic(queues.TASK_BROADCASTS_RESUME, NOTIFIER_SWEEP_INTERVAL_SECONDS),
    "retention-purge": _periodic(queues.TASK_RETENTION_PURGE, NOTIFIER_RETENTION_INTERVAL_SECONDS),
    "status-webhooks-sweep": _periodic(queues.TASK_STATUS_WEBHOOKS_SWEEP, NOTIFIER_SWEEP_INTERVAL_SECONDS),
    "workflow-runs-scan": _periodic(queues.TASK_WORKFLOW_RUNS_SCAN, NOTIFIER_WORKFLOW_SCAN_SECONDS),
}
