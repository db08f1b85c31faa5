"""The README's "Sending a first notification", run as written against a real web process and
worker: the key command, each curl line, the answer it promises, and the email arriving."""

import json
import re
import subprocess
import sys

import pytest

from tests.support.processes import REPO_ROOT, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _first_request_commands() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Sending a first notification", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]


def _run(command: str, env: dict) -> str:
    result = subprocess.run(["bash", "-c", command], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{command}\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest.mark.timeout(120)  # runs the README's commands, then up to 30 s for the send
def test_the_readmes_first_request_works_as_written(web, worker, smtp, e2e_env):
    commands = _first_request_commands()
    assert [c.split()[0] for c in commands] == ["KEY=$(.venv/bin/python", "curl", "curl", "curl", "curl"], commands
    key_command, put_user, put_template, post, get = commands
    host = web.removeprefix("http://")

    env = dict(e2e_env)
    key_command = key_command.split("#")[0].strip().removeprefix("KEY=$(").removesuffix(")")
    key = _run(key_command.replace(".venv/bin/python", sys.executable), env).strip()
    env["KEY"] = key

    def curl(command: str) -> tuple[int, dict]:
        output = _run(command.replace("localhost:8000", host) + " -s -w '\\n%{http_code}'", env)
        body, status = output.rsplit("\n", 1)
        return int(status), json.loads(body) if body else {}

    assert curl(put_user)[0] == 201
    assert curl(put_template)[0] == 201
    status, created = curl(post)
    # The README promises: 202 {"id": …, "status": "processing", "deliveries": [{"id", "channel": "email", "status": "queued"}]}
    assert status == 202
    assert created["status"] == "processing"
    assert [(d["channel"], d["status"]) for d in created["deliveries"]] == [("email", "queued")]
    assert re.search(r"-H 'Idempotency-Key: [^']+'", post)
    status, repeated = curl(post)  # the same Idempotency-Key and body: the same notification, as it is now
    assert (status, repeated["id"]) == (202, created["id"])

    def sent():
        status, notification = curl(get.replace("<id>", created["id"]))
        assert status == 200
        return notification if notification["status"] == "sent" else None

    notification = wait_until(sent, timeout=30, message="the README's notification to be sent")
    assert notification["to"] == "ada" and notification["template"] == "welcome"
    [message] = smtp.received_for("ada@example.com")
    assert message["Subject"] == "Hi Ada"
    assert message.get_body(("plain",)).get_content().strip() == "Welcome, Ada!"
