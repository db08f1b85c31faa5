"""django-prometheus' request metrics, written to the metric files once a second.

Its two middleware make ~16 metric writes a request. In multiprocess mode (PROMETHEUS_MULTIPROC_DIR,
the default) each write takes the process's one metrics lock, checks for a fork and packs two
numbers into the mmapped file: ~32 µs a request together, a tenth of the instructions of the
threads serving a single POST (docs/performance.md). Here a request leaves one tuple in a queue,
and a thread of the process turns each second's requests into the same series' writes: one
`inc(n)` per counter series, and a histogram's values counted into its buckets, one write per
bucket.

What a scrape shows is unchanged but for the delay: the metrics, their names, labels and buckets
are django-prometheus' own (its `Metrics`); a series moves at most FLUSH_SECONDS after its
requests, and `GET /metrics` first flushes the process that answers it. Requests are counted in
`django_http_requests_before_middlewares_total` as they arrive, responses as they leave, so the
difference still shows requests in flight. A process killed outright loses at most its last
second of HTTP counts; a process that exits flushes them. Exceptions are counted at once, as
django-prometheus counts them: they are rare, and an operator wants them without delay.
"""

import atexit
import bisect
import collections
import logging
import os
import threading
from time import perf_counter

from django_prometheus.middleware import Metrics
from django_prometheus.middleware import PrometheusAfterMiddleware as _PrometheusAfterMiddleware
from django_prometheus.middleware import PrometheusBeforeMiddleware as _PrometheusBeforeMiddleware

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
# A bound on what waits for a flush, should the flushing thread ever fall behind: past it the oldest
# requests' counts are dropped (a metric undercounts) rather than the process's memory growing.
MAX_PENDING = 100_000


class _Pending:
    """The requests recorded since the last flush (appends and pops of a deque are atomic: the
    requests' threads never wait for each other or for the flush), and the thread flushing them."""

    def __init__(self):
        self.arrivals = collections.deque(maxlen=MAX_PENDING)  # one None a request
        self.answered = collections.deque(maxlen=MAX_PENDING)  # one latency including middlewares a response
        self.views = collections.deque(maxlen=MAX_PENDING)  # one record a response past the After middleware (_LABELS)
        self._children = {}  # (metric, labels) -> prometheus_client's labelled child
        self._flush_lock = threading.Lock()
        self._flusher_pid = None  # a forked child starts a flusher of its own

    def arrived(self) -> None:
        if self._flusher_pid != os.getpid():
            self._flusher_start()
        self.arrivals.append(None)

    def _flusher_start(self) -> None:
        with self._flush_lock:
            if self._flusher_pid == os.getpid():
                return
            self._flusher_pid = os.getpid()
            threading.Thread(target=self._flush_forever, name="request-metrics", daemon=True).start()

    def _flush_forever(self) -> None:
        stop = threading.Event()
        while not stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except Exception:  # a metric's failure must not end the counting for the process's life
                logger.exception("request metrics: flush failed")

    def flush(self) -> None:
        with self._flush_lock:
            metrics = Metrics.get_instance()
            arrived = len(_drained(self.arrivals))
            if arrived:
                metrics.requests_total.inc(arrived)
            answered = _drained(self.answered)
            if answered:
                metrics.responses_total.inc(len(answered))
            _observed(metrics.requests_latency_before, answered)
            views = _drained(self.views)
            # Requests alike in every label, counted together: one write per series, not per request.
            for labels, count in collections.Counter(record[_LABELS] for record in views).items():
                self._views_counted(metrics, labels, count)
            _observed(metrics.requests_body_bytes, [record[_REQUEST_BYTES] for record in views])
            _observed(metrics.responses_body_bytes,
                      [record[_RESPONSE_BYTES] for record in views if record[_RESPONSE_BYTES] is not None])
            latencies = collections.defaultdict(list)
            for record in views:
                view, raw_method = record[_LABELS][_VIEW], record[_LABELS][_RAW_METHOD]
                latencies[view, raw_method].append(record[_SECONDS])
            for (view, raw_method), seconds in latencies.items():
                _observed(self.child(metrics.requests_latency_by_view_method, (("view", view), ("method", raw_method))),
                          seconds)

    def _views_counted(self, metrics, labels: tuple, count: int) -> None:
        """The counters django-prometheus' After middleware increments for `count` requests alike."""
        transport, method, ajax, reached_view, view, _raw_method, status, charset, streaming = labels
        self.child(metrics.requests_by_method, (("method", method),)).inc(count)
        self.child(metrics.requests_by_transport, (("transport", transport),)).inc(count)
        if ajax:
            metrics.requests_ajax.inc(count)
        if reached_view is not None:
            self.child(metrics.requests_by_view_transport_method,
                       (("view", reached_view), ("transport", transport), ("method", method))).inc(count)
        self.child(metrics.responses_by_status, (("status", status),)).inc(count)
        self.child(metrics.responses_by_status_view_method,
                   (("status", status), ("view", view), ("method", method))).inc(count)
        if charset is not None:
            self.child(metrics.responses_by_charset, (("charset", charset),)).inc(count)
        if streaming:
            metrics.responses_streaming.inc(count)

    def child(self, metric, labels: tuple):
        """The labelled series, looked up once per process: prometheus_client validates and
        converts the labels and takes the metric's lock on every `labels()` call. Its label values
        are bounded as the series themselves are (methods, views, statuses, charsets)."""
        if not labels:
            return metric
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(**dict(labels))
        return child


