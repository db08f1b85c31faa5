"""Where the server's autovacuum is off, what it would have analysed while a scenario runs.

A production server's autovacuum visits each database once every `autovacuum_naptime` and
analyses each table changed by more than `autovacuum_analyze_threshold` rows plus
`autovacuum_analyze_scale_factor` of its rows since its last ANALYZE (PostgreSQL's "The
Autovacuum Daemon"). An ANALYZE also makes PostgreSQL plan the statements it had cached for the
table again. Without it, a table a scenario fills from empty keeps the plans made while it was a
few pages: a worker's claim then read the whole notifications table for each delivery it joined,
and PostgreSQL's CPU a delivery tripled over an email scenario (docs/performance.md, "Running
the benchmark"). The bench also analyses between scenarios (`Stack.analyze`); this stands in for
the visits during one, by the server's own settings and rule.
"""

from __future__ import annotations

import sys
import threading

import psycopg

from bench.probes import connect
from bench.stack import POSTGRES_URL

_DUE = """
    SELECT format('%I.%I', s.schemaname, s.relname)
    FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
    WHERE s.n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float8
        + current_setting('autovacuum_analyze_scale_factor')::float8 * greatest(c.reltuples, 0)
"""


class AutovacuumStandIn:
    """A thread that, every `autovacuum_naptime`, analyses the bench database's tables that
    autovacuum's rule says are due; `analyzed` counts the tables it analysed."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.analyzed = 0
        self.naptime = 60.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-autovacuum", daemon=True)

    def start(self) -> AutovacuumStandIn:
        with connect(f"{POSTGRES_URL}/postgres") as connection:
            # In seconds whatever unit the server's file used.
            self.naptime = float(connection.execute(
                "SELECT setting FROM pg_settings WHERE name = 'autovacuum_naptime'").fetchone()[0])
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stop.wait(self.naptime):
            try:
                self.analyze_due()
            except psycopg.Error as error:  # as autovacuum: this look fails, the next one comes
                print(f"bench: the autovacuum stand-in's ANALYZE failed: {error}", file=sys.stderr, flush=True)

    def analyze_due(self) -> list[str]:
        """ANALYZE each table due by autovacuum's rule now; the tables analysed."""
        with connect(f"{POSTGRES_URL}/{self.database}", autocommit=True) as connection:
            due = [row[0] for row in connection.execute(_DUE).fetchall()]
            for table in due:
                connection.execute(f"ANALYZE {table}")
        self.analyzed += len(due)
        return due
