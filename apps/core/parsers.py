"""Request body parsers."""

import io

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from apps.core.exceptions import ApplicationError
from apps.core.limits import request_body_limit, request_too_large_message


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, plus two limits that keep bad input a 4xx:

    - a body larger than its path's limit (apps/core/limits.py) is a 413: DRF reads the request
      stream itself, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE never applies, and a huge body would
      be read into memory whole (at most limit + 1 bytes are read here, Content-Length or not).
      The ASGI edge refuses such bodies before they are read; this covers other servers (WSGI,
      the test client);
    - a body nested too deeply for Python to decode is a 400: the decoder recurses once per `[`
      or `{`, and DRF's parser turns only ValueError into a ParseError.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        limit = request_body_limit(path=request.path) if request is not None else settings.NOTIFIER_MAX_REQUEST_BYTES
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise ApplicationError("request_too_large", request_too_large_message(limit), status_code=413)
        try:
            return super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the document is nested too deeply.") from None
