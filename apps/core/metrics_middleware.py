"""django-prometheus' request metrics, with each labelled series looked up once per process.

Its middleware calls `metric.labels(...)` for six series on every request, and prometheus_client
validates the label names, converts the values to strings and takes the metric's lock each time:
~15,000 instructions a call, ~2% of a single POST (docs/performance.md). The series a set of
labels names never changes (prometheus_client keeps every child it made for the process's life), so
here each is remembered the first time it is asked for. What is exported is the same, series for
series: the children are prometheus_client's own.
"""

from django_prometheus.middleware import PrometheusAfterMiddleware as _PrometheusAfterMiddleware


class PrometheusAfterMiddleware(_PrometheusAfterMiddleware):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # (metric, its labels) -> the labelled child. The label values are bounded as the metrics'
        # own series are (methods, views, statuses, charsets); a plain dict is safe across threads
        # here: two threads asking at once get the same child from prometheus_client.
        self._children = {}

    def label_metric(self, metric, request, response=None, **labels):
        if not labels:
            return metric
        key = (metric, *labels.items())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(**labels)
        return child
