"""instance_new: a new instance as Model(**kwargs) builds it, from the positional path; instance_positional:
a row read as Model.from_db makes it."""

import pytest
from django.db.models.signals import post_init
from django.utils import timezone

from apps.core.instances import instance_new, instance_positional
from apps.notifications.models import Delivery, DeliveryStatus, Notification
from tests.notifications.factories import NotificationFactory

pytestmark = pytest.mark.django_db


def fields_of(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields if not f.primary_key}


def test_the_instance_holds_what_the_constructor_would_and_its_related_rows_cost_no_query(django_assert_num_queries):
    like = NotificationFactory()
    values = {"project": like.project, "recipient": like.recipient, "to": "ada", "template": like.template,
              "template_version": like.template_version, "data": {"name": "Ada"}, "broadcast": None}

    built, expected = instance_new(Notification, **values), Notification(**values)

    assert fields_of(built) == fields_of(expected)
    assert built.id is not None and built.id != expected.id  # the key's default is called for each
    assert built._state.adding
    with django_assert_num_queries(0):
        assert built.recipient is like.recipient and built.template_version is like.template_version
        assert built.broadcast is None


def test_a_related_row_by_its_attname_and_defaults_left_out():
    notification = NotificationFactory()
    now = timezone.now()

    delivery = instance_new(Delivery, notification_id=notification.id, channel="email", status_changed_at=now)

    assert delivery.notification_id == notification.id and delivery.status == DeliveryStatus.QUEUED
    assert delivery.attempt_count == 0 and delivery.skip_reason == "" and delivery.sent_at is None


def test_what_the_constructor_refuses_it_refuses_alike():
    with pytest.raises(TypeError):
        instance_new(Delivery, channel="email", colour="blue")
    unsaved = Notification(id=None)
    with pytest.raises(ValueError):
        instance_new(Delivery, notification=unsaved, channel="email").save()


def test_a_row_becomes_what_from_db_makes_and_a_post_init_receiver_still_hears_of_it():
    notification = NotificationFactory()
    attnames = [field.attname for field in Notification._meta.concrete_fields]
    row = [getattr(notification, attname) for attname in attnames]

    built, expected = instance_positional(Notification, list(row), db="default"), Notification.from_db(
        "default", attnames, list(row))

    assert fields_of(built) == fields_of(expected) and built.id == expected.id
    assert (built._state.adding, built._state.db) == (False, "default")
    built.save(update_fields=["to"])  # an instance read from the database saves as an UPDATE
    heard = []

    def receiver(sender, instance, **kwargs):
        heard.append(instance)

    post_init.connect(receiver, sender=Notification)
    try:
        again = instance_positional(Notification, list(row), db="default")
    finally:
        post_init.disconnect(receiver, sender=Notification)
    assert len(heard) == 1 and heard[0] is again
