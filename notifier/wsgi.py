"""WSGI entry point, for tools that want one; the service itself runs on ASGI (notifier/asgi.py)."""

import os

from django.core.wsgi import get_wsgi_application

from apps.core.metrics_folder import metrics_folder_use

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifier.settings.dev")
metrics_folder_use()  # the host's metrics folder, before Django creates any metric (notifier/asgi.py)

application = get_wsgi_application()
