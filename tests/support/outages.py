"""Outages a test can cause without touching anything outside its own run."""

from contextlib import contextmanager

import psycopg
from django.db import connection


@contextmanager
def database_closed():
    """This run's database refuses new connections and ends every session but the test's own.
    (PostgreSQL takes ALLOW_CONNECTIONS only from a session on another database.)"""
    db = connection.settings_dict
    name = db["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own_pid = cursor.fetchone()[0]
    admin = psycopg.connect(host=db["HOST"] or "127.0.0.1", port=db["PORT"] or 5432, user=db["USER"] or "postgres",
                            dbname="postgres", autocommit=True)
    with admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                          [name, own_pid])
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            # This test process's pool met the outage too: its attempts to grow may be backing
            # off for longer than the next test's 10 s wait for a connection. Start it afresh.
            connection.close()
            connection.close_pool()
