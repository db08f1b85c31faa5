"""Where the notifications app's code lives is written down twice, and both must hold: in
docs/architecture.md for people, and in the import contract that keeps the sub-packages layered."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "apps" / "notifications"


def test_the_architecture_doc_and_the_layers_contract_name_every_part_of_the_app():
    packages = sorted(p.name for p in APP.iterdir() if (p / "__init__.py").exists() and p.name != "migrations")
    modules = sorted(p.stem for p in APP.glob("*.py") if p.stem not in ("__init__", "apps"))
    doc = (ROOT / "docs" / "architecture.md").read_text()
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    [layers] = [c["layers"] for c in contracts if c["id"] == "notifications-layers"]
    layered = {name.strip() for layer in layers for name in layer.split("|")}

    assert "intake" in packages and "tasks" in modules  # the listing itself found the app's parts
    assert [p for p in packages if f"{p}/" not in doc] == []
    assert [p for p in packages + modules if p not in layered] == []


def test_no_module_of_the_apps_is_over_400_lines():
    lengths = {str(path.relative_to(ROOT)): len(path.read_text().splitlines())
               for path in (ROOT / "apps").rglob("*.py") if "migrations" not in path.parts}

    assert {path: n for path, n in lengths.items() if n > 400} == {}
