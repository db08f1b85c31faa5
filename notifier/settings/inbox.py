"""The in-app inbox (apps/inbox): its tokens, its live stream, and the browser origins that may call
it. Imported by base.py.
"""

from notifier.settings.environment import env

# Life of a user's inbox token (POST /api/v1/users/{id}/token). Tokens are stateless and cannot be
# revoked early, so keep it short; the app asks its backend for a new one when a call gets 401.
NOTIFIER_INBOX_TOKEN_TTL_SECONDS = env.int("NOTIFIER_INBOX_TOKEN_TTL_SECONDS", default=3600)
# The live stream's heartbeat (a comment line that keeps proxies from closing an idle stream; each
# also re-reads the database, bounding what a lost wake-up can delay) and the reconnect delay it
# suggests to browsers (the SSE `retry:` field).
NOTIFIER_INBOX_HEARTBEAT_SECONDS = env.float("NOTIFIER_INBOX_HEARTBEAT_SECONDS", default=15.0)
NOTIFIER_INBOX_STREAM_RETRY_MS = env.int("NOTIFIER_INBOX_STREAM_RETRY_MS", default=3000)
# Open live streams allowed per user and per web process; one more is refused with 429
# (`too_many_streams`, Retry-After). A stream costs memory and a socket, not a database
# connection: the process cap keeps one process from running out of file descriptors.
NOTIFIER_INBOX_STREAMS_PER_USER = env.int("NOTIFIER_INBOX_STREAMS_PER_USER", default=5)
NOTIFIER_INBOX_STREAMS_PER_PROCESS = env.int("NOTIFIER_INBOX_STREAMS_PER_PROCESS", default=1000)
# Prefix of the Redis pub/sub channels that wake streams, and of the keys holding webhook leases
# and providers' circuits: installations sharing one Redis differ here.
NOTIFIER_INBOX_CHANNEL_PREFIX = env("NOTIFIER_INBOX_CHANNEL_PREFIX", default="notifier:")
# The inbox is called from the product's own pages, usually on another origin: those origins
# (e.g. https://app.example.com) may call /api/v1/inbox* with a bearer token. Nothing else is
# opened to browsers; the server-to-server API never needs CORS.
CORS_ALLOWED_ORIGINS = env.list("NOTIFIER_INBOX_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/v1/inbox(/.*)?$"
CORS_ALLOW_HEADERS = ("authorization", "content-type", "last-event-id")
CORS_PREFLIGHT_MAX_AGE = 3600
# The token travels in the Authorization header (or ?token= for the stream), never in a cookie:
# browsers are not to send any credentials cross-origin (django-cors-headers' default, said here).
CORS_ALLOW_CREDENTIALS = False
# The page /inbox/demo/ (the widget for the demo user of `make run`): the dev settings turn it on.
NOTIFIER_INBOX_DEMO = False
