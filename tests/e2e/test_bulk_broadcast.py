"""Bulk and broadcasts through the real processes: web, a Celery worker, beat, SMTP.

The fan-out's own guarantees are shown in worker processes of their own, consuming a queue
nobody else reads (NOTIFIER_BROADCAST_QUEUE), so the session's worker cannot take the task:
memory stays flat in the number of users, and a worker SIGKILLed mid-fan-out loses and
duplicates no one.
"""

from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from apps.notifications.intake.broadcasts import broadcast_create
from apps.notifications.models import Broadcast, Notification
from apps.users.models import Recipient
from tests.e2e.conftest import notification_when_final
from tests.support.processes import celery_worker, wait_until
from tests.templates.factories import TemplateVersionFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EMAIL = {"channels": {"email": {"subject": "News {{ n }}", "text": "Hello"}}}


def users_create(project, count: int, *, prefix: str, locale: str = "en") -> None:
    Recipient.objects.bulk_create(
        [Recipient(project=project, external_id=f"{prefix}{n}", email=f"{prefix}{n}@example.com", locale=locale)
         for n in range(count)],
        batch_size=5000,
    )


def broadcast_when_final(http, broadcast_id: str, timeout: float = 60) -> dict:
    def final():
        body = http.get(f"/api/v1/broadcasts/{broadcast_id}").json()
        return body if body["status"] not in ("pending", "running") else None

    return wait_until(final, timeout=timeout, interval=0.5, message=f"broadcast {broadcast_id} to finish")


def test_a_bulk_requests_items_are_each_sent_once(http, worker, smtp, project):
    assert http.put("/api/v1/templates/news", json=EMAIL).status_code == 201
    users_create(project, 25, prefix="b")

    response = http.post("/api/v1/notifications/bulk", json={"notifications": [
        *({"to": f"b{n}", "template": "news", "data": {"n": n}, "idempotency_key": f"k{n}"} for n in range(25)),
        {"to": "nobody", "template": "news"},
    ]})

    assert response.status_code == 200, response.text
    *accepted, refused = response.json()["results"]
    assert refused["error"]["code"] == "unknown_user"
    statuses = [notification_when_final(http, result["id"])["status"] for result in accepted]
    assert statuses == ["sent"] * 25
    assert sorted(m["To"] for m in smtp.messages) == sorted(f"b{n}@example.com" for n in range(25))


def test_a_broadcast_is_followed_to_the_end_and_every_user_gets_it_once(http, worker, smtp, project):
    assert http.put("/api/v1/templates/news", json=EMAIL).status_code == 201
    users_create(project, 30, prefix="fr", locale="fr")
    users_create(project, 5, prefix="en")

    response = http.post("/api/v1/broadcasts", json={"template": "news", "data": {"n": 1}, "audience": {"locale": "fr"}},
                         headers={"Idempotency-Key": "autumn"})
    assert response.status_code == 202, response.text

    broadcast = broadcast_when_final(http, response.json()["id"])
    assert (broadcast["status"], broadcast["total"], broadcast["created"], broadcast["skipped"]) == (
        "completed", 30, 30, 0)
    wait_until(lambda: len(smtp.messages) >= 30, timeout=60, message="30 emails")
    assert sorted(m["To"] for m in smtp.messages) == sorted(f"fr{n}@example.com" for n in range(30))
    again = http.post("/api/v1/broadcasts", json={"template": "news", "data": {"n": 1}, "audience": {"locale": "fr"}},
                      headers={"Idempotency-Key": "autumn"})
    assert again.json()["id"] == broadcast["id"]


@pytest.mark.timeout(120)  # waits for beat to notice a stale fan-out, then up to 60 s
def test_a_fan_out_whose_message_was_lost_is_resumed_by_beat(http, worker, beat, smtp, project):
    template = TemplateVersionFactory(template__project=project, template__key="news", channels=EMAIL["channels"])
    users_create(project, 3, prefix="lost")
    # A broadcast whose publish never happened, silent for longer than the stale period.
    lost = Broadcast.objects.create(project=project, template=template.template, audience={"all": True},
                                    heartbeat_at=timezone.now() - timedelta(minutes=10))

    assert broadcast_when_final(http, str(lost.id), timeout=60)["created"] == 3


