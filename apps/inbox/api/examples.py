"""Examples of the inbox operations' bodies, for the OpenAPI schema."""

from apps.core.examples import response_example

_MESSAGE = {"id": 1042, "title": "Your order shipped", "body": "Order 1234 is on its way.",
            "url": "https://shop.example/o/1234", "read": False, "read_at": None,
            "created_at": "2025-01-01T12:00:01.000000Z"}
_READ = {**_MESSAGE, "read": True, "read_at": "2025-01-01T12:05:00.000000Z"}

# One item: drf-spectacular shows it in a page ({next, previous, results: [...]}) itself.
INBOX_LIST = [response_example("A page of the inbox, newest first", _MESSAGE)]
INBOX_UNREAD_COUNT = [response_example("Three unread", {"count": 3})]
INBOX_READ = [response_example("Marked read", _READ)]
INBOX_UNREAD = [response_example("Marked unread", _MESSAGE)]
INBOX_READ_ALL = [response_example("Every unread message marked read", {"updated": 3})]
TOKEN_CREATE = [response_example("A token for the user's browser or app", {
    "token": "eyJ1IjoxLCJwIjoxLCJlIjoxNzM1NzQ3MjAwfQ.3q2-7w", "expires_at": "2025-01-02T12:00:00Z"})]
