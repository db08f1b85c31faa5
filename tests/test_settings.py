"""Each process must start from the documented environment names alone, and prod must refuse
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


@pytest.mark.slow
def test_prod_starts_with_the_contract_variables():
    result = manage("check", "--deploy", "--fail-level", "ERROR", env=prod_env())
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_prod_with_email_but_no_public_base_url_fails_the_check_instead_of_linking_to_loopback():
    with_email = {"EMAIL_URL": "smtp+ssl://relay.example.com:465"}

    missing = manage("check", "--fail-level", "ERROR", env=prod_env(**with_email, PUBLIC_BASE_URL=None))
    given = manage("check", "--fail-level", "ERROR",
                   env=prod_env(**with_email, PUBLIC_BASE_URL="https://notifier.example.com"))

    assert missing.returncode != 0 and "PUBLIC_BASE_URL is not set" in missing.stderr
    assert given.returncode == 0, given.stderr


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL"])
def test_prod_refuses_to_start_without_a_required_variable(missing):
    result = manage("check", env=prod_env(**{missing: None}))
    assert result.returncode != 0
    assert missing in result.stderr


def enabled_channels(env: dict) -> list[str]:
    result = manage("shell", "-c", "from django.conf import settings; print(','.join(settings.NOTIFIER_CHANNELS))", env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1].split(",")  # after the shell's import banner


@pytest.mark.slow
def test_prod_without_email_url_turns_email_off_instead_of_writing_files():
    assert "email" not in enabled_channels(prod_env(EMAIL_URL=None))
    assert "email" in enabled_channels(prod_env(EMAIL_URL="smtp+ssl://relay.example.com:465"))


@pytest.mark.parametrize("secret", ["change-me-to-a-long-random-string", "x" * 49])
def test_prod_refuses_the_example_or_a_short_secret_key(secret):
    result = manage("check", env=prod_env(DJANGO_SECRET_KEY=secret))
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is the example value or shorter than 50 characters" in result.stderr


def prod_setting(expression: str, **changes) -> str:
    result = manage("shell", "-c", f"from django.conf import settings; print(repr({expression}))", env=prod_env(**changes))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_prod_sends_hsts_for_a_year_and_subdomains_only_when_asked():
    assert prod_setting("(settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_INCLUDE_SUBDOMAINS)") == "(31536000, False)"
    assert prod_setting("settings.SECURE_HSTS_INCLUDE_SUBDOMAINS", DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="true") == "True"


@pytest.mark.slow
def test_prod_believes_x_forwarded_proto_only_when_configured():
    # Otherwise any client could claim https: uvicorn --proxy-headers applies it from FORWARDED_ALLOW_IPS only.
    assert prod_setting("settings.SECURE_PROXY_SSL_HEADER") == "None"
    assert prod_setting("settings.SECURE_PROXY_SSL_HEADER", DJANGO_SECURE_PROXY_SSL_HEADER="true") == (
        "('HTTP_X_FORWARDED_PROTO', 'https')")


def test_compose_publishes_the_management_ports_on_loopback_only():
    compose = (REPO_ROOT / "docker-compose.yml").read_text()
    published = [line.split("ports:")[1].strip() for line in compose.splitlines() if "ports:" in line]
    for ports in published:
        for port in ports.strip("[]").split(","):
            if "8000" not in port:  # the API is the one port meant to be reached (through a proxy)
                assert port.strip().strip('"').startswith("127.0.0.1:"), port


def test_the_dockerfile_build_step_passes_prod_s_secret_check(tmp_path):
    dockerfile = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    command = next(line.removeprefix("RUN ") for line in dockerfile.splitlines() if "collectstatic" in line)
    env = process_env(DJANGO_STATIC_ROOT=tmp_path)
    env.pop("NOTIFIER_TEST_RUN", None)
    result = subprocess.run(["sh", "-c", command], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


# --- Settings are declarative: folders are made by the processes that write to them ------------

@pytest.mark.slow
def test_reading_the_settings_creates_no_folder_and_starting_a_process_creates_its_own(tmp_path):
    data_dir, static_root = tmp_path / "data", tmp_path / "static"
    env = process_env(NOTIFIER_DATA_DIR=data_dir, DATABASE_URL=f"sqlite:///{data_dir}/notifier.sqlite3",
                      CELERY_BROKER_URL="filesystem://", DJANGO_STATIC_ROOT=static_root,
                      DJANGO_SETTINGS_MODULE="notifier.settings.dev")
    read = subprocess.run([str(BIN / "python"), "-c", "from django.conf import settings; print(settings.VAR_DIR)"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert read.returncode == 0, read.stderr
    assert list(tmp_path.iterdir()) == []
    result = manage("check", env=env)
    assert result.returncode == 0, result.stderr
    assert (data_dir / "broker" / "queue").is_dir() and (data_dir / "broker" / "control").is_dir()
    assert static_root.is_dir()


@pytest.mark.slow
def test_prod_starts_where_the_data_folder_cannot_be_created(tmp_path):
    # As on a read-only filesystem: production's state is in PostgreSQL and RabbitMQ, and its
    # static files were collected at build time.
    env = prod_env(NOTIFIER_DATA_DIR="/dev/null/var", DJANGO_STATIC_ROOT=tmp_path)
    result = manage("check", "--deploy", "--fail-level", "ERROR", env=env)
    assert result.returncode == 0, result.stderr


# --- Settings by component: base is wiring, reading changes nothing -------------------------------

@pytest.mark.parametrize("module", ["dev", "test", "prod"])
def test_reading_the_settings_changes_nothing_in_the_process_environment(module, tmp_path):
    # A .env file too: the settings read it, the process's environment stays as it was given.
    code = (
        "import os\n"
        "before = dict(os.environ)\n"
        "from django.conf import settings\n"
        "settings.INSTALLED_APPS\n"
        "changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))\n"
        "print(changed, settings.PROMETHEUS_MULTIPROC_DIR)\n"
    )
    env = prod_env(DJANGO_SETTINGS_MODULE=f"notifier.settings.{module}", NOTIFIER_DATA_DIR=tmp_path)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    result = subprocess.run([str(BIN / "python"), "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", str(tmp_path / "metrics")]


def test_only_dev_and_test_have_a_default_secret_key():
    # prod reads DJANGO_SECRET_KEY with no default: test_prod_refuses_to_start_without_a_required_variable.
    from notifier.settings import base
    from notifier.settings.environment import INSECURE_DEV_SECRET_KEY

    assert not hasattr(base, "SECRET_KEY")
    env = process_env(DJANGO_SETTINGS_MODULE="notifier.settings.dev")
    env.pop("DJANGO_SECRET_KEY", None)
    result = subprocess.run([str(BIN / "python"), "-c", "from django.conf import settings; print(settings.SECRET_KEY)"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == INSECURE_DEV_SECRET_KEY, result.stderr


def test_base_is_wiring_only_and_builds_nothing_from_vars():
    settings_dir = REPO_ROOT / "notifier" / "settings"
    assert len((settings_dir / "base.py").read_text().splitlines()) <= 250
    for path in settings_dir.glob("*.py"):
        source = path.read_text()
        assert "vars()" not in source and "globals()" not in source, path.name
        assert "os.environ[" not in source and "os.environ.setdefault" not in source, path.name
