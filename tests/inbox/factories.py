import factory

from apps.inbox.models import InboxMessage
from tests.users.factories import RecipientFactory

IN_APP_PARTS = {
    "title": "Hello {{ name }}",
    "body": "Your order {{ order }} shipped.",
    "url": "https://shop.example/o/{{ order }}",
}


class InboxMessageFactory(factory.django.DjangoModelFactory):
    """A message as if delivered earlier (no delivery row: the inbox outlives purged notifications)."""

    class Meta:
        model = InboxMessage

    recipient = factory.SubFactory(RecipientFactory)
    project = factory.LazyAttribute(lambda m: m.recipient.project)
    title = factory.Sequence(lambda n: f"Message {n}")
    body = "Something happened."
