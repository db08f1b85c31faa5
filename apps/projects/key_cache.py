"""API keys remembered per process for a few seconds, so a request costs no query to authenticate.

What is remembered is the key row with its project, as the last query read them. A key revoked,
or a project edited, in another process is therefore seen by this one within
NOTIFIER_API_KEY_CACHE_SECONDS (docs/operations.md); in the process that made the change, at once
(the saves clear it). A key that does not exist is not remembered: a wrong key always costs a query.
"""

import threading
import time

from django.conf import settings

from apps.projects.models import ApiKey

# Keys in use at once are few (one or two per integration); the bound only stops a flood of
# distinct valid keys from growing the dict without end.
MAX_KEYS = 1024

_lock = threading.Lock()
_keys: dict[str, tuple[float, ApiKey]] = {}  # key hash -> (monotonic expiry, key with its project)


def api_key_cached(key_hash: str) -> ApiKey | None:
    entry = _keys.get(key_hash)
    if entry is None or entry[0] <= time.monotonic():
        return None
    return entry[1]


def api_key_remember(key_hash: str, api_key: ApiKey) -> None:
    seconds = settings.NOTIFIER_API_KEY_CACHE_SECONDS
    if seconds <= 0:
        return
    with _lock:
        if len(_keys) >= MAX_KEYS:
            _keys.pop(next(iter(_keys)))  # the oldest entry: insertion order
        _keys.pop(key_hash, None)
        _keys[key_hash] = (time.monotonic() + seconds, api_key)


def api_key_cache_clear(**_signal_kwargs) -> None:
    """Forget every key: a key or project changed in this process (connected to their saves)."""
    with _lock:
        _keys.clear()
