"""The real services the suite needs: fail early and clearly when one is missing."""

import os
import socket
import subprocess
import zlib
from urllib.parse import urlparse

TEST_VHOST_PREFIX = "notifier_test"


def unreachable_services(database_url: str, broker_url: str) -> list[str]:
    """What is down among the services named (an empty URL: not needed), each with how to start it."""
    problems = []
    for name, url, default_port, hint in [
        ("PostgreSQL", database_url, 5432, "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"),
        ("RabbitMQ", broker_url, 5672, "rabbitmq-server -detached"),
    ]:
        if not url:
            continue
        parsed = urlparse(url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
        try:
            socket.create_connection((host, port), timeout=3).close()
        except OSError as exc:
            problems.append(f"{name} at {host}:{port} is unreachable ({exc}); start it with: {hint}")
    return problems


def rabbitmqctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=120, check=check)


def broker_vhost_open(broker_url: str) -> bool:
    """Whether the broker lets the suite into the URL's vhost (one AMQP connection, no rabbitmqctl)."""
    from kombu import Connection

    try:
        with Connection(broker_url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception:  # refused, or the vhost is missing (an access error): either way, not open
        return False
    return True


def rabbitmq_vhost_reset(vhost: str) -> None:
    """Start the run on an empty vhost: no stale messages, no queues declared with old arguments."""
    rabbitmqctl("delete_vhost", vhost, check=False)
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")


def redis_url_for_run() -> str:
    """This run's Redis database on the local Redis (runs sharing the machine differ by number)."""
    import pytest

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=3).close()
    except OSError as exc:
        pytest.fail(f"Redis at 127.0.0.1:6379 is unreachable ({exc}); start it with: "
                    "redis-server --daemonize yes --bind 127.0.0.1 --save ''")
    # Pub/sub ignores database numbers: the channel prefix is what keeps parallel runs apart.
    run = os.environ.get("NOTIFIER_TEST_RUN", "")
    return f"redis://127.0.0.1:6379/{1 + zlib.crc32(run.encode()) % 15}"
