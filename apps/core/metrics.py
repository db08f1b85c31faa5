"""GET /metrics for Prometheus, closed to whoever lacks the scrape token when one is configured.

Metrics name endpoints, queues and error rates: useful to an attacker mapping the service. With
NOTIFIER_METRICS_TOKEN set, a scrape must send `Authorization: Bearer <token>` (Prometheus:
`authorization: {credentials: ...}` in the scrape config); NOTIFIER_METRICS_ALLOWED_NETWORKS
limits the client addresses as well.
"""

import hmac
import ipaddress

from django.conf import settings
from django.http import JsonResponse
from django_prometheus.exports import ExportToDjangoView

from apps.core.api import error_body


def metrics_view(request):
    if settings.NOTIFIER_METRICS_ALLOWED_NETWORKS and not _client_in(settings.NOTIFIER_METRICS_ALLOWED_NETWORKS, request):
        return JsonResponse(error_body("permission_denied", "Metrics are not served to this address."), status=403)
    token = settings.NOTIFIER_METRICS_TOKEN
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            response = JsonResponse(error_body("not_authenticated", "Metrics need the scrape token (Bearer)."), status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return ExportToDjangoView(request)


def _client_in(networks: list[str], request) -> bool:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network) for network in networks)
