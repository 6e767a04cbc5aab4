"""docs/inventory.md: in step with the inventory's JSON Schema, naming every field, with
examples that validate, and the service kinds with their ports and aliases."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import audit.model.inventory as inventory_models
from audit.docs import EXAMPLES, REFERENCE, inventory_schema, main, reference_text
from audit.facts.ports import SERVICE_ALIASES, canonical_service

README = Path(__file__).parent.parent / "README.md"


def test_the_reference_is_not_stale() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == reference_text(), "run: python -m audit.docs"
    assert main(["--check"]) == 0 and main(["--bogus"]) == 2


def _fields() -> list[tuple[str, str]]:
    schema = inventory_schema()
    models = {"Inventory": schema, **schema["$defs"]}
    return [(name, field) for name, model in models.items()
            for field in model.get("properties", {})]


def test_every_schema_field_is_in_the_reference() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.MULTILINE)
    by_model = {section.split("\n", 1)[0]: section for section in sections[1:]}
    missing = [(model, field) for model, field in _fields()
               if f"| `{field}` |" not in by_model.get(model, "")]
    assert missing == []
    assert len(_fields()) >= 40


@pytest.mark.parametrize("model", sorted(EXAMPLES))
def test_every_example_validates(model: str) -> None:
    getattr(inventory_models, model).model_validate(yaml.safe_load(EXAMPLES[model]))


def test_service_kinds_list_ports_and_aliases() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    kinds = text.split("## Service kinds", 1)[1]
    assert canonical_service("mariadb") == "mysql"
    assert "| `mysql` | 3306 | `mariadb` |" in kinds
    for kind, port in [("postgresql", 5432), ("redis", 6379), ("dicom", 104), ("pacs-http", 8042),
                       ("hl7", 2575), ("fhir", "-")]:
        assert f"| `{kind}` | {port}" in kinds
    shown = {alias for alias, kind in SERVICE_ALIASES.items() if f"| `{kind}` |" in kinds}
    assert all(f"`{alias}`" in kinds for alias in shown)


def test_the_readme_links_the_reference_and_names_nmap() -> None:
    readme = README.read_text(encoding="utf-8")
    assert "(docs/inventory.md)" in readme
    first_command = readme.split("python3 -m venv .venv && .venv/bin/pip install .", 1)[0]
    assert "nmap" in first_command