# --- The fan-out in a worker of its own ------------------------------------------------------------

MEASURED_QUEUE = "notifications.broadcast.measured"


@pytest.fixture
def fan_out_worker(e2e_env, process_logs, settings):
    """A worker consuming only MEASURED_QUEUE, in one process (solo pool) whose memory can be read."""
    settings.NOTIFIER_BROADCAST_QUEUE = MEASURED_QUEUE
    env = {**e2e_env, "NOTIFIER_BROADCAST_QUEUE": MEASURED_QUEUE}

    def start():
        worker = celery_worker(env, process_logs, concurrency=1, queues=MEASURED_QUEUE)
        worker.args.append("--pool=solo")
        return worker.start()

    started = []
    yield lambda: started.append(start()) or started[-1]
    for worker in started:
        worker.stop()


def peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def broadcast_later(project, template_key: str, **audience) -> Broadcast:
    """A broadcast whose deliveries wait for tomorrow: the fan-out does all its work, and nothing
    is published to the channel queues the session's worker would send from."""
    broadcast, _ = broadcast_create(project=project, template_key=template_key, data={"n": 1},
                                    send_at=timezone.now() + timedelta(days=1), audience=audience)
    return broadcast


def finished(broadcast_id, timeout: float) -> Broadcast:
    return wait_until(lambda: (b := Broadcast.objects.get(id=broadcast_id)).status == "completed" and b,
                      timeout=timeout, interval=0.5, message="the fan-out to complete")


@pytest.mark.timeout(600)  # 22,000 users made, then fan-outs of up to 300 s
def test_fan_out_memory_stays_flat_from_2000_to_20000_users(project, fan_out_worker):
    TemplateVersionFactory(template__project=project, template__key="news", channels=EMAIL["channels"])
    users_create(project, 2_000, prefix="small", locale="sm")
    users_create(project, 20_000, prefix="large", locale="lg")
    worker = fan_out_worker()

    small = finished(broadcast_later(project, "news", locale="sm").id, timeout=120)
    after_small = peak_rss_kib(worker.process.pid)
    large = finished(broadcast_later(project, "news", locale="lg").id, timeout=300)
    after_large = peak_rss_kib(worker.process.pid)

    assert (small.created, large.created) == (2_000, 20_000)
    growth_mib = (after_large - after_small) / 1024
    print(f"fan-out worker peak RSS: {after_small / 1024:.0f} MiB after 2,000 users, "
          f"{after_large / 1024:.0f} MiB after 20,000 more (+{growth_mib:.1f} MiB)")
    # One batch of 1,000 users with their notifications and deliveries is a few MiB, and the
    # 2,000-user run already held one; holding all 20,000 at once takes ~10 times more.
    assert growth_mib < 16


@pytest.mark.timeout(600)  # 12,000 users made, a fan-out of up to 300 s
def test_a_fan_out_killed_mid_way_resumes_and_notifies_each_user_once(project, fan_out_worker):
    TemplateVersionFactory(template__project=project, template__key="news", channels=EMAIL["channels"])
    users_create(project, 12_000, prefix="k")
    first = fan_out_worker()
    broadcast = broadcast_later(project, "news", all=True)
    wait_until(lambda: Broadcast.objects.get(id=broadcast.id).created >= 2_000, timeout=120, interval=0.05,
               message="a few batches")

    first.kill()  # SIGKILL, mid-batch most likely: its message was not acknowledged
    first.process.wait(timeout=10)
    partial = Broadcast.objects.get(id=broadcast.id)
    assert partial.status == "running" and partial.created < 12_000
    fan_out_worker()  # the message comes back to the next worker on the queue

    done = finished(broadcast.id, timeout=300)
    assert (done.total, done.created, done.skipped, done.failed) == (12_000, 12_000, 0, 0)
    per_user = Notification.objects.filter(broadcast=done).values("recipient").annotate(n=Count("id"))
    assert per_user.count() == 12_000 and not per_user.filter(n__gt=1).exists()
