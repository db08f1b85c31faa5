import factory

from apps.users.models import Recipient
from tests.projects.factories import ProjectFactory


class RecipientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Recipient

    project = factory.SubFactory(ProjectFactory)
    external_id = factory.Sequence(lambda n: f"user-{n}")
    email = factory.LazyAttribute(lambda r: f"{r.external_id}@example.com")
    name = factory.Faker("first_name")
