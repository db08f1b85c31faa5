"""ASGI entry point (`web` in the Procfile): ASGI because the inbox stream is a long-lived response.

Each web process enters the host's metrics folder here, before Django creates any metric, and
request bodies are limited here, before Django reads them (apps/core/asgi.py).
"""

import gc
import os

import django

from apps.core.metrics_folder import metrics_folder_use

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifier.settings.dev")
metrics_folder_use()
django.setup(set_prefix=False)  # what get_asgi_application() does, with our handler below

from django.conf import settings  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from apps.core.asgi import EnvelopeASGIHandler, RequestBodyLimitMiddleware  # noqa: E402  (needs the setup)
from apps.core.cpu_priority import web_cpu_priority_lower  # noqa: E402
from apps.notifications.outbox.deliveries import background_publishing_start  # noqa: E402

# Where web and workers share the cores, deliveries get them first (apps/core/cpu_priority.py). Before
# the publishing thread starts, so that it is lowered with the rest.
web_cpu_priority_lower(settings.NOTIFIER_WEB_NICENESS)
# A 202 does not wait for RabbitMQ: this process's committed deliveries are published from a thread.
background_publishing_start()
# The URLconf (every view, serializer and schema decorator) imported now rather than by the first
# request, which took ~0.25 s of CPU longer to answer (in each web process).
get_resolver().url_patterns  # noqa: B018
# What is loaded by now lives as long as the process. Frozen, the collector no longer walks it: a
# full collection had to traverse every module, class and URL pattern loaded, tens of milliseconds
# a time in which the process answered nothing.
gc.freeze()

application = RequestBodyLimitMiddleware(EnvelopeASGIHandler())
