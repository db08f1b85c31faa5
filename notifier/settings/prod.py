"""Production: every secret comes from the environment, with no default, so a missing one stops startup."""

from .base import *  # noqa: F403
from .base import NOTIFIER_CHANNELS, env

SECRET_KEY = env("DJANGO_SECRET_KEY")
# Base settings fall back to embedded SQLite and the filesystem broker; production must not.
env("DATABASE_URL")
env("CELERY_BROKER_URL")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
DEBUG = False

SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Health probes and metrics are scraped over plain HTTP inside the cluster.
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60)
SECURE_CONTENT_TYPE_NOSNIFF = True

# Without EMAIL_URL the base settings write mail to files: in production that would mark
# deliveries sent that nobody receives, so the email channel is off until EMAIL_URL is set.
if not env("EMAIL_URL", default=""):
    NOTIFIER_CHANNELS = {name: config for name, config in NOTIFIER_CHANNELS.items() if name != "email"}
