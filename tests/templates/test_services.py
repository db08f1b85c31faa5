"""What the worker relies on: a template that cannot render its data raises TemplateRenderError."""

import pytest

from apps.templates.rendering import TemplateRenderError
from apps.templates.services import template_version_render
from tests.templates.factories import TemplateVersionFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("parts", "data"),
    [
        ({"subject": "Hi", "text": "{{ n|divisibleby:d }}"}, {"n": 1, "d": 0}),
        ({"subject": "Hi", "text": "{{ s }}{{ s }}"}, {"s": "x" * 600_000}),
        # A version saved before ljust was taken out of the allowed filters.
        ({"subject": "Hi", "text": "{{ s|ljust:'300000000' }}"}, {"s": "x"}),
    ],
)
def test_a_part_that_cannot_render_raises_template_render_error(parts, data):
    version = TemplateVersionFactory(channels={"email": parts})

    with pytest.raises(TemplateRenderError) as raised:
        template_version_render(version=version, channel="email", data=data)

    assert raised.value.path == "text"
