"""The database's clock, for every deadline the pipeline writes or compares.

Workers, beat and web processes run on several hosts whose clocks drift; the deadlines on a
delivery (`recheck_at`, `next_attempt_at`, a claim's sending deadline) are compared by whichever
process reads them next. Taking "now" from the one database keeps them comparable: a sweep on a
host running a minute fast must not take back a live send, and a worker a minute fast must not
claim a retry before it is due. Queries compare with Now(); what a worker writes after a send
follows from the database's time read with its claim (DbClock).
"""

import time
from datetime import datetime, timedelta


class DbClock:
    """The database's time read once, then carried forward by this host's monotonic clock.

    A batch of sends reads the database's time with its claim; every timestamp it then writes
    (attempts, retry times, deadlines) follows from it without another query, and without this
    host's wall clock, which may be off (a monotonic clock does not jump).
    """

    def __init__(self, at: datetime):
        self._at = at
        self._started = time.monotonic()

    def now(self) -> datetime:
        return self._at + timedelta(seconds=time.monotonic() - self._started)
