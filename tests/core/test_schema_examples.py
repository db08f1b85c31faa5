"""Every operation of /api/schema/ shows what to send and what comes back: a request example for
each body it takes, a response example for each success answer with a body (and, for those
answering without one, an example of an error), and every example matches its own schema."""

import copy

import pytest
from jsonschema import Draft202012Validator

pytestmark = pytest.mark.django_db

METHODS = ("get", "put", "post", "patch", "delete")


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node and node["$ref"].startswith("#/components/responses/"):
        node = schema["components"]["responses"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _has_example(media: dict) -> bool:
    return bool(media.get("examples") or "example" in media)


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path} ({item[method].get('operationId', '?')})", item[method]


def test_every_operation_has_request_and_response_examples(schema):
    missing = []
    for name, operation in _operations(schema):
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            if not _has_example(media):
                missing.append(f"{name}: no request example for its {media_type} body")
        responses = {status: _resolve(schema, response) for status, response in operation.get("responses", {}).items()}
        for status, response in responses.items():
            if status.startswith("2"):
                for media_type, media in response.get("content", {}).items():
                    if not _has_example(media):
                        missing.append(f"{name}: no example of its {status} response ({media_type})")
        success_bodies = [r for status, r in responses.items() if status.startswith("2") and r.get("content")]
        if not success_bodies and not any(_has_example(media) for response in responses.values()
                                          for media in response.get("content", {}).values()):
            missing.append(f"{name}: no response example at all (its success has no body: show an error it gives)")

    assert not missing, "OpenAPI operations without examples:\n  " + "\n  ".join(missing)


def _json_schema(node):
    """OpenAPI 3.0's `nullable` as JSON Schema's null type; everything else as it is."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


def test_every_example_matches_its_schema(schema):
    components = _json_schema(copy.deepcopy(schema["components"]))
    wrong = []
    for name, operation in _operations(schema):
        bodies = [("request", operation.get("requestBody", {}))] + [
            (f"{status} response", _resolve(schema, response)) for status, response in operation.get("responses", {}).items()
        ]
        for where, body in bodies:
            for media_type, media in body.get("content", {}).items():
                validator = Draft202012Validator({**_json_schema(media.get("schema", {})), "components": components})
                for example_name, example in (media.get("examples") or {}).items():
                    for error in validator.iter_errors(example["value"]):
                        location = "/".join(map(str, error.absolute_path))
                        wrong.append(f"{name}: {where} example {example_name!r} ({media_type}) at "
                                     f"'{location}': {error.message}")

    assert not wrong, "OpenAPI examples that do not match their schema:\n  " + "\n  ".join(wrong)


def test_api_key_operations_document_the_429(schema):
    operation = schema["paths"]["/api/v1/notifications"]["post"]
    assert operation["responses"]["429"] == {"$ref": "#/components/responses/Error429"}
    assert "Retry-After" in schema["components"]["responses"]["Error429"]["headers"]
    assert "429" not in schema["paths"]["/api/v1/inbox"]["get"]["responses"]  # user tokens: not counted
