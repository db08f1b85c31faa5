"""ASGI entry point (`web` in the Procfile): ASGI because the inbox stream is a long-lived response.

Each web process enters the host's metrics folder here, before Django creates any metric, and
request bodies are limited here, before Django reads them (apps/core/asgi.py).
"""

import os

import django

from apps.core.metrics_folder import metrics_folder_use

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifier.settings.dev")
metrics_folder_use()
django.setup(set_prefix=False)  # what get_asgi_application() does, with our handler below

from apps.core.asgi import EnvelopeASGIHandler, RequestBodyLimitMiddleware  # noqa: E402  (needs the setup)

application = RequestBodyLimitMiddleware(EnvelopeASGIHandler())
