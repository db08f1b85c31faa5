"""The operator-facing endpoints: health probes, metrics, the API schema and its docs."""

import pytest
import requests
from rest_framework.test import APIClient

from tests.support.processes import process_env, test_database_url, web_server

pytestmark = pytest.mark.django_db


def test_liveness():
    assert APIClient().get("/health/live").json() == {"status": "ok"}


def test_readiness_checks_the_database_and_the_broker(rabbitmq_vhost):
    response = APIClient().get("/health/ready")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.slow
def test_readiness_fails_when_the_broker_is_unreachable(tmp_path, django_db_blocker):
    with django_db_blocker.unblock():
        env = process_env(DATABASE_URL=test_database_url(), CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:1//")
    server, base_url = web_server(env, tmp_path)
    with server:
        response = requests.get(f"{base_url}/health/ready", timeout=30)
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "ok"
    # The exception text (hosts, ports, user names) is for the logs, not for whoever probes.
    assert response.json()["checks"]["broker"] == "unavailable"


def test_metrics_are_exposed_for_prometheus():
    APIClient().get("/health/live")
    body = APIClient().get("/metrics").content.decode()
    assert "django_http_requests_total_by_method_total" in body


def test_openapi_schema_documents_the_contract():
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    contract_paths = {
        "/api/v1/notifications": {"get", "post"},
        "/api/v1/notifications/{notification_id}": {"get"},
        "/api/v1/notifications/{notification_id}/cancel": {"post"},
        "/api/v1/users/{external_id}": {"get", "put", "delete"},
        "/api/v1/users/{external_id}/devices": {"post"},
        "/api/v1/users/{external_id}/devices/{token}": {"delete"},
        "/api/v1/users/{external_id}/token": {"post"},
        "/api/v1/users/{external_id}/preferences": {"get", "put"},
        "/api/v1/templates/{key}": {"get", "put"},
        "/api/v1/templates/{key}/preview": {"post"},
        "/api/v1/project": {"get", "patch"},
        "/api/v1/inbox": {"get"},
        "/api/v1/inbox/unread-count": {"get"},
        "/api/v1/inbox/read-all": {"post"},
        "/api/v1/inbox/stream": {"get"},
    }
    for path, methods in contract_paths.items():
        assert methods <= set(schema["paths"].get(path, {})), path

    send = schema["paths"]["/api/v1/notifications"]["post"]
    assert send["security"] == [{"ApiKey": []}]
    assert schema["components"]["securitySchemes"]["ApiKey"]["name"] == "Authorization"
    # The shared 422, or the operation's own carrying an example: the envelope either way.
    assert send["responses"]["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}
    assert send["responses"]["422"]["content"]["application/json"]["examples"]
    assert send["responses"]["413"] == {"$ref": "#/components/responses/Error413"}
    assert "413" not in schema["paths"]["/api/v1/notifications"]["get"]["responses"]
    assert schema["components"]["schemas"]["ErrorEnvelope"]["required"] == ["error"]
    assert schema["paths"]["/api/v1/inbox"]["get"]["security"] == [{"UserToken": []}]


def test_api_docs_page_serves_its_own_assets():
    page = APIClient().get("/api/docs/")
    assert page.status_code == 200
    assert "cdn." not in page.content.decode()
