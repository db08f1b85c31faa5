"""The connection-budget system check: a configuration that would exhaust PostgreSQL is refused."""

import pytest
from django.core.checks import run_checks
from django.db import connection

pytestmark = pytest.mark.django_db


def _capacity_errors(**kwargs) -> list[str]:
    return [message.msg for message in run_checks(**kwargs) if message.id == "notifier.E050"]


def test_a_sane_configuration_passes_against_the_real_server(settings):
    settings.NOTIFIER_WEB_CONCURRENCY = 2
    assert settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"] == 8
    assert [m.id for m in run_checks(databases=["default"]) if m.id in ("notifier.E050", "notifier.W050")] == []


def test_more_web_processes_than_max_connections_allow_are_refused(settings):
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
    settings.NOTIFIER_WEB_CONCURRENCY = max_connections // 8 + 1  # x 8 pooled connections each

    [error] = _capacity_errors(databases=["default"])

    assert f"{settings.NOTIFIER_WEB_CONCURRENCY} web processes x 8 pooled" in error
    assert f"max_connections {max_connections}" in error


def test_the_database_connection_limit_counts_too(settings):
    """A CONNECTION LIMIT on the database (set here for the test's duration) is the tighter bound."""
    settings.NOTIFIER_WEB_CONCURRENCY = 2
    settings.NOTIFIER_DB_RESERVED_CONNECTIONS = 0
    settings.CELERY_WORKER_CONCURRENCY = 2
    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{name}" CONNECTION LIMIT 19')
    try:
        errors = _capacity_errors(databases=["default"])  # 2 x 8 + 2 + beat + flower = 20
        settings.CELERY_WORKER_CONCURRENCY = 1
        assert _capacity_errors(databases=["default"]) == []  # 19
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{name}" CONNECTION LIMIT -1')
    [error] = errors
    assert "20 PostgreSQL connections" in error and "the database's CONNECTION LIMIT 19" in error


def test_the_limit_can_be_given_as_a_setting_without_the_server(settings):
    """Checked by every command (and a Celery worker's start), no database needed."""
    settings.NOTIFIER_WEB_CONCURRENCY = 4
    settings.NOTIFIER_CELERY_WORKERS = 3
    settings.CELERY_WORKER_CONCURRENCY = 8
    settings.NOTIFIER_DB_RESERVED_CONNECTIONS = 5
    settings.NOTIFIER_DB_MAX_CONNECTIONS = 60  # 4 x 8 + 3 x 8 + 1 + 1 + 5 = 63

    [error] = _capacity_errors()
    assert "63 PostgreSQL connections" in error and "NOTIFIER_DB_MAX_CONNECTIONS" in error

    settings.NOTIFIER_DB_MAX_CONNECTIONS = 63
    assert _capacity_errors() == []


def test_the_worker_concurrency_comes_from_the_environment_when_the_setting_is_absent(settings, monkeypatch):
    del settings.CELERY_WORKER_CONCURRENCY
    monkeypatch.setenv("CELERY_WORKER_CONCURRENCY", "30")
    settings.NOTIFIER_WEB_CONCURRENCY = 1
    settings.NOTIFIER_DB_RESERVED_CONNECTIONS = 0
    settings.NOTIFIER_DB_MAX_CONNECTIONS = 39  # 8 + 30 + 1 + 1 = 40

    [error] = _capacity_errors()
    assert "concurrency 30" in error
