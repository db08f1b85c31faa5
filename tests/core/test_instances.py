"""instance_new: a new instance as Model(**kwargs) builds it, from the positional path."""

import pytest
from django.utils import timezone

from apps.core.instances import instance_new
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
