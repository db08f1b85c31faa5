"""Bulk and broadcasts in the OpenAPI schema, with their serializers, and a schema with no warning."""

import yaml
from django.core.management import call_command


def test_bulk_and_broadcasts_are_documented_and_the_schema_validates_without_warnings(tmp_path):
    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    schema = yaml.safe_load(path.read_text())

    paths, components = schema["paths"], schema["components"]["schemas"]
    bulk = paths["/api/v1/notifications/bulk"]["post"]
    assert bulk["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/NotificationBulkRequest")
    assert components["NotificationBulkRequest"]["properties"]["notifications"]["maxItems"] == 1000
    assert "idempotency_key" in components["NotificationBulkItem"]["properties"]
    results = components["NotificationBulkResult"]["properties"]["results"]["items"]["oneOf"]
    assert {r["$ref"].rsplit("/", 1)[1] for r in results} == {"NotificationCreated", "ErrorEnvelope"}

    create = paths["/api/v1/broadcasts"]["post"]
    assert create["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/Broadcast")
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert components["BroadcastInput"]["properties"]["to"]["maxItems"] == 10_000
    assert set(components["BroadcastAudience"]["properties"]) == {"all", "locale", "has_channel"}
    assert {"get"} <= set(paths["/api/v1/broadcasts/{broadcast_id}"])
    assert {"post"} <= set(paths["/api/v1/broadcasts/{broadcast_id}/cancel"])
    assert components["BroadcastStatusEnum"]["enum"] == ["pending", "running", "completed", "cancelled", "failed"]
