"""Previews render in render processes: what a template does there cannot take this process down."""

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from apps.core.exceptions import ApplicationError
from apps.templates.rendering import TemplateRenderError
from apps.templates.sandbox import preview_processes_stop, preview_render
from tests.support.memory import peak_rss_bytes, peak_rss_reset, render_processes, rss_bytes
from tests.support.processes import REPO_ROOT, process_env, wait_until

# Each test starts render processes and waits on their limits: seconds apiece.
pytestmark = pytest.mark.slow

MB = 1024 * 1024
DOUBLINGS = 7


def doubled(times: int, then: str = "") -> str:
    return "{% with s=s|add:s %}" * times + "{{ s" + then + " }}" + "{% endwith %}" * times


@pytest.fixture(autouse=True)
def fresh_render_processes():
    """Render processes read their memory allowance when they start: each test starts its own."""
    preview_processes_stop()
    yield
    preview_processes_stop()


def test_a_preview_renders_in_a_render_process():
    assert render_processes() == set()

    rendered = preview_render(channels={"sms": {"text": "Hi {{ name }}"}}, data={"name": "Ada"})

    assert rendered == {"sms": {"text": "Hi Ada"}}
    assert len(render_processes()) == 1


def test_a_render_past_the_memory_allowance_ends_its_process_not_this_one(settings):
    # Caps this high let the template build what it likes: the render process's memory limit stops it.
    settings.NOTIFIER_TEMPLATE_MAX_RENDERED_BYTES = 1 << 40
    settings.NOTIFIER_TEMPLATE_PREVIEW_MEMORY_BYTES = 64 * MB
    preview_render(channels={"sms": {"text": "warm up"}}, data={})
    [first] = render_processes()
    peak_rss_reset()
    before = rss_bytes()

    with pytest.raises(TemplateRenderError, match="more memory than a preview may use") as raised:
        preview_render(channels={"sms": {"text": "ok"}, "email": {"subject": "Hi", "text": doubled(32)}},
                       data={"s": "x" * 1000})

    assert raised.value.path == "email.text"
    assert peak_rss_bytes() - before < 50 * MB  # this process built nothing
    assert preview_render(channels={"sms": {"text": "{{ n }}"}}, data={"n": 2}) == {"sms": {"text": "2"}}
    assert first not in render_processes()  # a fresh one took its place


def test_a_render_past_the_time_cap_is_killed(settings):
    # A 64 MB string walked character by character (truncatechars, seconds of CPU) in the
    # template's only filter call: no check of the budget runs inside it, and it cannot finish
    # before the 1 s cap plus the 2 s grace (a loaded machine only makes it slower), so only the
    # wall-clock kill ends it.
    settings.NOTIFIER_TEMPLATE_MAX_RENDERED_BYTES = 1 << 40
    settings.NOTIFIER_TEMPLATE_MAX_RENDER_SECONDS = 1
    settings.NOTIFIER_TEMPLATE_PREVIEW_MEMORY_BYTES = 1024 * MB
    preview_render(channels={"sms": {"text": "warm up"}}, data={})
    [first] = render_processes()

    started = time.monotonic()
    with pytest.raises(TemplateRenderError, match="longer than 1 second") as raised:
        preview_render(channels={"sms": {"text": "{{ s|truncatechars:999999999 }}"}}, data={"s": "x" * 64 * MB})

    assert raised.value.path == "sms"
    assert time.monotonic() - started < 1 + 2 + 7  # the cap, the grace, and a loaded machine's margin
    assert first not in render_processes()


def test_previews_at_once_share_a_bounded_number_of_render_processes(settings):
    settings.NOTIFIER_TEMPLATE_PREVIEW_PROCESSES = 2
    settings.NOTIFIER_TEMPLATE_PREVIEW_QUEUE_SECONDS = 120  # a loaded machine: they wait their turn
    seen: set[int] = set()
    results = []

    def preview(n: int):
        try:
            results.append(preview_render(channels={"sms": {"text": "{{ n }}"}}, data={"n": n}))
        except Exception as exc:  # shown by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=preview, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        seen |= render_processes()
        assert len(render_processes()) <= 2
        time.sleep(0.01)

    assert sorted(result["sms"]["text"] for result in results) == sorted(str(n) for n in range(12))
    assert 1 <= len(seen | render_processes()) <= 2


def test_a_preview_waits_for_a_free_render_process_then_is_a_503(settings):
    settings.NOTIFIER_TEMPLATE_PREVIEW_PROCESSES = 1
    settings.NOTIFIER_TEMPLATE_PREVIEW_QUEUE_SECONDS = 0.2
    settings.NOTIFIER_TEMPLATE_MAX_RENDER_SECONDS = 3
    spin = {"sms": {"text": "{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"}}
    outcomes = []

    def slow_preview():
        try:
            preview_render(channels=spin, data={"s": "x" * 10_000})
        except TemplateRenderError as exc:
            outcomes.append(str(exc))

    slow = threading.Thread(target=slow_preview)
    slow.start()
    time.sleep(1)  # it holds the only render process for its 3 s

    with pytest.raises(ApplicationError) as raised:
        preview_render(channels={"sms": {"text": "ok"}}, data={})
    slow.join()

    assert (raised.value.status_code, raised.value.code) == (503, "preview_busy")
    assert outcomes == ["Rendering took longer than 3 seconds."]


def test_render_processes_end_with_the_process_that_started_them(tmp_path):
    script = tmp_path / "previewer.py"
    script.write_text(
        "import django, sys, time\n"
        "django.setup()\n"
        "from apps.templates.sandbox import preview_render\n"
        "preview_render(channels={'sms': {'text': 'x'}}, data={})\n"
        "print('previewed', flush=True)\n"
        "time.sleep(120)\n"
    )
    previewer = subprocess.Popen([sys.executable, str(script)], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                 env=process_env(PYTHONPATH=str(REPO_ROOT)))
    try:
        assert previewer.stdout.readline() == b"previewed\n"
        [child] = render_processes(previewer.pid)

        previewer.kill()  # as the OOM killer or a deploy would: no chance to clean up
        previewer.wait()

        wait_until(lambda: not Path(f"/proc/{child}").exists() or b"Z" in _state(child), timeout=30,
                   message="the render process to exit")
    finally:
        previewer.kill()
        previewer.stdout.close()


def _state(pid: int) -> bytes:
    return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
