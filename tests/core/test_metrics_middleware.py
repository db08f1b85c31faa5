"""The request metrics count as django-prometheus' own middleware does, with its series remembered."""

import pytest
from django_prometheus.middleware import Metrics
from prometheus_client import REGISTRY

pytestmark = pytest.mark.django_db

SERIES = ("django_http_responses_total_by_status_view_method_total",
          {"status": "200", "view": "notification-list", "method": "GET"})
LATENCY = ("django_http_requests_latency_seconds_by_view_method_count", {"view": "notification-list", "method": "GET"})


def value(name_and_labels) -> float:
    return REGISTRY.get_sample_value(*name_and_labels) or 0.0


def test_each_request_counts_once_in_its_series(api):
    before = value(SERIES), value(LATENCY)

    for _ in range(3):
        assert api.get("/api/v1/notifications").status_code == 200

    assert (value(SERIES) - before[0], value(LATENCY) - before[1]) == (3, 3)


def test_a_remembered_series_is_prometheus_clients_own_child(rf):
    from apps.core.metrics_middleware import PrometheusAfterMiddleware

    middleware = PrometheusAfterMiddleware(lambda request: None)
    metric = Metrics.get_instance().responses_by_status

    child = middleware.label_metric(metric, rf.get("/"), status="418")

    assert child is metric.labels(status="418")
    assert middleware.label_metric(metric, rf.get("/"), status="418") is child
    assert middleware.label_metric(metric, rf.get("/")) is metric
