"""Local development: the default. Runs on nothing but Python unless the environment says otherwise."""

from .base import *  # noqa: F403
from .base import env
from .environment import INSECURE_DEV_SECRET_KEY

SECRET_KEY = env("DJANGO_SECRET_KEY", default=INSECURE_DEV_SECRET_KEY)

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# A developer tries webhooks against a receiver on their own machine (`localhost` may be either
# address); private networks stay refused, as in production, unless the environment lists them.
if env("NOTIFIER_WEBHOOK_ALLOWED_NETWORKS", default=None) is None:
    NOTIFIER_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
# /inbox/demo/: the inbox widget for `make run`'s demo user, next to a button that notifies them.
NOTIFIER_INBOX_DEMO = True
