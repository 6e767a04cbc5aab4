"""The registry: what it refuses, and what every built-in check must have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from audit.profiles import builtin_profile_ids, load_profiles
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


def test_an_id_that_is_not_dotted_area_thing_is_refused() -> None:
    for bad in ("nodot", "Host.thing", "host.", ".thing", "host thing.x"):
        with pytest.raises(RegistryError, match="is not a dotted"):
            Registry([declare(bad)])


def test_a_check_id_need_not_name_its_module() -> None:
    # a check lives where a reader looks for it: a TLS check of a database may sit in db.py
    assert Registry([declare("tls.database_thing", module="checks.db")]).ids() == \
        ["tls.database_thing"]


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


def test_every_builtin_check_is_used_by_a_shipped_profile() -> None:
    registry = load_registry()
    used: set[str] = set()
    for profile_id in builtin_profile_ids():
        resolved = load_profiles([profile_id], registry)
        used |= {planned.spec.id for control in resolved.controls for planned in control.checks}
    assert sorted(set(registry.ids()) - used) == []
