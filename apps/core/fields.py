"""Serializer fields shared by the apps' APIs."""

import math
import re

from rest_framework import serializers

# PostgreSQL's jsonb refuses U+0000 and unpaired surrogates (valid JSON escapes, so the parser lets
# them through), and JSON has no Infinity (1e400 parses to one): each would be a DataError at save.
_UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


class JSONObjectField(serializers.DictField):
    """A JSON object (free-form unless `child` says otherwise) that PostgreSQL can store as jsonb.

    Refuses, with a 400 naming the field, what would otherwise fail at save or at render time:
    NUL or unpaired surrogate characters in any key or string, non-finite numbers, and nesting
    deeper than MAX_DEPTH (deep enough for any real payload; far below what Python's recursion
    limit lets the JSON encoder, jsonb and the templates walk).
    """

    MAX_DEPTH = 32

    default_error_messages = {
        "invalid_characters": "Text in this object may not contain NUL (\\u0000) or unpaired surrogate characters.",
        "not_finite": "Numbers in this object must be finite.",
        "too_deep": "This object is nested more than {max_depth} levels deep.",
    }

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        self.check_storable(value)
        return value

    def check_storable(self, value) -> None:
        """Raise this field's ValidationError for what jsonb could not store (see the class)."""
        # Iterative, so a deep object is refused here rather than blowing the stack.
        pending = [(value, 1)]
        while pending:
            item, depth = pending.pop()
            if isinstance(item, str):
                if _UNSTORABLE_CHARACTERS.search(item):
                    self.fail("invalid_characters")
            elif isinstance(item, float):
                if not math.isfinite(item):
                    self.fail("not_finite")
            elif isinstance(item, dict | list):
                if depth > self.MAX_DEPTH:
                    self.fail("too_deep", max_depth=self.MAX_DEPTH)
                if isinstance(item, dict):
                    pending.extend((key, depth) for key in item)
                    pending.extend((child, depth + 1) for child in item.values())
                else:
                    pending.extend((child, depth + 1) for child in item)


class IdempotencyKeyField(serializers.CharField):
    """An idempotency key: at most MAX_LENGTH characters, kept exactly as sent.

    A longer key is refused, never cut: two keys sharing their first MAX_LENGTH characters would
    otherwise name the same request, and the second would get the first's answer or a 409.
    """

    MAX_LENGTH = 255  # Notification.idempotency_key's column

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", self.MAX_LENGTH)
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)


# One instance for every request: building a DRF field (its validators, its deep-copied
# arguments) cost more than checking the header; checking only reads it.
_IDEMPOTENCY_KEY = IdempotencyKeyField()


def idempotency_key_from_header(request, header: str = "Idempotency-Key") -> str:
    """The request's idempotency key header, checked like the field ("" when absent)."""
    value = request.headers.get(header, "")
    if not value:
        return ""  # what the field gives for a blank key, without its checks
    try:
        return _IDEMPOTENCY_KEY.run_validation(value)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({header: exc.detail}) from None
