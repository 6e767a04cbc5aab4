"""How long the PACS, HL7 and FHIR checks take, per target (weak, hardened, silent).

Starts the test servers (Orthanc weak and hardened with synthetic studies, MLLP plain and
over TLS, the FHIR stand-in open and token-only, all on 127.62.0.x) and a silent host whose
ports accept and never speak, then prints:

- per target, each check's time with its facts gathered from scratch (median of --repeat);
- per target, all its checks sharing one target's facts, as a run does;
- the whole-process time of `mis-audit run` over every target (a subprocess).

Run as root from the repository: `python bench/pacs_checks.py [--repeat N]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from audit.engine import evaluate
from audit.facts.context import Environment, TargetContext
from audit.model.inventory import Scope, Target
from audit.plan import PlanItem
from audit.profiles import PlannedCheck
from audit.registry import default_registry
from audit.vocabulary import Role
from whole_run import time_mis_audit_run  # noqa: E402
from tests.servers.fhir import start_fhir
from tests.servers.mllp import ca_signed_cert, running, silent_listener, start_mllp
from tests.servers.orthanc import HARDENED, WEAK, pacs_target, start_orthanc

CHECKS_BY_ROLE = {
    Role.PACS: ("pacs.dicom_unknown_ae", "pacs.dicom_called_ae", "pacs.rest_unauthenticated",
                "pacs.dicomweb_unauthenticated"),
    Role.HL7: ("hl7.mllp_plaintext",),
    Role.FHIR: ("fhir.unauthenticated_search",),
}
TIMEOUT = 8.0
SILENT_HOST = "127.62.1.20"


def _target(name: str, address: str, role: Role, **declared: object) -> Target:
    return Target.model_validate({"name": name, "address": address, "roles": [role],
                                  **declared})


@contextmanager
def test_servers(workdir: Path) -> Iterator[list[Target]]:
    """Every weak, hardened and silent server of the tests, as inventory targets."""
    cert = ca_signed_cert(workdir / "pki", "bench", "127.62.1.11")
    token = workdir / "token"
    token.write_text("bench-only-token\n")
    with running(
            pacs_weak=lambda: start_orthanc(WEAK, "127.62.1.10", workdir / "pacs-weak"),
            pacs_hardened=lambda: start_orthanc(HARDENED, "127.62.1.11",
                                                workdir / "pacs-hardened"),
            mllp_weak=lambda: start_mllp("mllp-weak", "127.62.1.10", 2575, workdir / "mllp-weak"),
            mllp_hardened=lambda: start_mllp("mllp-hardened", "127.62.1.11", 2575,
                                             workdir / "mllp-hardened", cert.cert, cert.key),
            fhir_weak=lambda: start_fhir("fhir-weak", "127.62.1.10", 8080, workdir / "fhir-weak"),
            fhir_hardened=lambda: start_fhir("fhir-hardened", "127.62.1.11", 8080,
                                             workdir / "fhir-hardened", token, cert.cert,
                                             cert.key)) as servers, ExitStack() as stack:
        silent = [stack.enter_context(silent_listener(SILENT_HOST)) for _ in range(4)]
        yield [
            pacs_target("pacs-weak", servers["pacs_weak"]),
            pacs_target("pacs-hardened", servers["pacs_hardened"]),
            _target("pacs-silent", SILENT_HOST, Role.PACS, services=[
                {"kind": "dicom", "port": silent[0]}, {"kind": "pacs-http", "port": silent[1]}]),
            _target("hl7-weak", "127.62.1.10", Role.HL7),
            _target("hl7-hardened", "127.62.1.11", Role.HL7),
            _target("hl7-silent", SILENT_HOST, Role.HL7, services=[{"kind": "hl7",
                                                                   "port": silent[2]}]),
            _target("fhir-weak", "127.62.1.10", Role.FHIR, urls=["http://127.62.1.10:8080/"]),
            _target("fhir-hardened", "127.62.1.11", Role.FHIR,
                    urls=["https://127.62.1.11:8080/"]),
            _target("fhir-silent", SILENT_HOST, Role.FHIR,
                    urls=[f"http://{SILENT_HOST}:{silent[3]}/"]),
        ]


def _checks(target: Target) -> tuple[str, ...]:
    return tuple(check_id for role in target.roles for check_id in CHECKS_BY_ROLE[role])


def _timed(target: Target, check_ids: tuple[str, ...], context: TargetContext) -> list[tuple[str, float, str]]:
    """(check, seconds, status) for each check, through the engine's `evaluate`."""
    registry = default_registry()
    timings = []
    for check_id in check_ids:
        spec = registry.get(check_id)
        started = time.perf_counter()
        result = evaluate(PlanItem("BENCH", PlannedCheck(spec, spec.params()), target.name),
                          context)
        timings.append((check_id, time.perf_counter() - started, result.status.value))
    return timings


