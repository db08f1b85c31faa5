"""The bench's stand-in for autovacuum (bench/autovacuum.py), on a database of its own: a table
filled since its last ANALYZE is analysed by autovacuum's rule, and a statement prepared while it
was empty is planned again for its size, as a production server's autovacuum would have it."""

import time
import uuid

import pytest

from bench.autovacuum import AutovacuumStandIn
from bench.probes import connect
from bench.stack import POSTGRES_URL

pytestmark = pytest.mark.e2e


@pytest.fixture
def database():
    name = f"notifier_autovacuum_{uuid.uuid4().hex[:8]}"
    with connect(f"{POSTGRES_URL}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with connect(f"{POSTGRES_URL}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _plan(connection) -> str:
    return "\n".join(row[0] for row in connection.execute("EXPLAIN EXECUTE lookup(ARRAY[1])").fetchall())


def _changes_counted(connection, rows: int) -> None:
    # A backend reports its changes to the statistics a while after its commit (up to ten seconds
    # when it then sits idle); until then autovacuum's rule cannot see them either.
    deadline = time.monotonic() + 20
    with connect(f"{POSTGRES_URL}/{connection.info.dbname}", autocommit=True) as reader:
        while time.monotonic() < deadline:
            reader.execute("SELECT pg_stat_clear_snapshot()")
            counted = reader.execute("SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = 'queue'").fetchone()[0]
            if counted >= rows:
                return
            connection.execute("SELECT 1")  # a statement gives the backend its chance to report
            time.sleep(0.2)
    raise AssertionError(f"PostgreSQL counted {counted} changed rows of {rows}")


def test_a_table_filled_since_its_analyze_is_analysed_and_its_cached_plan_follows(database):
    stand_in = AutovacuumStandIn(database)
    with connect(f"{POSTGRES_URL}/{database}", autocommit=True) as connection:
        connection.execute("CREATE TABLE queue (id integer PRIMARY KEY, body text)")
        connection.execute("ANALYZE queue")
        connection.execute("SET plan_cache_mode = force_generic_plan")
        connection.execute("PREPARE lookup(integer[]) AS SELECT body FROM queue WHERE id = ANY($1)")
        assert "Seq Scan" in _plan(connection)  # planned while the table was empty

        connection.execute("INSERT INTO queue SELECT n, 'x' FROM generate_series(1, 20000) n")
        assert "Seq Scan" in _plan(connection)  # still: nothing told PostgreSQL the table grew

        _changes_counted(connection, 20000)
        assert stand_in.analyze_due() == ["public.queue"]
        assert "Index Scan using queue_pkey" in _plan(connection)
        assert stand_in.analyzed == 1

        # Autovacuum's rule: 50 rows and a tenth of the table since the last ANALYZE, by default.
        connection.execute("UPDATE queue SET body = 'y' WHERE id <= 1000")
        _changes_counted(connection, 1000)
        assert stand_in.analyze_due() == []
