"""A batch's templates rendered once per template version, channel and data.

A broadcast's or a bulk request's deliveries often share all three; their content is then
rendered once, and the email backend builds its bytes once too (email_mime.py). Same version and
data, same output: versions never change, and the data is all a template sees. Kept for one
batch only, so it holds at most a batch's contents.

What the pipeline gives each recipient's template itself (PIPELINE_VARIABLES: an email's
`preferences_url`) differs from one recipient to the next, so it is left out of the key: the
content is rendered once with a placeholder in its place, and each recipient's value is put
where the placeholder came out. That holds only if the template writes the value as it is;
so the first recipient's content is also rendered with the real value, and if putting the value
in the placeholder's place does not give the same text (a filter changed it, or autoescaping
did), every recipient of that content is rendered on its own. A template that does not use a
pipeline variable pays for neither its value nor a second render.
"""

import json
import secrets
from collections.abc import Callable

from apps.templates.rendering import TemplateRenderError
from apps.templates.services import template_version_render
from apps.templates.variables import PIPELINE_VARIABLES

_EACH_ON_ITS_OWN = object()  # the content's pipeline values cannot be put in: render per recipient


class BatchRenders:
    def __init__(self):
        self._rendered: dict[tuple, object] = {}
        self._uses: dict[tuple[int, str], frozenset[str]] = {}

    def render(self, *, version, channel: str, data: dict,
               pipeline_values: Callable[[frozenset[str]], dict] = lambda names: {}) -> dict:
        """The channel's parts rendered with `data` and this recipient's pipeline values
        (`pipeline_values(names)` gives those among `names`, called only for names the template
        uses and the data lacks). Raises TemplateRenderError as rendering does."""
        names = self._used(version, channel) - data.keys()
        key = (version.id, channel, json.dumps(data, sort_keys=True, separators=(",", ":")))
        cached = self._rendered.get(key)
        values = pipeline_values(names) if names else {}
        if cached is _EACH_ON_ITS_OWN:
            return template_version_render(version=version, channel=channel, data={**values, **data})
        if cached is not None:
            return _put_in(_raised(cached), values)
        placeholders = {name: f"notifier{secrets.token_hex(12)}" for name in values}
        try:
            templated = template_version_render(version=version, channel=channel, data={**placeholders, **data})
        except TemplateRenderError as exc:
            self._rendered[key] = exc if not values else _EACH_ON_ITS_OWN
            raise
        shared = (templated, placeholders)
        if not values:
            self._rendered[key] = shared
            return templated
        own = template_version_render(version=version, channel=channel, data={**values, **data})
        self._rendered[key] = shared if _put_in(shared, values) == own else _EACH_ON_ITS_OWN
        return own

    def _used(self, version, channel: str) -> frozenset[str]:
        """The pipeline's names that the version's parts for the channel mention at all."""
        key = (version.id, channel)
        if key not in self._uses:
            source = json.dumps(version.channels.get(channel, {}))
            self._uses[key] = frozenset(name for name in PIPELINE_VARIABLES.get(channel, ()) if name in source)
        return self._uses[key]


def _raised(cached):
    if isinstance(cached, TemplateRenderError):
        raise cached
    return cached


def _put_in(shared: tuple, values: dict) -> dict:
    templated, placeholders = shared
    if not placeholders:
        return templated
    return _replace(templated, {placeholders[name]: value for name, value in values.items()})


def _replace(value, replacements: dict[str, str]):
    if isinstance(value, str):
        for placeholder, replacement in replacements.items():
            value = value.replace(placeholder, replacement)
        return value
    if isinstance(value, dict):
        return {key: _replace(item, replacements) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace(item, replacements) for item in value]
    return value
