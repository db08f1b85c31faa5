"""WSGI entry point, for tools that want one; the service itself runs on ASGI (notifier/asgi.py)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifier.settings.dev")

application = get_wsgi_application()
