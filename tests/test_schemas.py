"""The committed JSON Schemas: not stale, and they accept the files mis-audit accepts."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
import yaml

from audit.schemas import SCHEMA_DIRECTORY, SCHEMAS, main, schema_text, stale_schemas


def schema(name: str) -> dict[str, object]:
    return json.loads((SCHEMA_DIRECTORY / name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_committed_schemas_are_not_stale() -> None:
    assert stale_schemas() == [], "run: python -m audit.schemas"


def test_the_check_mode_reports_a_stale_schema(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SCHEMAS:
        (tmp_path / name).write_text(schema_text(name), encoding="utf-8")
    assert stale_schemas(tmp_path) == []
    (tmp_path / "waivers.schema.json").write_text("{}", encoding="utf-8")
    assert stale_schemas(tmp_path) == ["waivers.schema.json"]
    assert main(["--bogus"]) == 2


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schemas_are_valid_json_schema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(schema(name))


def shipped_yaml(pattern: str) -> list[Path]:
    root = Path(str(files("profiles")))
    return sorted(root.glob(pattern))


@pytest.mark.parametrize("path", shipped_yaml("*.yaml") + shipped_yaml("examples/*.yaml"),
                         ids=lambda p: p.name)
def test_shipped_profiles_validate_against_the_schema(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")),
                        schema("profile.schema.json"))


@pytest.mark.parametrize("path", shipped_yaml("controls/*.yaml"), ids=lambda p: p.name)
def test_library_files_validate_against_the_schema(path: Path) -> None:
    jsonschema.validate(yaml.safe_load(path.read_text(encoding="utf-8")),
                        schema("control-library.schema.json"))


def test_the_profile_schema_refuses_what_the_loader_refuses() -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"id": "p", "title": "P", "version": "1", "colour": "red"},
                            schema("profile.schema.json"))


def test_inventory_and_waivers_examples_validate() -> None:
    inventory = yaml.safe_load("""
        organisation: City Clinic No. 5
        scope: {networks: [10.20.0.0/24], paths: [/srv/share]}
        credentials:
          pacs: {type: basic, user: pacsadmin, password_env: PACS_PASSWORD}
        targets:
          - {name: mis-web, address: 10.20.0.10, roles: [web]}
        evidence:
          pentest_report: {file: evidence/pentest-2026.pdf, date: "2026-03-01", issued_by: X}
        """)
    jsonschema.validate(inventory, schema("inventory.schema.json"))
    waivers = [{"control": "auth.mfa", "target": "app-host*", "reason": "r",
                "approved_by": "CISO", "expires": "2027-01-31", "risk": "low"}]
    jsonschema.validate(waivers, schema("waivers.schema.json"))
    jsonschema.validate({"waivers": waivers}, schema("waivers.schema.json"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{"control": "auth.mfa"}], schema("waivers.schema.json"))


def test_a_real_results_json_validates(tmp_path: Path) -> None:
    from audit.run import RunRequest, execute, prepare, results_json

    (tmp_path / "inventory.yaml").write_text("organisation: Clinic\n", encoding="utf-8")
    request = RunRequest(profiles=["kz-mis-baseline"], inventory=tmp_path / "inventory.yaml")
    results = execute(prepare(request))
    jsonschema.validate(json.loads(results_json(results)), schema("results.schema.json"))
