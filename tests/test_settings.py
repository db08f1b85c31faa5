"""Each process must start from the environment names of CONTRACT.md alone, and prod must refuse
to start without its secrets rather than run on a default."""

import subprocess

import pytest

from tests.support.processes import BIN, REPO_ROOT, process_env

PROD_ENV = {
    "DJANGO_SETTINGS_MODULE": "notifier.settings.prod",
    "DJANGO_SECRET_KEY": "x" * 50,
    "DJANGO_ALLOWED_HOSTS": "notifier.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
    "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
}


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "python"), "manage.py", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def prod_env(**changes) -> dict:
    env = process_env(**{**PROD_ENV, **changes})
    for name in ("NOTIFIER_TEST_RUN",):
        env.pop(name, None)
    for name, value in changes.items():
        if value is None:
            env.pop(name)
    return env


def test_prod_starts_with_the_contract_variables():
    result = manage("check", "--deploy", "--fail-level", "ERROR", env=prod_env())
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL"])
def test_prod_refuses_to_start_without_a_required_variable(missing):
    result = manage("check", env=prod_env(**{missing: None}))
    assert result.returncode != 0
    assert missing in result.stderr


def enabled_channels(env: dict) -> list[str]:
    result = manage("shell", "-c", "from django.conf import settings; print(','.join(settings.NOTIFIER_CHANNELS))", env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1].split(",")  # after the shell's import banner


def test_prod_without_email_url_turns_email_off_instead_of_writing_files():
    assert "email" not in enabled_channels(prod_env(EMAIL_URL=None))
    assert "email" in enabled_channels(prod_env(EMAIL_URL="smtp+ssl://relay.example.com:465"))
