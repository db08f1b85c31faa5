"""ASGI entry point (`web` in the Procfile): ASGI because the inbox stream is a long-lived response."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifier.settings.dev")

application = get_asgi_application()
