"""The request metrics count as django-prometheus' own middleware does, written once a second."""

import pytest
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import resolve
from django_prometheus.middleware import Metrics
from django_prometheus.middleware import PrometheusAfterMiddleware as TheirAfter
from django_prometheus.middleware import PrometheusBeforeMiddleware as TheirBefore
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from apps.core import metrics_middleware
from apps.core.metrics_middleware import PrometheusAfterMiddleware, PrometheusBeforeMiddleware, request_metrics_flush
from tests.support.processes import wait_until

pytestmark = pytest.mark.django_db

SERIES = ("django_http_responses_total_by_status_view_method_total",
          {"status": "200", "view": "notification-list", "method": "GET"})
LATENCY = ("django_http_requests_latency_seconds_by_view_method_count", {"view": "notification-list", "method": "GET"})
ARRIVED = ("django_http_requests_before_middlewares_total", {})
ANSWERED = ("django_http_responses_before_middlewares_total", {})


def value(name_and_labels) -> float:
    return REGISTRY.get_sample_value(*name_and_labels) or 0.0


def scraped(client, name_and_labels) -> float:
    name, labels = name_and_labels
    text = client.get("/metrics").content.decode()
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and sample.labels == labels)


def test_a_scrape_shows_every_request_answered_before_it(api):
    before = scraped(api, SERIES), scraped(api, LATENCY)

    for _ in range(3):
        assert api.get("/api/v1/notifications").status_code == 200

    assert (scraped(api, SERIES) - before[0], scraped(api, LATENCY) - before[1]) == (3, 3)


def test_the_process_writes_its_requests_within_a_second_without_a_scrape(api):
    request_metrics_flush()
    before = value(SERIES)

    assert api.get("/api/v1/notifications").status_code == 200

    wait_until(lambda: value(SERIES) == before + 1, timeout=3 * metrics_middleware.FLUSH_SECONDS,
               message="the flusher to write the request's series")


def test_requests_in_flight_are_counted_as_they_arrive(rf):
    arrived_then_answered = []

    def view(request):
        request_metrics_flush()
        arrived_then_answered.append((value(ARRIVED), value(ANSWERED)))
        return HttpResponse("ok")

    request_metrics_flush()
    before = value(ARRIVED), value(ANSWERED)
    PrometheusBeforeMiddleware(view)(rf.get("/"))
    request_metrics_flush()

    assert arrived_then_answered == [(before[0] + 1, before[1])]  # while the view ran: one in flight
    assert (value(ARRIVED), value(ANSWERED)) == (before[0] + 1, before[1] + 1)



@pytest.mark.parametrize("response", [
    lambda: JsonResponse({"id": "n1"}, status=202),
    lambda: HttpResponse("<p>gone</p>", status=404, content_type="text/html; charset=latin-1"),
    lambda: StreamingHttpResponse(iter([b"data: 1\n\n"]), content_type="text/event-stream"),
], ids=["json", "html-404", "stream"])
def test_each_series_moves_as_django_prometheus_moves_it(rf, response):
    def request():
        request = rf.post("/api/v1/notifications", data=b'{"to": "ada"}', content_type="application/json",
                          HTTP_X_REQUESTED_WITH="XMLHttpRequest")
        request.resolver_match = resolve("/api/v1/notifications")
        return request

    def through(before_class, after_class) -> dict:
        request_metrics_flush()
        start = _http_samples()
        after = after_class(lambda request: response())
        chain = before_class(lambda request: after.process_view(request, None, (), {}) or after(request))
        chain(request())
        request_metrics_flush()
        end = _http_samples()
        return {key: end[key] - start.get(key, 0.0) for key in end if end[key] != start.get(key, 0.0)}

    theirs = through(TheirBefore, TheirAfter)
    ours = through(PrometheusBeforeMiddleware, PrometheusAfterMiddleware)

    assert theirs  # the comparison compares something
    assert ours.keys() == theirs.keys()
    # Every count the same; the latencies' sums are two requests' own times.
    assert _without_latency_sums(ours) == _without_latency_sums(theirs)


def _without_latency_sums(samples: dict) -> dict:
    return {key: amount for key, amount in samples.items() if not ("latency" in key[0] and key[0].endswith("_sum"))}


def _http_samples() -> dict:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in REGISTRY.collect() if family.name.startswith("django_http")
            for sample in family.samples if not sample.name.endswith("_created")}


def test_a_remembered_series_is_prometheus_clients_own_child(rf):
    middleware = PrometheusAfterMiddleware(lambda request: None)
    metric = Metrics.get_instance().responses_by_status

    child = middleware.label_metric(metric, rf.get("/"), status="418")

    assert child is metric.labels(status="418")
    assert middleware.label_metric(metric, rf.get("/"), status="418") is child
    assert middleware.label_metric(metric, rf.get("/")) is metric


def test_a_content_length_that_is_no_number_is_still_answered(client):
    request_metrics_flush()
    before = value(("django_http_requests_body_total_bytes_count", {}))

    response = client.get("/health/live", CONTENT_LENGTH="abc")

    assert response.status_code == 200
    request_metrics_flush()
    assert value(("django_http_requests_body_total_bytes_count", {})) == before + 1  # counted, as 0 bytes
