"""The suite asks for PostgreSQL and RabbitMQ only when a collected test needs them, and stops at
once, naming the one that is down, when it does."""

import subprocess
import sys

import pytest

from tests.support.processes import REPO_ROOT, process_env

pytestmark = pytest.mark.slow  # each starts a pytest of its own

SERVICES_DOWN = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:1/notifier_nowhere",
    "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:1/notifier_test_nowhere",
}


def pytest_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=REPO_ROOT,
                          env=process_env(**SERVICES_DOWN), capture_output=True, text=True, timeout=120)


def test_pure_unit_tests_run_with_postgresql_and_rabbitmq_down():
    result = pytest_run("tests/core/test_observability.py", "-k", "masked or left_alone")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "passed" in result.stdout


def test_a_run_that_needs_the_database_stops_at_once_naming_it():
    result = pytest_run("tests/users/test_api.py")
    assert result.returncode == 3, result.stdout[-3000:]
    assert "PostgreSQL at 127.0.0.1:1 is unreachable" in result.stdout + result.stderr
    assert "RabbitMQ" not in result.stdout + result.stderr  # these tests never publish


def test_a_run_that_needs_the_broker_stops_at_once_naming_it():
    result = pytest_run("tests/notifications/test_services.py")
    assert result.returncode == 3, result.stdout[-3000:]
    assert "RabbitMQ at 127.0.0.1:1 is unreachable" in result.stdout + result.stderr
