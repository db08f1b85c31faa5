"""The operators' dashboard, /admin/dashboard/: one page that says whether the pipeline is healthy.

The numbers come from operations/stats.py (the database and the broker); the charts are bars drawn with CSS
on the server, so the page loads nothing from anywhere else.
"""

from django.contrib import admin
from django.template.response import TemplateResponse

from apps.channels.circuit_report import provider_circuits
from apps.core.console import status_colour
from apps.notifications.models import DeliveryStatus
from apps.notifications.operations.stats import PERCENTILES, Dashboard, dashboard

# Statuses in the order a stacked bar shows them, good to bad.
_STATUS_ORDER = [s.value for s in (
    DeliveryStatus.DELIVERED, DeliveryStatus.SENT, DeliveryStatus.SENDING, DeliveryStatus.QUEUED, DeliveryStatus.PENDING,
    DeliveryStatus.RETRYING, DeliveryStatus.SKIPPED, DeliveryStatus.CANCELLED, DeliveryStatus.UNDELIVERED,
    DeliveryStatus.FAILED, DeliveryStatus.DEAD,
)]


def dashboard_view(request):
    data = dashboard()
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "data": data,
        "windows": [("Last hour", _stacked(data.last_hour)), ("Last 24 hours", _stacked(data.last_day))],
        "legend": [(status, status_colour(status)) for status in _STATUS_ORDER],
        "latency": _latency_rows(data),
        "percentiles": PERCENTILES,
        "dead_by_channel": _bars(data.dead_letters.by_channel),
        "dead_by_error": _bars(data.dead_letters.by_error),
        "queues": _queue_rows(data),
        "errors": [(row, round(row.rate * 100, 1)) for row in data.provider_errors],
        "circuits": provider_circuits(),
    }
    return TemplateResponse(request, "admin/notifications/dashboard.html", context)


def _stacked(counts: dict[str, dict[str, int]]) -> list[dict]:
    """One bar per channel, its segments each status's share, widths relative to the busiest channel."""
    busiest = max((sum(statuses.values()) for statuses in counts.values()), default=0)
    rows = []
    for channel, statuses in sorted(counts.items()):
        total = sum(statuses.values())
        segments = [
            {"status": status, "count": statuses[status], "colour": status_colour(status),
             "width": 100 * statuses[status] / busiest}
            for status in _STATUS_ORDER + sorted(set(statuses) - set(_STATUS_ORDER)) if statuses.get(status)
        ]
        rows.append({"channel": channel, "total": total, "segments": segments})
    return rows


def _bars(counts: dict[str, int]) -> list[tuple[str, int, float]]:
    largest = max(counts.values(), default=0)
    return [(label, n, 100 * n / largest if largest else 0) for label, n in counts.items()]


def _latency_rows(data: Dashboard) -> list[dict]:
    slowest = max((max(row.percentiles.values(), default=0) for row in data.latency), default=0) or 1
    return [
        {"channel": row.channel, "count": row.count,
         "percentiles": [(p, row.percentiles[p], 100 * row.percentiles[p] / slowest) for p in PERCENTILES]}
        for row in data.latency
    ]


def _queue_rows(data: Dashboard) -> list[dict] | None:
    if data.queues is None:
        return None
    deepest = max((max(q.messages or 0, q.dead_messages or 0) for q in data.queues), default=0) or 1
    return [
        {"queue": q, "width": 100 * (q.messages or 0) / deepest, "dead_width": 100 * (q.dead_messages or 0) / deepest}
        for q in data.queues
    ]
