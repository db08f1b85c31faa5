"""The documentation stands alone, keeps up with the code, and says each fact in one place.

The README is an overview: at most 200 lines, naming none of the product's own environment
variables, and linking every document of docs/. Each kind of fact has one home, checked against the
code itself rather than a list kept here: every error code the code can answer, and every code it
records on a delivery, is in docs/api.md; every operation of the OpenAPI schema is in docs/api.md;
every environment variable the settings and apps read is in docs/operations.md. The codes and
names are read from the source wherever they live (the whole of apps/ and notifier/), so moving a
module or adding a settings file changes nothing here. No link points at a missing file, no module
the docs name is missing, and no file points at a document outside the repository."""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import environ
import pytest
from rest_framework import exceptions as drf_exceptions
from rest_framework.settings import api_settings
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parents[2]
SOURCE_FOLDERS = ("apps", "notifier")
README_MAX_LINES = 200
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
# Files of the team's own workspace, which a user of the project cannot read (spelled in pieces
# so this file does not name them itself).
OUTSIDE_DOCUMENTS = ("CONTRACT" + ".md", "../" + "shared/", "STYLE" + ".md", "CELERY-RABBITMQ-" + "TRAPS")
SKIPPED_FOLDERS = {".git", ".venv", "var", "node_modules", "__pycache__", ".pytest_cache"}
# Keyword arguments that carry an error code: ApplicationError(code=…), ProviderError(…, code=…),
# and the delivery and attempt rows' error columns written directly (worker_lost, not_consumed).
ERROR_CODE_KEYWORDS = {"code", "error_code", "last_error_code"}
# django-environ's readers: `env.int(…)` reads the environment, a dict named env does not.
ENVIRON_READERS = {name for name in dir(environ.Env) if not name.startswith("_")}
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCED_BLOCK = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
SOURCE_PATH = re.compile(r"\b(?:apps|notifier|tests|bench)/[\w/.-]*\.py\b")
TEST_FILE_NAME = re.compile(r"(?<![\w/])test_\w+\.py\b")  # `test_sweep.py`, named without its folder


def read(relative: str) -> str:
    return (ROOT / relative).read_text()


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def python_modules() -> Iterator[tuple[Path, ast.Module]]:
    """Every module of the product's code, migrations left out (they replay history, not behaviour)."""
    for folder in SOURCE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" in path.parts or "__pycache__" in path.parts:
                continue
            yield path, ast.parse(path.read_text(), filename=str(path))


def called_name(call: ast.Call) -> str:
    function = call.func
    return function.id if isinstance(function, ast.Name) else function.attr if isinstance(function, ast.Attribute) else ""


def string_values(node: ast.expr) -> set[str]:
    """The literal strings an expression can evaluate to: a constant, or either branch of a
    conditional (`codes.pop() if … else "all_devices_failed"`); computed values are not codes we own."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value} if node.value else set()
    if isinstance(node, ast.IfExp):
        return string_values(node.body) | string_values(node.orelse)
    if isinstance(node, ast.BoolOp):
        return set().union(*(string_values(value) for value in node.values))
    return set()


def takes_code_first(function: ast.FunctionDef) -> bool:
    parameters = [argument.arg for argument in function.args.args if argument.arg not in {"self", "cls"}]
    return parameters[:1] == ["code"]


def callables_taking_code_first(modules: list[ast.Module]) -> set[str]:
    """Functions and classes whose first argument is an error code: `error_body(code, …)`,
    `ApplicationError(code, …)`, and the subclasses that keep its constructor (`Conflict`), but not
    one with a constructor of its own (`NotFound(message)`, whose code is in its super() call)."""
    functions = {node.name for module in modules for node in ast.walk(module)
                 if isinstance(node, ast.FunctionDef) and node.name != "__init__" and takes_code_first(node)}
    classes = {}
    for module in modules:
        for node in ast.walk(module):
            if isinstance(node, ast.ClassDef):
                init = next((item for item in node.body if isinstance(item, ast.FunctionDef) and item.name == "__init__"), None)
                bases = {base.id if isinstance(base, ast.Name) else getattr(base, "attr", "") for base in node.bases}
                classes[node.name] = (init, bases)
    found = {name for name, (init, _) in classes.items() if init and takes_code_first(init)}
    while grown := {name for name, (init, bases) in classes.items() if not init and bases & found} - found:
        found |= grown
    return functions | found


def error_codes_in_source() -> set[str]:
    """The codes our own code writes: the envelope's (ApplicationError and its subclasses, error_body)
    and a delivery's (ProviderError's code=, the error columns, an exception class's `code`)."""
    modules = [module for _, module in python_modules()]
    taking_code_first = callables_taking_code_first(modules)
    codes: set[str] = set()
    for module in modules:
        for node in ast.walk(module):
            if isinstance(node, ast.Call):
                if called_name(node) in taking_code_first and node.args:
                    codes |= string_values(node.args[0])
                codes |= {code for keyword in node.keywords if keyword.arg in ERROR_CODE_KEYWORDS
                          for code in string_values(keyword.value)}
            elif isinstance(node, ast.ClassDef):
                for statement in node.body:
                    if isinstance(statement, ast.Assign) and any(
                        isinstance(target, ast.Name) and target.id == "code" for target in statement.targets
                    ):
                        codes |= string_values(statement.value)
                codes |= {  # NotFound: super().__init__("not_found", message)
                    code for call in ast.walk(node) if isinstance(call, ast.Call) and called_name(call) == "__init__"
                    and isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Call)
                    and called_name(call.func.value) == "super" and node.bases and call.args
                    and any(base in taking_code_first for base in (getattr(b, "id", "") for b in node.bases))
                    for code in string_values(call.args[0])
                }
    return codes


