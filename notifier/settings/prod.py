"""Production: every secret comes from the environment, with no default, so a missing one stops startup."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import NOTIFIER_CHANNELS, env

EXAMPLE_SECRET_KEY = "change-me-to-a-long-random-string"  # the value in .env.example
MIN_SECRET_KEY_LENGTH = 50

SECRET_KEY = env("DJANGO_SECRET_KEY")
# It signs sessions, password resets and the users' inbox tokens: the example from .env.example
# or a short value would let anyone forge them.
if SECRET_KEY == EXAMPLE_SECRET_KEY or len(SECRET_KEY) < MIN_SECRET_KEY_LENGTH:
    raise ImproperlyConfigured(
        f"DJANGO_SECRET_KEY is the example value or shorter than {MIN_SECRET_KEY_LENGTH} characters; generate one with "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
    )
# Base settings fall back to embedded SQLite and the filesystem broker; production must not.
env("DATABASE_URL")
env("CELERY_BROKER_URL")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
DEBUG = False
# A log pipeline reads JSON; NOTIFIER_LOG_FORMAT=text for a terminal.
if env("NOTIFIER_LOG_FORMAT", default="json") == "json":
    NOTIFIER_LOG_FORMAT = "json"
    LOGGING["handlers"]["console"]["formatter"] = "json"  # noqa: F405
# /metrics answers only scrapes that NOTIFIER_METRICS_TOKEN or NOTIFIER_METRICS_ALLOWED_NETWORKS let in.
NOTIFIER_METRICS_OPEN = False

SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# X-Forwarded-Proto is believed only when an operator says a proxy sets it: otherwise any client
# could claim https. Behind `uvicorn --proxy-headers` this stays off: uvicorn applies the header
# itself, and only from the addresses in FORWARDED_ALLOW_IPS (127.0.0.1 unless set).
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Health probes and metrics are scraped over plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# A year, the value browsers' preload lists expect: HSTS protects only from the second visit on,
# and a short max-age lapses between visits (API clients and admins come back rarely).
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
# Off by default: it binds every subdomain of the host to HTTPS for that year, which the team
# running this service may not own or control.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True

# The base of every email's one-click unsubscribe link and of Twilio's receipts: no loopback
# default here, a missing one is a system check error while email is on (apps/channels/backends/email.py).
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="")

# Without EMAIL_URL the base settings write mail to files: in production that would mark
# deliveries sent that nobody receives, so the email channel is off until EMAIL_URL is set.
if not env("EMAIL_URL", default=""):
    NOTIFIER_CHANNELS = {name: config for name, config in NOTIFIER_CHANNELS.items() if name != "email"}
