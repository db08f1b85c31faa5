"""The claim: which deliveries a worker takes, and what it has in hand without another query."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db.models import DateTimeField
from django.utils import timezone

from apps.notifications.delivery import claim
from apps.notifications.delivery.sending import deliveries_claim
from apps.notifications.models import Delivery, DeliveryStatus
from tests.notifications.factories import DeliveryFactory
from tests.projects.factories import ProjectFactory
from tests.templates.factories import TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db

# PostgreSQL claims in one statement; the ORM's two remain for SQLite (`make run`), so both are
# held to the same result here.
CLAIMS = {"one statement": claim._claimed_in_one_statement, "the ORM (SQLite)": claim._claimed_by_the_orm}


def deliveries_of_several_users_and_templates() -> list[Delivery]:
    project = ProjectFactory()
    version = TemplateVersionFactory(template__project=project, version=2, locale="fr")
    other_project = ProjectFactory()
    return [
        DeliveryFactory(notification__project=project, notification__template_version=version,
                        notification__recipient=RecipientFactory(project=project, email="ada@example.com")),
        DeliveryFactory(channel="sms", notification__project=project, notification__template_version=version,
                        notification__recipient=RecipientFactory(project=project, phone="+33600000000")),
        DeliveryFactory(notification__project=other_project, attempt_count=2, budget_attempts=1,
                        status=DeliveryStatus.RETRYING, next_attempt_at=timezone.now() - timedelta(seconds=5)),
        # The user was erased after the notification was accepted (SET_NULL): sending refuses it.
        DeliveryFactory(notification__project=project, notification__recipient=None, notification__to="gone"),
    ]


@pytest.mark.parametrize("claimed_by", CLAIMS.values(), ids=CLAIMS.keys())
def test_a_claim_loads_each_delivery_with_its_notification_user_project_and_template(
        claimed_by, django_assert_num_queries):
    deliveries = deliveries_of_several_users_and_templates()
    stored = {d.id: Delivery.objects.select_related(
        "notification__recipient", "notification__project", "notification__template",
        "notification__template_version").get(id=d.id) for d in deliveries}

    claimed = claimed_by([str(d.id) for d in deliveries])

    assert sorted(d.id for d in claimed) == sorted(stored)
    with django_assert_num_queries(0):
        for delivery in claimed:
            before, notification = stored[delivery.id], delivery.notification
            assert notification == before.notification and notification.data == before.notification.data
            assert notification.recipient == before.notification.recipient
            if notification.recipient is not None:
                assert notification.recipient.email == before.notification.recipient.email
            assert notification.project == before.notification.project
            assert notification.project.default_locale == before.notification.project.default_locale
            assert notification.template.key == before.notification.template.key
            assert notification.template_version.channels == before.notification.template_version.channels
            assert (delivery.status, delivery.attempt_count, delivery.budget_attempts) == (
                DeliveryStatus.SENDING, before.attempt_count + 1, before.budget_attempts + 1)
            assert delivery.recheck_at == delivery.status_changed_at + timedelta(
                seconds=settings.NOTIFIER_SENDING_TIMEOUT_SECONDS)
    assert {d.id: (d.status, d.attempt_count, d.status_changed_at, d.recheck_at) for d in claimed} == {
        d.id: (d.status, d.attempt_count, d.status_changed_at, d.recheck_at)
        for d in Delivery.objects.filter(id__in=stored)
    }


def test_a_claims_deliveries_share_the_project_template_and_version_they_have_in_common():
    # Built once a batch, not once a row (apps/core/rows.py, `load_rows`); each delivery still
    # gets its own notification, and a delivery of another project its own project.
    deliveries = deliveries_of_several_users_and_templates()

    claimed = {d.id: d.notification for d in claim._claimed_in_one_statement([str(d.id) for d in deliveries])}

    first, second, other_project, erased_user = (claimed[d.id] for d in deliveries)
    assert first.project is second.project is erased_user.project
    assert first.template_version is second.template_version and first.template is second.template
    assert other_project.project is not first.project and other_project.project.pk != first.project.pk
    assert other_project.template_version is not first.template_version
    assert first is not second and first.recipient is not second.recipient


@pytest.mark.parametrize("claimed_by", CLAIMS.values(), ids=CLAIMS.keys())
def test_a_claim_reads_every_time_as_the_orm_does(claimed_by):
    # The one statement loads its timestamps with psycopg's own loader, not Django's: the same
    # instants, aware, in the same time zone, whatever zone they were written in.
    paris = ZoneInfo("Europe/Paris")
    delivery = DeliveryFactory(notification__send_at=datetime(2026, 3, 29, 3, 30, tzinfo=paris),
                               notification__cap_counted_at=datetime(2026, 10, 25, 2, 30, 0, 123456, tzinfo=paris))
    related = ("notification", "notification__recipient", "notification__project", "notification__template",
               "notification__template_version")
    stored = Delivery.objects.select_related(*related[1:]).get(id=delivery.id)

    [claimed] = claimed_by([str(delivery.id)])

    compared = 0
    for path in ("", *related):
        instance, before = claimed, stored
        for name in filter(None, path.split("__")):
            instance, before = getattr(instance, name), getattr(before, name)
        for field in instance._meta.concrete_fields:
            if isinstance(field, DateTimeField) and getattr(before, field.attname) is not None:
                value, expected = getattr(instance, field.attname), getattr(before, field.attname)
                if path == "" and field.name in ("status_changed_at", "recheck_at"):
                    expected = getattr(Delivery.objects.get(id=delivery.id), field.attname)  # the claim's
                assert (value, value.tzinfo) == (expected, expected.tzinfo), f"{path or 'delivery'}.{field.name}"
                compared += 1
    assert compared >= 8


def test_a_claim_of_several_deliveries_is_one_statement(django_assert_num_queries):
    deliveries = deliveries_of_several_users_and_templates()

    with django_assert_num_queries(1):
        claimed, _ = deliveries_claim(delivery_ids=[str(d.id) for d in deliveries])

    assert len(claimed) == len(deliveries)


@pytest.mark.parametrize("claimed_by", CLAIMS.values(), ids=CLAIMS.keys())
def test_a_claim_takes_only_what_is_queued_or_due(claimed_by):
    claimable = [DeliveryFactory(), DeliveryFactory(status=DeliveryStatus.RETRYING, next_attempt_at=None),
                 # A countdown message may arrive a little early by the database's clock.
                 DeliveryFactory(status=DeliveryStatus.RETRYING, next_attempt_at=timezone.now() + timedelta(seconds=0.5))]
    not_due = DeliveryFactory(status=DeliveryStatus.RETRYING, next_attempt_at=timezone.now() + timedelta(minutes=1))
    taken = DeliveryFactory(status=DeliveryStatus.SENDING, attempt_count=1)
    sent = DeliveryFactory(status=DeliveryStatus.SENT, attempt_count=1)
    others = [not_due, taken, sent]

    claimed = claimed_by([str(d.id) for d in [*claimable, *others]])

    assert sorted(d.id for d in claimed) == sorted(d.id for d in claimable)
    for delivery in others:
        unchanged = Delivery.objects.get(id=delivery.id)
        assert (unchanged.status, unchanged.attempt_count) == (delivery.status, delivery.attempt_count)
    assert claimed_by([str(d.id) for d in claimable]) == []  # a second message for them takes nothing


def test_the_batch_clock_starts_at_the_claim_by_the_database_time():
    delivery = DeliveryFactory(status_changed_at=timezone.now() - timedelta(hours=1))

    claimed, clock = deliveries_claim(delivery_ids=[str(delivery.id)])

    assert clock.now() - claimed[0].status_changed_at < timedelta(seconds=5)
    assert deliveries_claim(delivery_ids=[]) == ([], None)
