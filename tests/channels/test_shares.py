"""A project's share of the webhook workers: leases in a real Redis, shared by every worker."""

import random
import time

import pytest

from apps.channels.shares import project_send_lease
from apps.notifications.delivery.deferral import delivery_send_lease
from apps.notifications.models import DeliveryStatus
from tests.channels.test_webhook_backend import PARTS
from tests.notifications.factories import queued_delivery
from tests.support.processes import free_port
from tests.users.factories import RecipientFactory


@pytest.fixture
def shares(redis_for_run):
    redis_for_run.NOTIFIER_WEBHOOK_PROJECT_MAX_CONCURRENCY = 2
    return redis_for_run


def a_project_id() -> int:
    return random.randrange(10**9, 10**10)  # leases of earlier runs on this Redis never collide


def lease(project_id: int, channel: str = "webhook"):
    return project_send_lease(channel=channel, project_id=project_id)


def test_a_project_holds_at_most_its_share_and_others_are_not_affected(shares):
    busy, other = a_project_id(), a_project_id()
    with lease(busy) as first, lease(busy) as second:
        assert first and second
        with lease(busy) as third:
            assert third is False
        with lease(other) as elsewhere:
            assert elsewhere is True
    # Released: the share is free again.
    with lease(busy) as again, lease(busy) as and_again:
        assert again and and_again


def test_leases_of_a_killed_worker_expire(shares):
    shares.NOTIFIER_SEND_TIME_LIMIT_SECONDS = 1
    project_id = a_project_id()
    # Entered and never left: workers killed mid-send (kept referenced, so nothing releases them).
    never_released = [lease(project_id), lease(project_id)]
    assert all(held.__enter__() for held in never_released)
    with lease(project_id) as taken:
        assert taken is False
    time.sleep(1.5)
    with lease(project_id) as taken:
        assert taken is True
    assert len(never_released) == 2


def test_only_webhooks_are_bounded_and_only_with_redis(shares, settings):
    project_id = a_project_id()
    with lease(project_id), lease(project_id):
        with lease(project_id, channel="email") as email:
            assert email is True
    settings.REDIS_URL = ""
    with lease(project_id), lease(project_id), lease(project_id) as third:
        assert third is True


def test_webhooks_go_out_without_a_lease_while_redis_is_down(shares):
    shares.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    project_id = a_project_id()
    with lease(project_id), lease(project_id), lease(project_id) as third:
        assert third is True


@pytest.mark.django_db
def test_a_delivery_over_its_share_is_deferred_unclaimed_with_no_attempt_spent(shares):
    ada = RecipientFactory()
    delivery = queued_delivery(recipient=ada, channel="webhook", parts=PARTS)
    with lease(ada.project_id), lease(ada.project_id):
        for deferrals, longest in [(0, 1.0), (3, 8.0), (40, 30.0)]:
            with delivery_send_lease(delivery_id=str(delivery.id), deferrals=deferrals) as defer_by:
                assert longest / 2 <= defer_by <= longest
    with delivery_send_lease(delivery_id=str(delivery.id), deferrals=0) as defer_by:
        assert defer_by is None
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.QUEUED and delivery.attempt_count == 0
