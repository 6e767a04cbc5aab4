"""`mis-audit init`: a commented skeleton with every field and the profile's evidence keys,
valid as it is, and valid with its commented examples switched on."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

from audit.cli import app
from audit.docs import inventory_schema
from audit.inventory import load_inventory
from audit.model.inventory import Inventory
from audit.profiles import load_profiles
from audit.registry import default_registry
from audit.usage import expected_documents

ROOT = Path(__file__).parent.parent


def test_the_skeleton_validates_and_lists_every_expected_document(tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["init", "-p", "kz-mis-baseline", "-o", str(tmp_path / "inv.yaml")])
    assert done.exit_code == 0, done.output
    assert runner.invoke(app, ["validate", str(tmp_path / "inv.yaml")]).exit_code == 0
    inventory = load_inventory(tmp_path / "inv.yaml").inventory
    expected = expected_documents(load_profiles(["kz-mis-baseline"], default_registry()))
    assert sorted(inventory.evidence) == sorted(expected) and len(expected) >= 10
    text = (tmp_path / "inv.yaml").read_text(encoding="utf-8")
    for key, controls in expected.items():
        assert re.search(rf"^  {key}: +# needed by {', '.join(controls)}$", text, re.MULTILINE)
    again = runner.invoke(app, ["init", "-o", str(tmp_path / "inv.yaml")])
    assert again.exit_code == 2 and "exists" in again.output


def test_a_tailored_profile_gets_its_own_keys_on_stdout() -> None:
    tailored = str(ROOT / "profiles/examples/clinic-tailored.yaml")
    done = CliRunner().invoke(app, ["init", "-p", tailored])
    assert done.exit_code == 0, done.output
    assert "inventory for profile clinic-tailored" in done.output
    assert CliRunner().invoke(app, ["init", "-p", "no-such-profile"]).exit_code == 2


def test_every_field_appears_and_the_examples_validate_when_uncommented(tmp_path: Path) -> None:
    text = CliRunner().invoke(app, ["init"]).output
    schema = inventory_schema()
    fields = {field for model in [schema, *schema["$defs"].values()]
              for field in model.get("properties", {})}
    assert [field for field in fields if not re.search(rf"\b{field}:", text)] == []
    # Switch the examples on: the commented targets and the optional credential fields.
    switched = re.sub(r"^#(  [ -])", r"\1", text, flags=re.MULTILINE)
    switched = re.sub(r"^(    )# (\w+: )", r"\1\2", switched, flags=re.MULTILINE)
    switched = switched.replace("  # fhir-token:", "  fhir-token:")
    switched = switched.replace("targets: []", "targets:")
    switched = switched.replace("networks: []", "networks: [10.20.0.0/24]")
    switched = switched.replace("paths: []", "paths: [/srv, /mnt]")
    data = yaml.safe_load(switched)
    data["targets"] = [t for t in data["targets"] if "root" not in t]   # needs a directory
    inventory = Inventory.model_validate(data)
    assert len(inventory.targets) == 7 and len(inventory.credentials) == 3
    (tmp_path / "on.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    load_inventory(tmp_path / "on.yaml")        # cross-checks: scope and credential names