# A response's record: (seconds, request bytes, response bytes or None, labels), the labels being
# (transport, method, ajax, the view if process_view ran, view, the raw method, status, charset,
# streaming).
_SECONDS, _REQUEST_BYTES, _RESPONSE_BYTES, _LABELS = range(4)
_VIEW, _RAW_METHOD = 4, 5


def _observed(histogram, amounts: list) -> None:
    """`histogram.observe(amount)` for each amount, one write per bucket and one to the sum.

    Reads prometheus_client's own buckets (`_upper_bounds`, `_buckets`, `_sum`, as its `observe`
    does; the version is pinned, and tests/core/test_metrics_middleware.py compares every bucket
    with django-prometheus' own writes). An amount goes in the first bucket whose bound is not
    below it, as in `observe`.
    """
    if not amounts:
        return
    histogram._raise_if_not_observable()
    histogram._sum.inc(sum(amounts))
    bounds = histogram._upper_bounds
    for index, count in collections.Counter(bisect.bisect_left(bounds, amount) for amount in amounts).items():
        histogram._buckets[index].inc(count)


def _content_length(request) -> int:
    """The request's Content-Length, as django-prometheus reads it, 0 where it is not a number
    (a caller's header must not turn into a 500 here)."""
    try:
        return int(request.headers.get("content-length") or 0)
    except ValueError:
        return 0


def _drained(queue: collections.deque) -> list:
    """What `queue` holds now; what requests append meanwhile stays for the next flush."""
    return [queue.popleft() for _ in range(len(queue))]


_pending = _Pending()
atexit.register(_pending.flush)


def request_metrics_flush() -> None:
    """Write what this process's requests left for the next flush now (a scrape, a test)."""
    _pending.flush()


class PrometheusBeforeMiddleware(_PrometheusBeforeMiddleware):
    """django-prometheus' Before middleware, its counts and latency left for the flush."""

    # Called straight, not through MiddlewareMixin's hooks: the chain is sync (apps/core/asgi.py).
    sync_capable, async_capable = True, False

    def __call__(self, request):
        _pending.arrived()
        started = request.prometheus_before_middleware_event = perf_counter()  # django-prometheus' Time()
        response = self.get_response(request)
        _pending.answered.append(perf_counter() - started)
        return response


class PrometheusAfterMiddleware(_PrometheusAfterMiddleware):
    """django-prometheus' After middleware, each response's series left as one record. Its
    `process_exception` and `process_template_response` are its own, writing at once."""

    sync_capable, async_capable = True, False

    def __call__(self, request):
        started = request.prometheus_after_middleware_event = perf_counter()
        response = self.get_response(request)
        seconds = perf_counter() - started
        match = request.resolver_match
        view = self._get_view_name(request)
        charset = response.charset if hasattr(response, "charset") else None
        _pending.views.append((
            seconds,
            _content_length(request),
            len(response.content) if hasattr(response, "content") else None,
            (self._transport(request),
             self._method(request),
             request.headers.get("x-requested-with") == "XMLHttpRequest",
             (match.view_name or "<unnamed view>") if getattr(request, "prometheus_view_reached", False) else None,
             view,
             request.method,
             str(response.status_code),
             None if charset is None else str(charset),
             bool(getattr(response, "streaming", False))),
        ))
        return response

    def process_view(self, request, view_func, *view_args, **view_kwargs):
        request.prometheus_view_reached = True

    def label_metric(self, metric, request, response=None, **labels):
        # process_exception's series, looked up once per process as the flush's are.
        return _pending.child(metric, tuple(labels.items()))
