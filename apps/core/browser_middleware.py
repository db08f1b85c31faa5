"""The browser's middleware, skipped on the API's paths.

Sessions, CSRF, the logged-in user and messages serve the console,
the preference and unsubscribe pages. The API (`/api/v1/`) authenticates every request by its
API key or token and sets no cookie, so for it they were only cost: a session lookup is never
needed, CSRF does not apply to a request without cookies, and nobody logs in through it
(docs/performance.md measures each). Each class here is Django's own, subclassed so that the
admin's system checks still find it, and runs as before on every other path. django-axes'
middleware stays as it is: it only reads an attribute a failed login sets (nothing to save), and
its system check wants it by its own name.
"""

from django.contrib.auth.middleware import AuthenticationMiddleware as _AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware as _MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware as _SessionMiddleware
from django.middleware.csrf import CsrfViewMiddleware as _CsrfViewMiddleware

API_PREFIX = "/api/v1/"


def is_api_request(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


class _BrowserOnly:
    """Passes an API request straight to the next middleware (sync or async alike: the result of
    get_response is returned as it is, a coroutine in async mode, which the caller awaits)."""

    def __call__(self, request):
        if is_api_request(request):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(_BrowserOnly, _SessionMiddleware):
    pass


class CsrfViewMiddleware(_BrowserOnly, _CsrfViewMiddleware):
    def process_view(self, request, callback, callback_args, callback_kwargs):
        # Called by the handler itself, not through __call__: skipped here too.
        if is_api_request(request):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class AuthenticationMiddleware(_BrowserOnly, _AuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, _MessageMiddleware):
    pass
