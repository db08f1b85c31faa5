"""The intake's reads (users and the templates' newest versions) are SQL written once rather than
built by the ORM per call (apps/core/rows.py): what they load must be what the ORM loads."""

import datetime

import pytest

from apps.core.rows import where_in_together
from apps.templates.models import TemplateVersion
from apps.templates.selectors import TEMPLATE_VERSIONS_NEWEST, template_versions_newest
from apps.users.models import Device, Recipient
from apps.users.selectors import RECIPIENTS_FIND, recipients_find
from tests.projects.factories import ProjectFactory
from tests.templates.factories import TemplateFactory, TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def test_recipients_find_loads_users_as_the_orm_does_with_their_device_flag():
    project = ProjectFactory()
    reachable = RecipientFactory(
        project=project, locale="fr-CA", timezone="Europe/Paris", data={"plan": "pro", "n": [1, 2]},
        channel_preferences={"sms": False}, category_preferences={"marketing": {"email": False}},
        quiet_hours_start=datetime.time(22, 0), quiet_hours_end=datetime.time(7, 30),
    )
    Device.objects.create(recipient=reachable, token="t1", platform="android")
    stale = RecipientFactory(project=project)
    Device.objects.create(recipient=stale, token="t2", platform="ios", active=False)
    RecipientFactory(external_id="elsewhere")  # the same kind of id in another project

    found = recipients_find(project=project, external_ids=[reachable.external_id, stale.external_id,
                                                           reachable.external_id, "elsewhere", "nobody"])

    assert set(found) == {reachable.external_id, stale.external_id}
    for recipient in found.values():
        assert _fields(recipient) == _fields(Recipient.objects.get(pk=recipient.pk))
        assert recipient._state.adding is False and recipient._state.db == "default"
    assert found[reachable.external_id].quiet_hours_start == datetime.time(22, 0)
    assert found[reachable.external_id].category_preferences == {"marketing": {"email": False}}
    assert found[reachable.external_id].has_active_device is True
    assert found[stale.external_id].has_active_device is False
    assert recipients_find(project=project, external_ids=[]) == {}


def test_template_versions_newest_is_the_newest_per_locale_with_its_template():
    project = ProjectFactory()
    welcome = TemplateFactory(project=project, key="welcome")
    TemplateVersionFactory(template=welcome, version=1, locale="en")
    newest_en = TemplateVersionFactory(template=welcome, version=3, locale="en", variables={"email": ["name"]})
    newest_fr = TemplateVersionFactory(template=welcome, version=2, locale="fr")
    other = TemplateVersionFactory(template=TemplateFactory(project=project, key="other"), version=1)
    TemplateVersionFactory(template=TemplateFactory(key="welcome"), version=9)  # another project's

    newest = template_versions_newest(project=project, keys=["welcome", "other", "welcome", "missing"])

    assert {key: sorted(v.id for v in versions) for key, versions in newest.items()} == {
        "welcome": sorted([newest_en.id, newest_fr.id]), "other": [other.id]}
    for version in newest["welcome"]:
        assert _fields(version) == _fields(TemplateVersion.objects.get(pk=version.pk))
        assert _fields(version.template) == _fields(welcome)
    assert template_versions_newest(project=project, keys=[]) == {}


def test_the_users_and_template_versions_read_together_are_each_read_alone():
    project = ProjectFactory()
    ada = RecipientFactory(project=project, data={"plan": "pro"})
    Device.objects.create(recipient=ada, token="t1", platform="android")
    welcome = TemplateFactory(project=project, key="welcome")
    TemplateVersionFactory(template=welcome, version=1, locale="en")
    TemplateVersionFactory(template=welcome, version=2, locale="en", variables={"email": ["name"]})
    TemplateVersionFactory(template=welcome, version=3, locale="fr")

    def together(external_ids, keys):
        return where_in_together((RECIPIENTS_FIND, [project.pk], external_ids),
                                 (TEMPLATE_VERSIONS_NEWEST, [project.pk], keys))

    def same(read, alone):
        assert read.keys() == alone.keys()
        for key, found in read.items():
            expected = alone[key]
            if isinstance(found, list):
                assert [(_fields(v), _fields(v.template)) for v in found] == [
                    (_fields(v), _fields(v.template)) for v in expected]
            else:
                assert (_fields(found), found.has_active_device) == (_fields(expected), expected.has_active_device)

    for external_ids, keys in [([ada.external_id, "nobody"], ["welcome", "nope"]), (["nobody"], ["welcome"]),
                               ([ada.external_id], ["nope"]), ([], ["welcome"]), ([ada.external_id], []), ([], [])]:
        recipients, versions = together(external_ids, keys)
        same(recipients, recipients_find(project=project, external_ids=external_ids))
        same(versions, template_versions_newest(project=project, keys=keys))
    recipients, versions = together([ada.external_id], ["welcome"])
    assert recipients[ada.external_id].has_active_device is True
    assert sorted(v.version for v in versions["welcome"]) == [2, 3]
