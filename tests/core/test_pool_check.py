"""The pool lends a connection without a round trip to check it unless it may have died
(notifier/postgresql/base.py): one the server ended is still never lent."""

import time

import psycopg
import pytest
from django.db import connection
from psycopg_pool import ConnectionPool

from notifier.postgresql.base import DatabaseWrapper

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool_of(settings):
    """A pool of its own (another alias) on the test database, built as the web's is."""
    wrappers = []

    def build(after_idle_seconds: float):
        settings.NOTIFIER_DB_POOL_CHECK_AFTER_IDLE_SECONDS = after_idle_seconds
        wrapper = DatabaseWrapper({**connection.settings_dict}, alias=f"pool_check_{len(wrappers)}")
        wrappers.append(wrapper)
        wrapper.pool.open(wait=False)
        return wrapper.pool

    yield build
    for wrapper in wrappers:
        wrapper.close_pool()


@pytest.fixture
def round_trips(monkeypatch):
    """How many times psycopg_pool's own check (its round trip) ran."""
    calls = []
    check = ConnectionPool.check_connection
    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(lambda conn: (calls.append(1), check(conn))))
    return calls


def _terminate(pid: int) -> None:
    db = connection.settings_dict
    with psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"] or "postgres",
                         dbname="postgres", autocommit=True) as admin:
        # Waits until the backend is gone, as a restart or an administrator's kill would leave it.
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone()[0]


def _lend(pool: ConnectionPool) -> int:
    with pool.connection() as conn:
        return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def test_a_connection_lent_again_soon_is_not_checked_with_a_round_trip(pool_of, round_trips):
    pool = pool_of(after_idle_seconds=60)
    first = _lend(pool)
    assert len(round_trips) == 1  # a new connection's first lend is checked
    assert [_lend(pool) for _ in range(5)] == [first] * 5
    assert len(round_trips) == 1


def test_a_connection_the_server_ended_is_replaced_not_lent(pool_of, round_trips):
    pool = pool_of(after_idle_seconds=60)
    ended = _lend(pool)
    _terminate(ended)

    replacement = _lend(pool)  # works: the pool found the ended one and opened another

    assert replacement != ended
    assert len(round_trips) == 3  # the first lend, the ended one's check (failed), the new one's first lend


def test_a_connection_idle_longer_than_the_setting_is_checked(pool_of, round_trips):
    pool = pool_of(after_idle_seconds=0.2)
    first = _lend(pool)
    time.sleep(0.3)
    assert _lend(pool) == first
    assert len(round_trips) == 2


def test_zero_checks_every_lend(pool_of, round_trips):
    pool = pool_of(after_idle_seconds=0)
    for _ in range(3):
        _lend(pool)
    assert len(round_trips) == 3
