"""Property-based tests generated from our own OpenAPI schema (schemathesis) against a real web
process: on every operation, no input yields a 5xx, and every response conforms to the schema
(a documented status code, a body of the documented shape, the documented content type).

The seed is fixed by default so a run can be repeated; NOTIFIER_FUZZ_SEED picks another, and
NOTIFIER_FUZZ_EXAMPLES changes how many inputs each operation gets. The seed is printed (run with
`-s`, or read it in the failure report) so that a failure can be reproduced.
"""

import os

import pytest
import requests
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from apps.core.schema import add_error_envelope_and_stream
from apps.inbox.tokens import inbox_token_issue
from tests.projects.factories import ApiKeyFactory
from tests.templates.factories import TemplateVersionFactory
from tests.users.factories import RecipientFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SEED = int(os.environ.get("NOTIFIER_FUZZ_SEED", "20261130"))
# Bounded so the whole schema (every operation) runs in about two minutes on a loaded machine.
MAX_EXAMPLES = int(os.environ.get("NOTIFIER_FUZZ_EXAMPLES", "30"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# The stream never ends by itself: it is called (authentication, parameters, status, content
# type), and its body is read only when it is an error.
STREAM_PATH = "/api/v1/inbox/stream"


def _operation_labels() -> list[str]:
    """Every operation of the schema, read in-process so that each gets its own test id; the test
    itself fuzzes the schema the web process serves."""
    schema = add_error_envelope_and_stream(SchemaGenerator().get_schema(request=None, public=True), None, None, True)
    return [f"{method.upper()} {path}" for path, operations in schema["paths"].items() for method in operations
            if path.startswith("/api/v1/")]


@pytest.fixture(scope="module")
def served_schema(web):
    config = schemathesis.Config.from_dict({"base-url": web, "request-timeout": 10})
    return schemathesis.openapi.from_url(f"{web}/api/schema/", config=config)


@pytest.fixture
def credentials(db):
    """A project with a user, a template and the user's inbox token: ids the fuzzer may hit."""
    api_key = ApiKeyFactory()
    recipient = RecipientFactory(project=api_key.project, external_id="ada", email="ada@example.com")
    TemplateVersionFactory(template__project=api_key.project, template__key="welcome")
    token, _ = inbox_token_issue(recipient=recipient)
    return {"api_key": api_key.raw_key, "user_token": token}


@pytest.mark.timeout(600)  # about two minutes of generated requests per operation set
@pytest.mark.parametrize("label", _operation_labels())
def test_no_input_breaks_the_api_or_its_schema(served_schema, credentials, label):
    print(f"\nschema fuzzing {label}: NOTIFIER_FUZZ_SEED={SEED} NOTIFIER_FUZZ_EXAMPLES={MAX_EXAMPLES}")
    operation = served_schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the schema the web process serves"
    if operation.path.startswith("/api/v1/inbox"):
        headers = {"Authorization": f"Bearer {credentials['user_token']}"}
    else:
        headers = {"Authorization": f"Api-Key {credentials['api_key']}"}
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))

    @seed(SEED)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(case=cases)
    def fuzz(case):
        if operation.path == STREAM_PATH:
            response = requests.request(**case.as_transport_kwargs(headers=headers), stream=True, timeout=10)
            try:
                if response.status_code == 200:
                    assert response.headers["Content-Type"].startswith("text/event-stream")
                    return
                case.validate_response(response, checks=CHECKS)
            finally:
                response.close()
            return
        case.call_and_validate(headers=headers, checks=CHECKS)

    fuzz()
