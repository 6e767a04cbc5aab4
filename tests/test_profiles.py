"""The shipped profiles and the control library: they load, resolve, name only registered
checks, and every control is traceable (references, rationale, remediation)."""

from __future__ import annotations

from importlib.resources import files

import pytest

from audit.model.profile import ReferenceKind
from audit.profiles import ResolvedProfile, builtin_profile_ids, control_library, load_profiles
from audit.registry import default_registry
from audit.vocabulary import Lang, Severity

SHIPPED = ["gdpr-health", "hipaa-security", "kz-mis-baseline"]
EXAMPLE = str(files("profiles").joinpath("examples", "clinic-tailored.yaml"))

# shared/LEGAL.md section 1, every row, data.localisation from section 3a, and vuln.patching
# (security updates and version disclosure, under the PD Law's general security principles).
KZ_CONTROLS = {
    "conf.staff_obligation", "consent.processing", "disclosure.legal_basis",
    "disclosure.register", "disclosure.minimum", "disclosure.patient_info",
    "data.special_categories", "auth.mfa", "auth.bruteforce", "auth.guessable_ids",
    "auth.password_policy", "authz.admin_levels", "authz.it_staff", "audit.access_log",
    "audit.ids", "ir.plan", "ir.breach_notice", "ir.external_reports", "assess.annual_audit",
    "assess.mis_certified", "crypto.at_rest", "crypto.in_transit", "net.db_exposed",
    "net.db_unauth", "integrity.no_anon_write", "dlp.export", "dlp.messengers",
    "data.leak_files", "data.public_links", "data.minimisation", "data.retention",
    "patient.notice", "patient.access_alerts", "staff.training", "org.security_officer",
    "org.procedures", "arch.resilience", "insider.monitoring", "integration.third_parties",
    "data.localisation", "vuln.patching",
}
KZ_CRITICAL = {"net.db_exposed", "net.db_unauth", "data.leak_files", "crypto.in_transit",
               "auth.bruteforce", "auth.mfa"}


@pytest.fixture(scope="module")
def shipped() -> dict[str, ResolvedProfile]:
    registry = default_registry()
    return {profile_id: load_profiles([profile_id], registry) for profile_id in SHIPPED}


def test_the_three_profiles_are_shipped() -> None:
    assert builtin_profile_ids() == SHIPPED


def test_every_check_a_profile_names_is_registered(shipped: dict[str, ResolvedProfile]) -> None:
    registry = default_registry()
    for profile in shipped.values():
        for item in profile.controls:
            assert [c.spec.id for c in item.checks] == [ref.check for ref in item.control.checks]
            assert all(ref.check in registry for ref in item.control.checks)


def test_every_control_is_traceable_and_actionable(shipped: dict[str, ResolvedProfile]) -> None:
    for profile in shipped.values():
        for item in profile.controls:
            control = item.control
            assert control.references, f"{profile.id}/{control.id} has no reference"
            assert control.rationale and control.rationale.get(Lang.EN), control.id
            assert control.remediation and control.remediation.get(Lang.EN), control.id


def test_library_texts_are_in_english_and_russian() -> None:
    for entry in control_library().controls.values():
        for text in (entry.control.title, entry.control.rationale, entry.control.remediation):
            assert text.get(Lang.EN) and text.get(Lang.RU), entry.control.id


def test_no_law_reference_lacks_a_source(shipped: dict[str, ResolvedProfile]) -> None:
    for profile in shipped.values():
        for item in profile.controls:
            for reference in item.control.references:
                if reference.kind is ReferenceKind.LAW:
                    assert reference.source, f"{profile.id}/{item.control.id}"


def test_gdpr_and_hipaa_cite_only_external_references(
        shipped: dict[str, ResolvedProfile]) -> None:
    # LEGAL.md caveat 4: the sources give no GDPR or HIPAA article numbers.
    for profile_id in ("gdpr-health", "hipaa-security"):
        kinds = {reference.kind for item in shipped[profile_id].controls
                 for reference in item.control.references}
        assert kinds == {ReferenceKind.EXTERNAL}, profile_id


def test_kz_proposals_are_never_labelled_law(shipped: dict[str, ResolvedProfile]) -> None:
    # LEGAL.md caveat 1: 2FA, encryption, audits, IR plans... are proposals of S1.
    for item in shipped["kz-mis-baseline"].controls:
        for reference in item.control.references:
            if "Iksatova" in reference.text or "not in force" in reference.text:
                assert reference.kind is ReferenceKind.PROPOSAL, reference.text
            if "95–96" in reference.text or "Art. 96" in reference.text:
                assert reference.kind is ReferenceKind.VERIFY, reference.text


def test_kz_baseline_covers_legal_section_1(shipped: dict[str, ResolvedProfile]) -> None:
    profile = shipped["kz-mis-baseline"]
    assert {item.control.id for item in profile.controls} == KZ_CONTROLS
    critical = {item.control.id for item in profile.controls
                if item.control.severity is Severity.CRITICAL}
    assert critical == KZ_CRITICAL
    assert profile.threshold == 80


def test_shared_controls_are_written_once(shipped: dict[str, ResolvedProfile]) -> None:
    """The same requirement has the same id and the same library text in every profile;
    only references and severity differ."""
    by_profile = {pid: {item.control.id: item.control for item in profile.controls}
                  for pid, profile in shipped.items()}
    common = set.intersection(*(set(controls) for controls in by_profile.values()))
    assert {"auth.mfa", "crypto.in_transit", "ir.breach_notice", "net.db_unauth"} <= common
    for control_id in common:
        library = control_library().controls[control_id].control
        for controls in by_profile.values():
            assert controls[control_id].title == library.title
            assert controls[control_id].remediation == library.remediation
    refs = {pid: by_profile[pid]["auth.mfa"].references for pid in by_profile}
    assert len({tuple(r.text for r in value) for value in refs.values()}) == 3


def test_every_library_control_is_used_by_a_shipped_profile(
        shipped: dict[str, ResolvedProfile]) -> None:
    used = {item.control.id for profile in shipped.values() for item in profile.controls}
    assert set(control_library().controls) == used


def test_profiles_pin_the_library_files_they_use(shipped: dict[str, ResolvedProfile]) -> None:
    sources = [record.source for record in shipped["kz-mis-baseline"].records]
    assert sources[0] == "builtin:kz-mis-baseline"
    assert "builtin:profiles/controls/access.yaml" in sources
    assert all(len(record.sha256) == 64 for record in shipped["kz-mis-baseline"].records)


def test_breach_notice_sections_follow_each_jurisdiction(
        shipped: dict[str, ResolvedProfile]) -> None:
    def sections(profile_id: str) -> dict[str, list[str]]:
        item = next(i for i in shipped[profile_id].controls if i.control.id == "ir.breach_notice")
        return item.checks[0].params.sections  # type: ignore[attr-defined, no-any-return]
    assert sections("gdpr-health")["deadline"] == ["72"]
    assert sections("hipaa-security")["deadline"] == ["60"]
    assert "business day" in sections("kz-mis-baseline")["deadline"]


def test_the_example_clinic_profile_resolves() -> None:
    profile = load_profiles([EXAMPLE], default_registry())
    assert profile.id == "clinic-tailored"
    assert profile.threshold == 90
