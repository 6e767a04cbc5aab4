"""The registry: what it refuses, and what every built-in check must have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from audit.profiles import load_profiles
from audit.registry import NoParams, Params, Registry, RegistryError, check, load_registry, passed
from audit.vocabulary import Role

TESTS = Path(__file__).parent


def probe(context: object) -> str:
    return "facts"


def declare(check_id: str, params: type = NoParams, module: str = "checks.host") -> object:
    @check(id=check_id, title="t", applies_to=Role.HOST, probe=probe, params=params)
    def function(facts: str, p: Params) -> object:
        """Doc."""
        return passed("ok")
    spec = function.__check_spec__  # type: ignore[attr-defined]
    object.__setattr__(spec, "module", module)
    return spec


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(RegistryError, match="duplicate check id"):
        Registry([declare("host.same"), declare("host.same")])


def test_an_id_that_does_not_match_its_module_is_refused() -> None:
    with pytest.raises(RegistryError, match="does not match its module"):
        Registry([declare("web.thing", module="checks.host")])
    with pytest.raises(RegistryError, match="does not match its module"):
        Registry([declare("nodot")])


def test_parameters_must_be_a_params_model() -> None:
    class Plain(BaseModel):
        x: int = 1
    with pytest.raises(RegistryError, match="params must be a Params model"):
        Registry([declare("host.plain", params=Plain)])


def test_declaring_a_check_changes_no_global_state() -> None:
    before = load_registry().ids()
    declare("host.not_registered")
    assert load_registry().ids() == before


def test_builtin_checks_are_complete_and_documented() -> None:
    registry = load_registry()
    assert len(registry) >= 5
    for spec in registry.specs():
        assert re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_.]+", spec.id), spec.id
        assert spec.title and spec.description, f"{spec.id} needs a title and a docstring"
        assert spec.applies_to, spec.id
        assert spec.params.model_config.get("extra") == "forbid", spec.id


def test_every_builtin_check_is_exercised_by_a_test() -> None:
    test_text = "\n".join(path.read_text(errors="replace") for path in TESTS.rglob("test_*.py"))
    untested = [spec.id for spec in load_registry().specs() if spec.id not in test_text]
    assert untested == []


def test_every_builtin_check_is_used_by_the_kazakh_baseline() -> None:
    registry = load_registry()
    baseline = load_profiles(["kz-mis-baseline"], registry)
    used = {planned.spec.id for control in baseline.controls for planned in control.checks}
    assert sorted(set(registry.ids()) - used) == []
