"""API rates as operators write them: `100/s`, `6000/m`, `50000/h`, `1000000/d`, or `off`."""

import functools
import re
from dataclasses import dataclass

from django.core.exceptions import ValidationError

_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*(\d{1,9})\s*/\s*([smhd])\s*$")
OFF = "off"


@dataclass(frozen=True)
class Rate:
    """`count` requests per `period_seconds`: a bucket of `count` that refills evenly over the period."""

    count: int
    period_seconds: int

    @property
    def per_second(self) -> float:
        return self.count / self.period_seconds


# Every API request's throttle parses its project's rate (or the default): the few strings in use
# are parsed once per process. A ValueError is not remembered, so an invalid rate is reported each time.
@functools.lru_cache(maxsize=256)
def rate_parse(value: str) -> Rate | None:
    """The rate `value` names; None for `off`. ValueError for anything else."""
    if value.strip().lower() == OFF:
        return None
    match = _RATE.match(value)
    if not match or int(match[1]) == 0:
        raise ValueError(f"{value!r} is not a rate: write N/s, N/m, N/h or N/d with N ≥ 1, or 'off'")
    return Rate(int(match[1]), _PERIOD_SECONDS[match[2]])


def validate_rate(value: str) -> None:
    """Model validator: blank (the server's default), `off`, or a rate."""
    if value == "":
        return
    try:
        rate_parse(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
