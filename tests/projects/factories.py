import factory

from apps.projects.models import ApiKey, Project
from apps.projects.services import api_key_create


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"project-{n}")


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """An API key made by the real service; the raw key is on `.raw_key` (it is stored only hashed)."""

    class Meta:
        model = ApiKey

    project = factory.SubFactory(ProjectFactory)

    @classmethod
    def _create(cls, model_class, project, **kwargs):
        api_key, raw_key = api_key_create(project_name=project.name, name=kwargs.get("name", "test"))
        api_key.raw_key = raw_key
        return api_key
