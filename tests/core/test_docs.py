"""The documentation stands alone and keeps up with the code: every operation of the OpenAPI
schema is in docs/api.md, every environment variable the settings read is in docs/operations.md,
the README links the docs, and no file points at a document outside the repository."""

import re
from pathlib import Path

import pytest
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("docs/api.md", "docs/operations.md", "docs/architecture.md")
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
# Files of the team's own workspace, which a user of the project cannot read (spelled in pieces
# so this file does not name them itself).
OUTSIDE_DOCUMENTS = ("CONTRACT" + ".md", "../" + "shared/", "STYLE" + ".md", "CELERY-RABBITMQ-" + "TRAPS")
SKIPPED_FOLDERS = {".git", ".venv", "var", "node_modules", "__pycache__", ".pytest_cache"}


def read(relative: str) -> str:
    return (ROOT / relative).read_text()


@pytest.mark.django_db
def test_every_operation_of_the_schema_is_in_the_api_docs():
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = {
        f"`{method.upper()} {path}`"
        for path, item in schema["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    api_docs = read("docs/api.md")

    assert len(operations) > 20
    assert sorted(operation for operation in operations if operation not in api_docs) == []


def test_every_environment_variable_the_settings_read_is_in_the_operations_docs():
    source = "\n".join(path.read_text() for path in sorted((ROOT / "notifier" / "settings").glob("*.py")))
    names = set(re.findall(r"""\benv(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]+)["']""", source)) - {"NOTIFIER_TEST_RUN"}
    operations = read("docs/operations.md")

    assert len(names) > 50
    assert sorted(name for name in names if f"`{name}`" not in operations) == []


def test_the_readme_links_every_doc():
    readme = read("README.md")
    for doc in DOCS:
        assert (ROOT / doc).is_file(), doc
        assert f"]({doc})" in readme, doc


def test_no_file_cites_a_document_outside_the_repository():
    citing = []
    for path in ROOT.rglob("*"):
        if SKIPPED_FOLDERS & set(path.relative_to(ROOT).parts) or not path.is_file():
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue  # binary files cite nothing
        citing += [f"{path.relative_to(ROOT)}: {name}" for name in OUTSIDE_DOCUMENTS if name in text]
    assert citing == []
