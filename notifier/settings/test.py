"""The test suite: real PostgreSQL and RabbitMQ on localhost unless the environment overrides them."""

from notifier.settings.environment import INSECURE_DEV_SECRET_KEY, env

# NOTIFIER_TEST_RUN names a run, so that several suites can share one machine's services. These
# are defaults for the settings' own reading of the environment, not for the process's.
_run = env("NOTIFIER_TEST_RUN", default="")
_suffix = f"_{_run}" if _run else ""
env.ENVIRON.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/notifier{_suffix}")
# The suite owns this vhost and wipes it at the start of each run (tests/conftest.py).
env.ENVIRON.setdefault("CELERY_BROKER_URL", f"amqp://guest:guest@127.0.0.1:5672/notifier_test{_suffix}")

from .base import *  # noqa: F403

SECRET_KEY = env("DJANGO_SECRET_KEY", default=INSECURE_DEV_SECRET_KEY)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only; never in prod
# Speed only: every test client builds its own middleware, and WhiteNoise would index each static
# file of every app (stat and all) each time; this way it looks a file up when one is asked for.
WHITENOISE_AUTOREFRESH = True
# Retries fast enough that a test can watch several of them.
NOTIFIER_RETRY_BACKOFF_BASE_SECONDS = env.float("NOTIFIER_RETRY_BACKOFF_BASE_SECONDS", default=0.5)
# The fake receivers listen on 127.0.0.1; 127.0.0.2 and the rest of loopback stay refused, so the
# tests can see the egress rule at work (tests/core/test_egress.py).
NOTIFIER_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
# Off by default: the suite sends far faster than a real client; rate-limit tests set a project's own.
NOTIFIER_API_RATE_LIMIT = env("NOTIFIER_API_RATE_LIMIT", default="off")
