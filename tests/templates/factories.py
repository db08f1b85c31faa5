import factory

from apps.templates.models import Template, TemplateVersion
from tests.projects.factories import ProjectFactory

EMAIL_PARTS = {
    "subject": "Hello {{ name }}",
    "text": "Hi {{ name }}, your code is {{ code }}.",
    "html": "<p>Hi {{ name }}, your code is <b>{{ code }}</b>.</p>",
}


class TemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Template

    project = factory.SubFactory(ProjectFactory)
    key = factory.Sequence(lambda n: f"template-{n}")


class TemplateVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TemplateVersion

    template = factory.SubFactory(TemplateFactory)
    version = factory.Sequence(lambda n: n + 1)
    locale = "en"
    channels = factory.LazyFunction(lambda: {"email": dict(EMAIL_PARTS)})