def per_target(targets: list[Target], repeat: int) -> None:
    """Print cold per-check times and the shared-facts time per target (medians)."""
    environment = Environment(base_dir=REPOSITORY, today=dt.date.today(), scope=Scope(),
                              timeout=TIMEOUT)
    print(f"{'target':<14} {'check':<31} {'status':<15} {'seconds':>7}")
    for target in targets:
        check_ids = _checks(target)
        cold: dict[str, list[float]] = {check_id: [] for check_id in check_ids}
        statuses: dict[str, str] = {}
        shared: list[float] = []
        for _ in range(repeat):
            for check_id in check_ids:
                [(_, seconds, statuses[check_id])] = _timed(
                    target, (check_id,), TargetContext(target, environment))
                cold[check_id].append(seconds)
            started = time.perf_counter()
            _timed(target, check_ids, TargetContext(target, environment))
            shared.append(time.perf_counter() - started)
        for check_id in check_ids:
            print(f"{target.name:<14} {check_id:<31} {statuses[check_id]:<15} "
                  f"{statistics.median(cold[check_id]):>7.3f}")
        print(f"{target.name:<14} {'all, facts shared':<31} {'':<15} "
              f"{statistics.median(shared):>7.3f}")


def whole_run(targets: list[Target], workdir: Path) -> None:
    """Time `mis-audit run` as a separate process over every target."""
    check_ids = sorted({check_id for target in targets for check_id in _checks(target)})
    profile = {"id": "pacs-bench", "title": "PACS, HL7 and FHIR checks", "version": "1",
               "controls": [{"id": f"C{index}", "title": check_id, "severity": "high",
                             "checks": [{"check": check_id}]}
                            for index, check_id in enumerate(check_ids)]}
    inventory = {"organisation": "Benchmark clinic", "scope": {"networks": ["127.62.0.0/16"]},
                 "targets": [target.model_dump(mode="json", exclude_defaults=True)
                             for target in targets]}
    # JSON is YAML: the files are written without a YAML dependency in the benchmark.
    (workdir / "profile.yaml").write_text(json.dumps(profile))
    (workdir / "inventory.yaml").write_text(json.dumps(inventory))
    seconds, finished = time_mis_audit_run(str(workdir / "profile.yaml"),
                                           workdir / "inventory.yaml", workdir / "run",
                                           "--timeout", str(TIMEOUT))
    print(f"\nmis-audit run over {len(targets)} targets, {len(check_ids)} checks: "
          f"{seconds:.2f} s (exit {finished.returncode}; 1 means not ready, as expected)")


def main() -> None:
    """Start the servers, time the checks, stop the servers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure (median)")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mis-audit-pacs-bench-") as directory:
        workdir = Path(directory)
        started = time.perf_counter()
        with test_servers(workdir) as targets:
            print(f"servers started in {time.perf_counter() - started:.1f} s\n")
            per_target(targets, arguments.repeat)
            whole_run(targets, workdir)


if __name__ == "__main__":
    main()