def error_codes_of_framework_errors() -> set[str]:
    """The codes the API's exception handler gives each of Django REST framework's errors."""
    codes = set()
    for error_class in vars(drf_exceptions).values():
        if not (isinstance(error_class, type) and issubclass(error_class, drf_exceptions.APIException)):
            continue
        if error_class is drf_exceptions.APIException:
            continue  # the base class: never raised as such
        try:
            error = error_class()
        except TypeError:
            error = error_class("PATCH")  # MethodNotAllowed and UnsupportedMediaType name what was refused
        response = api_settings.EXCEPTION_HANDLER(error, {})
        codes.add(response.data["error"]["code"])
    return codes


def environment_variables_read() -> set[str]:
    """Names read with django-environ (`env(…)`, `env.int(…)`, …) or os.environ (`.get`, `[…]`,
    os.getenv) anywhere in the settings and the apps."""
    names = set()
    for _, module in python_modules():
        for node in ast.walk(module):
            if isinstance(node, ast.Call) and node.args:
                function = node.func
                reads = (
                    (isinstance(function, ast.Name) and function.id in {"env", "getenv"})
                    or (isinstance(function, ast.Attribute) and (
                        (isinstance(function.value, ast.Name) and function.value.id == "env"
                         and function.attr in ENVIRON_READERS)
                        or function.attr == "getenv"
                        or (function.attr == "get" and ast.unparse(function.value).endswith("environ"))
                    ))
                )
                if reads:
                    names |= string_values(node.args[0])
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) \
                    and ast.unparse(node.value).endswith("environ"):
                names |= string_values(node.slice)
    return {name for name in names if re.fullmatch(r"[A-Z][A-Z0-9_]+", name)}


def test_the_readme_is_an_overview():
    readme = read("README.md")

    assert len(readme.splitlines()) <= README_MAX_LINES
    # The product's own variables are documented in docs/operations.md, and only there.
    assert sorted(set(re.findall(r"\bNOTIFIER_[A-Z0-9_]+", readme))) == []


def test_every_error_code_the_code_can_answer_is_in_the_api_docs():
    codes = error_codes_in_source() | error_codes_of_framework_errors()
    api_docs = read("docs/api.md")

    # The extraction still finds codes of each kind, wherever their modules moved.
    assert {"unknown_template_version", "too_many_streams", "database_unavailable", "preview_busy",
            "not_found", "method_not_allowed", "worker_lost", "channel_disabled", "all_devices_failed"} <= codes
    assert sorted(code for code in codes if f"`{code}`" not in api_docs) == []


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


def test_every_environment_variable_the_code_reads_is_in_the_operations_docs():
    names = environment_variables_read()
    operations = read("docs/operations.md")

    assert len(names) > 50
    assert {"DATABASE_URL", "NOTIFIER_EMAIL_MAX_ATTEMPTS", "PROMETHEUS_MULTIPROC_DIR", "FLOWER_BASIC_AUTH"} <= names
    assert sorted(name for name in names if f"`{name}`" not in operations) == []


def test_the_readme_maps_every_document_and_every_other_file_of_docs_is_shown():
    readme = read("README.md")
    unmapped = [
        path.relative_to(ROOT).as_posix() for path in sorted((ROOT / "docs").rglob("*.md"))
        if f"]({path.relative_to(ROOT).as_posix()})" not in readme
    ]
    linked = {
        (document.parent / target.split("#")[0]).resolve()
        for document in documents() for target in MARKDOWN_LINK.findall(document.read_text())
    }
    # An image or other asset of docs/ is there for a document that links it, or for nothing.
    orphans = [
        path.relative_to(ROOT).as_posix() for path in sorted((ROOT / "docs").rglob("*"))
        if path.is_file() and path.suffix != ".md" and path.resolve() not in linked
    ]
    assert unmapped == []
    assert orphans == []


def test_every_relative_link_of_the_docs_leads_to_a_file():
    broken = []
    for document in documents():
        text = FENCED_BLOCK.sub("", document.read_text())  # code shows syntax, not links
        for target in MARKDOWN_LINK.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # https:, mailto:, an anchor in the same page
            if not (document.parent / target.split("#")[0]).exists():
                broken.append(f"{document.relative_to(ROOT)}: {target}")
    assert broken == []


def test_every_module_the_docs_name_exists():
    """Modules move (the notifications sub-packages did): a path the docs give must still lead there."""
    missing = []
    for document in documents():
        text = document.read_text()
        missing += [f"{document.relative_to(ROOT)}: {path}" for path in sorted(set(SOURCE_PATH.findall(text)))
                    if not (ROOT / path).exists()]
        missing += [f"{document.relative_to(ROOT)}: {name}" for name in sorted(set(TEST_FILE_NAME.findall(text)))
                    if not any((ROOT / "tests").rglob(name))]
    assert missing == []


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
