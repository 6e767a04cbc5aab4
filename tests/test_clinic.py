"""End to end: `mis-audit run -p kz-mis-baseline` over a whole small clinic of real servers,
weak and hardened side by side, in every output format."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml
from test_oscal import validated as oscal_validated
from test_sarif import VALIDATOR as SARIF_VALIDATOR

from tests.servers.clinic import ADDRESSES, NETWORK, PACS_NETWORKS, Clinic, running_clinic
from tests.servers.nginx import fake_patients_csv, private_address
from tests.servers.orthanc import SYNTHETIC_PATIENTS

pytestmark = pytest.mark.servers
FORMATS = "json,html,sarif,junit,csv,pdf,oscal"
FILES = ("results.json", "report.html", "results.sarif", "junit.xml", "results.csv")

# (check, weak target, hardened target): each fails on the weak one and passes on the other.
WEAK_FAILS_HARDENED_PASSES = [
    ("db.unauthenticated_access", "db-weak", "db-hardened"),
    ("db.plaintext_accepted", "db-weak", "db-hardened"),
    ("tls.protocol_versions", "web-weak", "web-hardened"),
    ("tls.certificate", "web-weak", "web-hardened"),
    ("web.https_redirect", "web-weak", "web-hardened"),
    ("web.hsts", "web-weak", "web-hardened"),
    ("web.public_exports", "web-weak", "web-hardened"),
    ("web.login_bruteforce", "web-weak", "web-hardened"),
    ("web.version_disclosure", "web-weak", "web-hardened"),
    ("pacs.dicom_unknown_ae", "pacs-weak", "pacs-hardened"),
    ("pacs.dicom_called_ae", "pacs-weak", "pacs-hardened"),
    ("pacs.rest_unauthenticated", "pacs-weak", "pacs-hardened"),
    ("hl7.mllp_plaintext", "hl7-weak", "hl7-hardened"),
    ("fhir.unauthenticated_search", "fhir-weak", "fhir-hardened"),
    ("fhir.plaintext", "fhir-weak", "fhir-hardened"),
    ("host.ssh_root_login", "host-weak", "host-hardened"),
    ("host.ssh_password_auth", "host-weak", "host-hardened"),
    ("host.ssh_mfa", "host-weak", "host-hardened"),
    ("host.role_separation", "host-weak", "host-hardened"),
    ("host.password_max_age", "host-weak", "host-hardened"),
]


@pytest.fixture(scope="module")
def clinic_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Clinic, Path, int]]:
    work = tmp_path_factory.mktemp("clinic")
    with running_clinic(work) as clinic:
        out = work / "out"
        done = subprocess.run(
            [sys.executable, "-m", "audit.cli", "run", "-p", "kz-mis-baseline", "-i",
             str(clinic.inventory), "-o", str(out), "--format", FORMATS, "--quiet"],
            env={**os.environ, **clinic.environment}, capture_output=True, text=True,
            timeout=300, check=False)
        assert "Traceback" not in done.stderr, done.stderr
        yield clinic, out, done.returncode


def results_of(out: Path) -> dict[str, object]:
    return json.loads((out / "results.json").read_text())


def test_the_clinic_is_not_ready_and_every_format_is_written(
        clinic_run: tuple[Clinic, Path, int]) -> None:
    _, out, code = clinic_run
    assert code == 1
    assert all((out / name).is_file() for name in FILES)
    results = results_of(out)
    assert results["complete"] is True and results["verdict"] == "not_ready"
    assert {t["name"] for t in results["targets"]} == set(clinic_run[0].targets)  # type: ignore[index]
    SARIF_VALIDATOR.validate(json.loads((out / "results.sarif").read_text()))
    cases = ElementTree.parse(out / "junit.xml").getroot().iter("testcase")
    assert sum(1 for _ in cases) > 0
    rows = list(csv.DictReader(io.StringIO((out / "results.csv").read_text(encoding="utf-8-sig"))))
    assert len(rows) == len(results["results"])  # type: ignore[arg-type]


def test_the_oscal_assessment_results_validate(clinic_run: tuple[Clinic, Path, int]) -> None:
    _, out, _ = clinic_run
    results = results_of(out)
    [result] = oscal_validated((out / "results.oscal.json").read_text())["results"]
    assert len(result["observations"]) == len(results["results"])  # type: ignore[arg-type]
    states = {f["target"]["target-id"]: f["target"]["status"]["state"]
              for f in result["findings"]}
    failed = {c["id"] for c in results["controls"]  # type: ignore[attr-defined]
              if c["status"] in ("fail", "waived")}
    assert failed and {control: states[control] for control in failed} == \
        {control: "not-satisfied" for control in failed}


def test_weak_servers_fail_and_hardened_servers_pass(clinic_run: tuple[Clinic, Path, int]) -> None:
    results = results_of(clinic_run[1])["results"]
    status = {(r["check"], r["target"]): r["status"] for r in results}  # type: ignore[union-attr, index]
    observed = {(check, weak, hardened): (status.get((check, weak)), status.get((check, hardened)))
                for check, weak, hardened in WEAK_FAILS_HARDENED_PASSES}
    assert observed == {case: ("fail", "pass") for case in WEAK_FAILS_HARDENED_PASSES}


def addresses_only(inventory: str) -> str:
    """The clinic's inventory as an engineer first writes it: names, addresses and roles,
    plus only what no scan can find out (credentials, `ssh:`, the opt-in `login:`, trust
    anchors, evidence, a PACS's AE title). A service stays only to carry a credential."""
    document = yaml.safe_load(inventory)
    for target in document["targets"]:
        target.pop("urls", None)
        services = target.pop("services", [])
        titles = [service["ae_title"] for service in services if service.get("ae_title")]
        if titles:
            target["ae_title"] = titles[0]
        logins = [{"kind": service["kind"], "port": service["port"],
                   "credential": service["credential"]}
                  for service in services if service.get("credential")]
        if logins:
            target["services"] = logins
    return yaml.safe_dump(document, sort_keys=False)


def audited(clinic: Clinic, inventory_text: str, work: Path) -> dict[str, object]:
    """The results of kz-mis-baseline run over the clinic from another inventory."""
    inventory = work / "inventory.yaml"
    inventory.write_text(inventory_text)
    done = subprocess.run(
        [sys.executable, "-m", "audit.cli", "run", "-p", "kz-mis-baseline", "-i", str(inventory),
         "-o", str(work / "out"), "--format", "json", "--quiet"],
        env={**os.environ, **clinic.environment}, capture_output=True, text=True, timeout=300,
        check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    return results_of(work / "out")


def verdict_differences(full: dict[str, object], other: dict[str, object]
                        ) -> dict[tuple[str, str], tuple[str | None, str | None]]:
    """Every (check, target) whose status differs between two runs."""
    def verdicts(results: dict[str, object]) -> dict[tuple[str, str], str]:
        return {(r["check"], r["target"]): r["status"]  # type: ignore[index]
                for r in results["results"]}  # type: ignore[attr-defined]

    first, second = verdicts(full), verdicts(other)
    return {key: (first.get(key), second.get(key)) for key in first.keys() | second.keys()
            if first.get(key) != second.get(key)}


@pytest.fixture(scope="module")
def addresses_only_run(clinic_run: tuple[Clinic, Path, int],
                       tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    clinic = clinic_run[0]
    return audited(clinic, addresses_only(clinic.inventory.read_text()),
                   tmp_path_factory.mktemp("addresses-only"))


def test_addresses_and_roles_alone_give_the_same_verdicts(
        clinic_run: tuple[Clinic, Path, int], addresses_only_run: dict[str, object]) -> None:
    assert verdict_differences(results_of(clinic_run[1]), addresses_only_run) == {}
    bare = addresses_only_run["results"]
    judged_tls = {r["target"] for r in bare  # type: ignore[attr-defined]
                  if r["check"].startswith("tls.") and r["status"] in ("pass", "fail")}
    assert {"db-hardened", "web-weak", "web-hardened", "pacs-hardened", "hl7-hardened",
            "fhir-hardened"} <= judged_tls


@pytest.fixture(scope="module")
def draft(clinic_run: tuple[Clinic, Path, int],
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """`mis-audit discover` over the clinic's networks: the draft, validated."""
    work = tmp_path_factory.mktemp("discover")
    done = subprocess.run(
        [sys.executable, "-m", "audit.cli", "discover", NETWORK, *PACS_NETWORKS, "-o",
         "draft.yaml"], cwd=work, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    validated = subprocess.run([sys.executable, "-m", "audit.cli", "validate", "draft.yaml"],
                               cwd=work, capture_output=True, text=True, check=False)
    assert validated.returncode == 0, validated.stderr
    return yaml.safe_load((work / "draft.yaml").read_text())  # type: ignore[no-any-return]


def test_discover_finds_every_server_of_the_clinic(draft: dict[str, Any]) -> None:
    roles = {target["address"]: target["roles"] for target in draft["targets"]}
    expected = {name: [name.split("-")[0]] for name in ADDRESSES}
    expected |= {"fhir-weak": ["web"], "fhir-hardened": ["web"]}   # FHIR is HTTP(S) to a scan
    assert {address: roles.get(address) for address in ADDRESSES.values()} == \
        {ADDRESSES[name]: role for name, role in expected.items()}
    # the hardened site's login backend, on its private address, is found too
    assert roles[private_address(ADDRESSES["web-hardened"])] == ["web"]
    kinds = {(target["address"], service["kind"], service.get("tls", False))
             for target in draft["targets"] for service in target.get("services", [])}
    assert {(ADDRESSES["pacs-hardened"], "dicom", True), (ADDRESSES["pacs-hardened"],
            "pacs-http", True), (ADDRESSES["pacs-weak"], "dicom", False),
            (ADDRESSES["db-hardened"], "redis", True), (ADDRESSES["hl7-hardened"], "hl7", True),
            (ADDRESSES["host-weak"], "ssh", False)} <= kinds
    # the open Orthanc tells its AE title to anyone; the hardened one asks for a login first
    titles = {target["address"]: target.get("ae_title") for target in draft["targets"]}
    assert (titles[ADDRESSES["pacs-weak"]], titles[ADDRESSES["pacs-hardened"]]) == \
        ("ORTHANC", None)


def completed_draft(draft: dict[str, Any], inventory: str) -> str:
    """The draft as its user completes it: each target renamed after the hand-written one at
    its address, given the roles the user knows (a scan sees FHIR as HTTP), and only what no
    scan reveals (`addresses_only`'s fields); the draft's services and AE titles stay."""
    hand = yaml.safe_load(addresses_only(inventory))
    by_address = {target["address"]: target for target in hand["targets"] if "address" in target}
    targets = []
    for found in draft["targets"]:
        known = by_address.get(found["address"])
        if known is None:       # the private login backend: the hand inventory has no target
            continue
        target = {key: value for key, value in known.items() if key != "services"}
        target |= {key: found[key] for key in ("address", "ae_title") if key in found}
        credentialed = {service["port"]: service for service in known.get("services", [])}
        target["services"] = [credentialed.pop(service["port"], service)
                              for service in found.get("services", [])]
        target["services"] += credentialed.values()
        targets.append(target)
    targets += [target for target in hand["targets"] if "address" not in target]
    return yaml.safe_dump({**hand, "targets": targets}, sort_keys=False)


def test_an_audit_from_the_completed_draft_gives_the_same_verdicts(
        clinic_run: tuple[Clinic, Path, int], draft: dict[str, Any],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    clinic = clinic_run[0]
    completed = completed_draft(draft, clinic.inventory.read_text())
    results = audited(clinic, completed, tmp_path_factory.mktemp("from-draft"))
    assert verdict_differences(results_of(clinic_run[1]), results) == {}


class _Sections(HTMLParser):
    """Collects the ids of the report's control sections and the reference-kind labels."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: set[str] = set()
        self.kinds: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "section" and (values.get("id") or "").startswith("control-"):
            self.controls.add((values["id"] or "")[len("control-"):])
        if tag == "span" and (values.get("class") or "").startswith("ref-"):
            self.kinds.add((values["class"] or "")[len("ref-"):])


def test_every_control_shows_its_references_and_their_kind(
        clinic_run: tuple[Clinic, Path, int]) -> None:
    out = clinic_run[1]
    controls = results_of(out)["controls"]
    parsed = _Sections()
    parsed.feed((out / "report.html").read_text())
    assert parsed.controls == {c["id"] for c in controls}  # type: ignore[index, union-attr]
    assert all(c["references"] for c in controls)  # type: ignore[index, union-attr]
    kinds = {ref["kind"] for c in controls for ref in c["references"]}  # type: ignore[index, union-attr]
    assert {"law", "proposal"} <= kinds and parsed.kinds == kinds


def test_no_output_repeats_a_secret_or_personal_data(clinic_run: tuple[Clinic, Path, int]) -> None:
    clinic, out, _ = clinic_run
    outputs = "\n".join([*((out / name).read_text(encoding="utf-8-sig") for name in FILES),
                         pdf_text(out / "report.pdf")])
    secrets = [value for value in clinic.environment.values() if value]
    identifiers = re.findall(r"\b\d{12}\b", fake_patients_csv())
    names = [name for name, _ in SYNTHETIC_PATIENTS] + [pid for _, pid in SYNTHETIC_PATIENTS]
    assert secrets and identifiers
    leaked = [value for value in [*secrets, *identifiers, *names] if value in outputs]
    assert leaked == []


# --- the PDF report ---------------------------------------------------------------------------

MAX_PDF_PAGES = 30


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def pdf_pages(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True,
                          timeout=60).stdout
    return int(re.search(r"^Pages:\s+(\d+)$", info, re.MULTILINE).group(1))  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def rendered(clinic_run: tuple[Clinic, Path, int]) -> Path:
    """`mis-audit report` of the clinic's results.json in every language, HTML and PDF."""
    out = clinic_run[1]
    for lang in ("en", "ru", "kk"):
        done = subprocess.run(
            [sys.executable, "-m", "audit.cli", "report", str(out / "results.json"), "--format",
             "html,pdf", "--lang", lang, "-o", str(out / f"again-{lang}")],
            capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("lang", ["en", "ru", "kk"])
def test_the_pdf_is_a4_short_with_its_fonts_embedded(rendered: Path, lang: str) -> None:
    pdf = rendered / f"again-{lang}" / "report.pdf"
    assert pdf_pages(pdf) <= MAX_PDF_PAGES
    assert "pts (A4)" in subprocess.run(["pdfinfo", str(pdf)], capture_output=True,
                                                  text=True, check=True).stdout
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True,
                           check=True).stdout.splitlines()[2:]
    assert fonts and all(line.split()[-5] == "yes" for line in fonts), fonts   # emb column
    if lang == "kk":
        assert "Сәйкессіздіктер тізілімі" in pdf_text(pdf)     # ә ң і ө rendered as text


# The measure: a run over nine targets prints in this many pages.
NINE_TARGET_PAGES = 25
LEFT_OUT = ("web-hardened", "hl7-hardened", "fhir-hardened")


@pytest.fixture(scope="module")
def nine_target_reports(clinic_run: tuple[Clinic, Path, int],
                        tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kz-mis-baseline over nine of the clinic's targets, its report printed in every
    language."""
    clinic = clinic_run[0]
    document = yaml.safe_load(clinic.inventory.read_text())
    document["targets"] = [target for target in document["targets"]
                           if target["name"] not in LEFT_OUT]
    work = tmp_path_factory.mktemp("nine-targets")
    results = audited(clinic, yaml.safe_dump(document, sort_keys=False), work)
    assert len(results["targets"]) == 9  # type: ignore[arg-type]
    for lang in ("en", "ru", "kk"):
        done = subprocess.run(
            [sys.executable, "-m", "audit.cli", "report", str(work / "out" / "results.json"),
             "--format", "pdf", "--lang", lang, "-o", str(work / lang)],
            capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
    return work


@pytest.mark.parametrize("lang", ["en", "ru", "kk"])
def test_nine_targets_print_in_25_pages(nine_target_reports: Path, lang: str) -> None:
    assert pdf_pages(nine_target_reports / lang / "report.pdf") <= NINE_TARGET_PAGES


def test_the_register_lists_every_failed_result(rendered: Path) -> None:
    text = pdf_text(rendered / "report.pdf")
    flat = re.sub(r"\s+", "", text)
    register = flat[flat.index("Findingsregister", flat.index("Findingsregister") + 1):
                    flat.index("Targetsataglance", flat.index("Targetsataglance") + 1)]
    failed = [r for r in results_of(rendered)["results"]  # type: ignore[union-attr]
              if r["status"] in ("fail", "error")]  # type: ignore[index]
    assert failed
    missing = [(r["control"], r["target"], r["summary"]) for r in failed  # type: ignore[index]
               if re.sub(r"\s+", "", r["summary"])[:24] not in register]  # type: ignore[index]
    assert missing == []
    # the contents give page numbers (CSS target-counter): "1. Findings register ....... 2"
    contents = subprocess.run(["pdftotext", "-layout", "-f", "2", "-l", "2",
                               str(rendered / "report.pdf"), "-"], capture_output=True,
                              text=True, check=True).stdout
    assert re.search(r"Findings register *\.{5,} *\d+", contents), contents


def test_report_rerenders_the_pdf_with_the_same_text(rendered: Path) -> None:
    assert pdf_text(rendered / "report.pdf") == pdf_text(rendered / "again-en" / "report.pdf")


def test_the_fix_playbook_of_the_clinic_run_passes_the_syntax_check(
        clinic_run: tuple[Clinic, Path, int], tmp_path: Path) -> None:
    _, out, _ = clinic_run
    playbook = tmp_path / "playbook.yml"
    bin_dir = Path(sys.executable).parent
    subprocess.run([sys.executable, "-m", "audit.cli", "fix", str(out / "results.json"), "-o",
                    str(playbook)], check=True, capture_output=True, timeout=60)
    hosts = [play["hosts"] for play in yaml.safe_load(playbook.read_text())]
    assert hosts, "the clinic's weak host has fixable failures"
    (tmp_path / "inventory.ini").write_text("".join(f"{host}\n" for host in hosts))
    checked = subprocess.run([str(bin_dir / "ansible-playbook"), "--syntax-check", "-i",
                              str(tmp_path / "inventory.ini"), str(playbook)],
                             capture_output=True, text=True, timeout=120, check=False,
                             env={"PATH": os.environ["PATH"], "HOME": str(tmp_path),
                                  "ANSIBLE_HOME": str(tmp_path), "LC_ALL": "C.UTF-8"})
    assert checked.returncode == 0, checked.stdout + checked.stderr
