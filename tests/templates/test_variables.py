"""Which template a user's locale gets, pinned versions, and the variables a send must carry."""

import pytest

from apps.notifications.models import Notification
from apps.templates.locales import locale_chain
from apps.templates.models import Template, TemplateVersion
from apps.templates.variables import variables_required
from tests.users.factories import RecipientFactory

pytestmark = pytest.mark.django_db


def put(api, key, channels, **fields):
    response = api.put(f"/api/v1/templates/{key}", {"channels": channels, **fields}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def send(api, **body):
    return api.post("/api/v1/notifications", {"to": "ada", "template": "greeting", **body}, format="json")


def sent_version(response) -> int:
    assert response.status_code == 202, response.content
    return Notification.objects.get(id=response.json()["id"]).template_version.version


@pytest.mark.parametrize(("locale", "default", "chain"), [
    ("fr-CA", "en", ["fr-ca", "fr", "en"]),
    ("fr_CA", "en", ["fr-ca", "fr", "en"]),
    ("FR", "en-GB", ["fr", "en-gb", "en"]),
    ("", "en", ["en"]),
    ("en-US", "en", ["en-us", "en"]),
    ("zh-Hant-TW", "en", ["zh-hant-tw", "zh-hant", "zh", "en"]),
])
def test_the_locale_chain_goes_from_the_exact_locale_to_its_language_to_the_default(locale, default, chain):
    assert locale_chain(locale=locale, default_locale=default) == chain


@pytest.mark.parametrize(("user_locale", "expected"), [
    ("fr-CA", 2), ("fr_ca", 2), ("FR", 2), ("pt-BR", 3), ("pt", 1), ("de", 1), ("", 1),
])
def test_a_user_gets_the_most_specific_locale_the_template_has(api, project, user_locale, expected):
    RecipientFactory(project=project, external_id="ada", locale=user_locale)
    put(api, "greeting", {"email": {"subject": "Hello", "text": "en"}})  # v1, the project's default (en)
    put(api, "greeting", {"email": {"subject": "Bonjour", "text": "fr"}}, locale="fr")  # v2
    put(api, "greeting", {"email": {"subject": "Olá", "text": "pt-BR"}}, locale="pt-BR")  # v3

    assert sent_version(send(api)) == expected


def test_without_the_language_nor_the_default_the_newest_version_is_the_last_resort(api, project):
    RecipientFactory(project=project, external_id="ada", locale="de-AT")
    put(api, "greeting", {"email": {"subject": "Bonjour", "text": "fr"}}, locale="fr")
    put(api, "greeting", {"email": {"subject": "Hola", "text": "es"}}, locale="es")

    assert sent_version(send(api)) == 2


def test_preview_follows_the_same_chain(api):
    put(api, "greeting", {"email": {"subject": "Hello", "text": "en"}})
    put(api, "greeting", {"email": {"subject": "Bonjour", "text": "fr"}}, locale="fr")

    body = api.post("/api/v1/templates/greeting/preview", {"locale": "fr_CA"}, format="json").json()
    assert (body["version"], body["channels"]["email"]["subject"]) == (2, "Bonjour")


def test_a_send_can_pin_a_version_whatever_the_locale(api, project):
    RecipientFactory(project=project, external_id="ada", locale="fr")
    put(api, "greeting", {"email": {"subject": "Hello v1", "text": "x"}})
    put(api, "greeting", {"email": {"subject": "Hello v2", "text": "x"}})
    put(api, "greeting", {"email": {"subject": "Bonjour", "text": "x"}}, locale="fr")

    assert sent_version(send(api)) == 3
    assert sent_version(send(api, template_version=1)) == 1


def test_an_unknown_pinned_version_is_a_422_naming_it(api, project):
    RecipientFactory(project=project, external_id="ada")
    put(api, "greeting", {"email": {"subject": "Hello", "text": "x"}})

    response = send(api, template_version=7)

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_template_version"
    assert response.json()["error"]["details"] == {"template_version": 7}
    assert not Notification.objects.exists()


def test_variables_are_extracted_when_a_version_is_saved(api):
    body = put(api, "greeting", {
        "email": {"subject": "Hi {{ user.first_name }}",
                  "text": "{% if coupon %}Use {{ coupon }} {{ more }}{% endif %}{{ sign|default:'Team' }}"
                          "{% for item in items %}{{ item.name }} {{ forloop.counter }}{% endfor %}"},
        "sms": {"text": "{% with total=price %}{{ total }}{% endwith %}"},
        "webhook": {"event": "x", "nested": ["{{ deep }}", 3]},
    })
    assert body["variables"] == {"email": ["items", "user"], "sms": ["price"], "webhook": ["deep"]}
    assert TemplateVersion.objects.get().variables == body["variables"]


def test_a_loop_with_an_empty_clause_and_firstof_tolerate_missing_names():
    assert variables_required({"sms": {"text": "{% for i in items %}{{ i }}{% empty %}none{% endfor %}"
                                               "{% firstof a b 'x' %}{{ 'literal' }}{{ 3|add:n }}"}}) == {"sms": ["n"]}


def test_a_send_lacking_a_variable_is_a_422_naming_it(api, project):
    RecipientFactory(project=project, external_id="ada")
    put(api, "greeting", {"email": {"subject": "Hi {{ name }}", "text": "{{ user.plan }} {{ code }}"}})

    response = send(api, data={"code": "1", "user": {}})

    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "missing_variables"
    assert response.json()["error"]["details"] == {"missing_variables": ["name"]}
    assert sent_version(send(api, data={"name": "Ada", "code": "1", "user": {}})) == 1


def test_only_the_channels_sent_must_have_their_variables(api, project):
    RecipientFactory(project=project, external_id="ada")
    put(api, "greeting", {"email": {"subject": "Hi {{ name }}", "text": "x"},
                          "in_app": {"title": "Code", "body": "code {{ code }}"}})

    assert sent_version(send(api, channels=["in_app"], data={"code": "1"})) == 1
    assert send(api, data={"code": "1"}).json()["error"]["details"] == {"missing_variables": ["name"]}


def test_a_lenient_template_renders_missing_variables_empty(api, project):
    RecipientFactory(project=project, external_id="ada")
    put(api, "greeting", {"email": {"subject": "Hi {{ name }}", "text": "x"}}, strict_variables=False)
    assert api.get("/api/v1/templates/greeting").json()["strict_variables"] is False

    assert sent_version(send(api)) == 1
    # A later version without the field keeps the setting; with it, changes it.
    put(api, "greeting", {"email": {"subject": "Hi {{ name }}", "text": "y"}})
    assert sent_version(send(api)) == 2
    put(api, "greeting", {"email": {"subject": "Hi {{ name }}", "text": "z"}}, strict_variables=True)
    assert send(api).status_code == 422


def test_preview_reports_missing_variables(api):
    put(api, "greeting", {"email": {"subject": "Hi {{ name }}", "text": "{{ code }}"}})

    body = api.post("/api/v1/templates/greeting/preview", {"data": {"code": "9"}}, format="json").json()

    assert body["missing_variables"] == ["name"]
    assert body["channels"]["email"] == {"subject": "Hi ", "text": "9"}


def test_preview_of_a_pinned_version(api):
    put(api, "greeting", {"email": {"subject": "one", "text": "x"}})
    put(api, "greeting", {"email": {"subject": "two", "text": "x"}})

    assert api.post("/api/v1/templates/greeting/preview", {"template_version": 1},
                    format="json").json()["channels"]["email"]["subject"] == "one"
    response = api.post("/api/v1/templates/greeting/preview", {"template_version": 9}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (422, "unknown_template_version")


def test_broadcasts_check_pinned_versions_and_variables_at_acceptance(api, project):
    RecipientFactory(project=project, external_id="ada")
    put(api, "greeting", {"email": {"subject": "Hi {{ name }}", "text": "x"}})
    put(api, "greeting", {"email": {"subject": "Salut {{ prenom }}", "text": "x"}}, locale="fr")

    missing = api.post("/api/v1/broadcasts", {"template": "greeting", "to": ["ada"], "data": {"name": "A"}},
                       format="json")
    unknown = api.post("/api/v1/broadcasts", {"template": "greeting", "to": ["ada"], "template_version": 5},
                       format="json")
    pinned = api.post("/api/v1/broadcasts", {"template": "greeting", "to": ["ada"], "template_version": 1,
                                             "data": {"name": "A"}}, format="json")

    assert missing.json()["error"]["details"] == {"missing_variables": ["prenom"]}
    assert unknown.json()["error"]["code"] == "unknown_template_version"
    assert pinned.status_code == 202 and pinned.json()["template_version"] == 1


def test_the_migration_backfills_variables_and_keeps_old_templates_lenient(project):
    from importlib import import_module

    from django.apps import apps

    template = Template.objects.create(project=project, key="old")
    version = TemplateVersion.objects.create(template=template, version=1, locale="en",
                                             channels={"sms": {"text": "{{ code }}"}})
    import_module("apps.templates.migrations.0002_variables").backfill_variables(apps, None)

    version.refresh_from_db()
    template.refresh_from_db()
    assert version.variables == {"sms": ["code"]}
    assert template.strict_variables is False
