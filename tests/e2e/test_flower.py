"""Flower as the Procfile starts it (notifier/flower.py): never without a real password."""

import os
import signal
import subprocess
import sys

import pytest
import requests

from tests.support.processes import REPO_ROOT, ServiceProcess, free_port, process_env, wait_until

pytestmark = pytest.mark.e2e

PASSWORD = "s3cret-enough"


def flower(basic_auth: str, log_dir, port: int) -> ServiceProcess:
    args = [sys.executable, "-m", "notifier.flower", f"--port={port}", "--address=127.0.0.1"]
    return ServiceProcess(f"flower-{port}", args, process_env(FLOWER_BASIC_AUTH=basic_auth), log_dir)


@pytest.mark.parametrize("basic_auth", ["", " ", ":", "admin:", ":password", "admin:change-me", "admin:short",
                                        "admin:s3cret-enough,"])
def test_flower_refuses_to_start_without_a_real_password(basic_auth, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "notifier.flower", f"--port={free_port()}"], cwd=REPO_ROOT,
        env=process_env(FLOWER_BASIC_AUTH=basic_auth), capture_output=True, text=True, timeout=30,
    )

    assert result.returncode == 2
    assert "Flower not started: FLOWER_BASIC_AUTH" in result.stderr


@pytest.mark.timeout(120)  # flower may take up to 60 s to listen
def test_flower_answers_only_with_the_right_credentials(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with flower(f"admin:{PASSWORD}", tmp_path, port) as process:
        def answering():
            try:
                return requests.get(f"{base}/healthcheck", timeout=2)
            except requests.ConnectionError:
                assert process.process.poll() is None, process.log()[-3000:]
                return None

        wait_until(answering, timeout=60, message="flower to listen")

        assert requests.get(f"{base}/api/workers", timeout=10).status_code == 401
        assert requests.get(f"{base}/api/workers", headers={"Authorization": "Basic ="}, timeout=10).status_code == 401
        assert requests.get(f"{base}/api/workers", auth=("admin", "wrong-password"), timeout=10).status_code == 401
        assert requests.get(f"{base}/api/workers", auth=("admin", PASSWORD), timeout=10).status_code == 200


def test_the_procfile_flower_with_an_empty_password_never_opens_the_workers_controls(tmp_path):
    command = next(line.split(":", 1)[1] for line in (REPO_ROOT / "Procfile").read_text().splitlines()
                   if line.startswith("flower:"))
    port = free_port()
    env = process_env(FLOWER_BASIC_AUTH="", FLOWER_PORT=port)
    process = subprocess.Popen(["sh", "-c", command], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # it started: it must still not answer `Basic =`
        response = requests.get(f"http://127.0.0.1:{port}/api/workers", headers={"Authorization": "Basic ="}, timeout=10)
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"flower started with an empty FLOWER_BASIC_AUTH (Basic = got {response.status_code})")
    assert process.returncode == 2, output
    assert "Flower not started" in output
