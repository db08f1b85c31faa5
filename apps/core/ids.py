"""Ids that come from outside (broker messages, search boxes), checked before a query sees them:
PostgreSQL refuses a malformed UUID with an error, not with no rows."""

import uuid
from collections.abc import Iterable


def uuid_or_none(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def uuids_split(values: Iterable) -> tuple[list[str], list[str]]:
    """The well-formed UUIDs among `values`, as canonical strings, and the others as they came."""
    valid, malformed = [], []
    for value in values:
        parsed = uuid_or_none(value)
        if parsed is None:
            malformed.append(str(value))
        else:
            valid.append(str(parsed))
    return valid, malformed
