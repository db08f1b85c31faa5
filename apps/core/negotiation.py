"""DRF's content negotiation, answered at once for what API clients send.

Every API answer is JSON (REST_FRAMEWORK's one renderer), and clients send `Accept: */*` (curl,
aiohttp, requests), `application/json`, or no Accept at all. For those DRF's negotiation still
parses the header into media types, orders them by precedence and matches each against each
renderer: ~1.4% of a single POST's instructions (docs/performance.md). The answer for them is
fixed: the first renderer, with its own media type, which is what DRF's walk returns for them too.
Any other Accept header, a `?format=` or a view whose first renderer is not JSON (the schema's)
goes through DRF's negotiation as before, so a 406 is still a 406. A body sent as exactly
`application/json` gets the first parser when it is JSON's, as DRF's match would give it.
"""

from rest_framework.negotiation import DefaultContentNegotiation

JSON = "application/json"
# Accept headers for which DRF's negotiation picks a first renderer of type JSON, as JSON. No header
# means "*/*" (DRF's default); an empty one names no type at all and stays a 406.
_ANSWERED_AT_ONCE = frozenset({"*/*", JSON})


class JsonFirstContentNegotiation(DefaultContentNegotiation):
    def select_parser(self, request, parsers):
        if parsers and parsers[0].media_type == JSON and request.content_type == JSON:
            return parsers[0]
        return super().select_parser(request, parsers)

    def select_renderer(self, request, renderers, format_suffix=None):
        if (renderers and renderers[0].media_type == JSON and not format_suffix
                and request.META.get("HTTP_ACCEPT", "*/*") in _ANSWERED_AT_ONCE
                and not request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)):
            return renderers[0], JSON
        return super().select_renderer(request, renderers, format_suffix)
