"""Liveness and readiness probes for orchestrators and load balancers."""

import logging

from django.db import connection
from django.http import JsonResponse

logger = logging.getLogger(__name__)


def live(request):
    return JsonResponse({"status": "ok"})


def ready(request):
    """Ready when the database answers and the broker accepts a connection.

    Each check reports only "ok" or "unavailable": the probe answers anyone who can reach it, and
    an exception's text can carry host names, user names and server versions. The reason goes
    to the log.
    """
    from celery_app import app

    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:  # any failure means "not ready"; the reason stays in the logs, not the answer
        logger.warning("readiness: database unavailable", exc_info=True)
        checks["database"] = "unavailable"
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception:
        logger.warning("readiness: broker unavailable", exc_info=True)
        checks["broker"] = "unavailable"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unavailable", "checks": checks}, status=200 if healthy else 503)
