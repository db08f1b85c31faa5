"""Path converters that match only what the database can hold, so anything else is a plain 404.

`<str:...>` would take a NUL character (PostgreSQL refuses it in a query) or more characters than
the column holds (an upsert would overflow it): both were 500s. Importing this module registers the
converters; the urls modules that use them import it.
"""

from django.urls import register_converter
from django.urls.converters import StringConverter


class ExternalIdConverter(StringConverter):
    """A user's external id: Recipient.external_id is a varchar(200)."""

    regex = r"[^/\x00]{1,200}"


class TemplateKeyConverter(StringConverter):
    """A template key: Template.key is a slug of at most 100 characters."""

    regex = "[-a-zA-Z0-9_]{1,100}"


class DeviceTokenConverter(StringConverter):
    """A push device token: Device.token is a varchar(512)."""

    regex = r"[^/\x00]{1,512}"


register_converter(ExternalIdConverter, "external_id")
register_converter(TemplateKeyConverter, "template_key")
register_converter(DeviceTokenConverter, "device_token")
