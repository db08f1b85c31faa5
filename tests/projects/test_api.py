"""GET|PATCH /api/v1/project: what a key holder may change about its own project.

The addresses here are only judged when set; nothing connects to them.
"""

import pytest

from apps.core.egress import ADDRESS_NOT_ALLOWED_MESSAGE
from apps.core.models import OperatorAuditEntry
from tests.fakes.dns import FakeDns
from tests.projects.factories import ProjectFactory

pytestmark = pytest.mark.django_db

PUBLIC = "93.184.215.14"

FORBIDDEN_URLS = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",  # cloud metadata
    "http://[fd00:ec2::254]/latest/meta-data/",  # its IPv6 address
    "http://127.0.0.1:5432",
    "http://localhost:6379/",
    "http://[::1]:8000/admin/",
    "http://10.0.0.5/admin",
    "http://172.16.0.10:15672/api/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://0.0.0.0:8000/",
    "http://[::ffff:10.0.0.5]/",
    "http://internal.example/hooks",  # a name for an internal address
    "http://mixed.example/hooks",  # one public and one internal address
    "https://nowhere.invalid/hooks",  # does not resolve
]


@pytest.fixture
def dns(monkeypatch):
    fake = FakeDns.install(monkeypatch)
    fake.answer("hooks.example", [PUBLIC])
    fake.answer("internal.example", ["10.1.2.3"])
    fake.answer("mixed.example", [PUBLIC, "10.1.2.3"])
    return fake


@pytest.fixture
def production_egress(settings):
    """The default outside tests and dev: public addresses only (the test settings allow 127.0.0.1)."""
    settings.NOTIFIER_WEBHOOK_ALLOWED_NETWORKS = []


@pytest.mark.parametrize("field", ["webhook_url", "status_webhook_url"])
@pytest.mark.parametrize("url", FORBIDDEN_URLS)
def test_an_internal_or_unresolvable_address_is_refused(api, project, dns, production_egress, field, url):
    response = api.patch("/api/v1/project", {field: url}, format="json")

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid", "message": "The request has invalid fields.", "details": {field: [ADDRESS_NOT_ALLOWED_MESSAGE]},
    }
    project.refresh_from_db()
    assert getattr(project, field) == ""


def test_only_http_and_https_are_accepted(api, dns):
    response = api.patch("/api/v1/project", {"webhook_url": "ftp://hooks.example/n"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"webhook_url": ["Use an http:// or https:// URL."]}


def test_nothing_is_changed_when_one_url_is_refused(api, project, dns, production_egress):
    response = api.patch("/api/v1/project", {"webhook_url": "https://hooks.example/n", "default_locale": "fr",
                                             "status_webhook_url": "http://10.0.0.5/status"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == ["status_webhook_url"]
    project.refresh_from_db()
    assert (project.webhook_url, project.default_locale) == ("", "en")


def test_public_addresses_are_accepted(api, dns, production_egress):
    urls = {"webhook_url": "https://hooks.example/notifier", "status_webhook_url": f"http://{PUBLIC}:8080/status"}

    response = api.patch("/api/v1/project", {**urls, "webhook_secret": "whsec-long-enough"}, format="json")

    assert response.status_code == 200, response.json()
    assert {field: api.get("/api/v1/project").json()[field] for field in urls} == urls


def test_networks_the_operator_allowed_are_accepted(api, dns, settings):
    settings.NOTIFIER_WEBHOOK_ALLOWED_NETWORKS = ["10.0.0.0/8"]

    response = api.patch("/api/v1/project", {"webhook_url": "http://10.0.0.5/hooks"}, format="json")

    assert response.status_code == 200
    assert response.json()["webhook_url"] == "http://10.0.0.5/hooks"
    # Only those: the rest of the internal addresses stay refused.
    assert api.patch("/api/v1/project", {"webhook_url": "http://192.168.1.1/"}, format="json").status_code == 400


def test_a_url_can_be_cleared(api, project, dns):
    project.webhook_url = "https://hooks.example/n"
    project.save()

    response = api.patch("/api/v1/project", {"webhook_url": ""}, format="json")

    assert response.status_code == 200 and response.json()["webhook_url"] == ""


@pytest.mark.parametrize("taken", [True, False])
def test_the_name_cannot_be_changed_and_the_answer_says_nothing_about_other_projects(api, project, taken):
    if taken:
        ProjectFactory(name="another-tenant")

    response = api.patch("/api/v1/project", {"name": "another-tenant"}, format="json")

    # The same answer whether or not the name belongs to another project.
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid", "message": "The request has invalid fields.",
        "details": {"name": ["cannot be changed through the API"]},
    }
    project.refresh_from_db()
    assert project.name != "another-tenant"


def test_sending_back_the_current_name_is_accepted(api, project):
    """A client may PATCH back what it read with GET."""
    body = api.get("/api/v1/project").json()

    response = api.patch("/api/v1/project", {**body, "default_locale": "de"}, format="json")

    assert response.status_code == 200
    assert response.json() == {**body, "default_locale": "de"}


def test_a_status_webhook_url_needs_the_secret_that_signs_its_posts(api, project, dns):
    url = "https://hooks.example/status"

    refused = api.patch("/api/v1/project", {"status_webhook_url": url}, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"]["details"] == {
        "status_webhook_url": ["Set webhook_secret as well: status webhooks are signed with it."]}
    project.refresh_from_db()
    assert project.status_webhook_url == ""

    assert api.patch("/api/v1/project", {"webhook_secret": "whsec-long-enough"}, format="json").status_code == 200
    assert api.patch("/api/v1/project", {"status_webhook_url": url}, format="json").json()["status_webhook_url"] == url


def test_a_change_through_the_api_is_audited_with_the_key_and_without_the_secret(api, api_key, project):
    api.patch("/api/v1/project", {"webhook_url": "http://127.0.0.1:9/hooks", "webhook_secret": "s3cret-value",
                                  "default_locale": project.default_locale}, format="json")

    entry = OperatorAuditEntry.objects.get(action="project.update")
    assert entry.actor_label == f"api_key:{api_key.prefix}"
    # The locale sent unchanged is not a change; the secret's value is never recorded.
    assert entry.details["changes"] == {"webhook_url": {"old": "", "new": "http://127.0.0.1:9/hooks"},
                                        "webhook_secret": "(changed)"}
    assert "s3cret-value" not in str(entry.details)
