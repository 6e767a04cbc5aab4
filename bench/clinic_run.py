"""Whole-process time of `mis-audit run -p kz-mis-baseline` over a small clinic of real test
servers (12 targets: databases, web, PACS, HL7, FHIR, two SSH hosts; weak and hardened).

    sudo python bench/clinic_run.py [--runs 3] [--jobs 8]

Prints the time to start the servers, each run's wall time, the median, and the slowest
checks of the last run. Loopback addresses only (127.69.0.0/24).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from tests.servers.clinic import running_clinic  # noqa: E402
from whole_run import time_mis_audit_run  # noqa: E402


def main() -> None:
    """Start the clinic, time the runs, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=8)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mis-audit-clinic-") as temporary:
        work = Path(temporary)
        started = time.monotonic()
        with running_clinic(work) as clinic:
            print(f"servers started in {time.monotonic() - started:.1f} s "
                  f"({len(clinic.targets)} targets)")
            times = [time_mis_audit_run("kz-mis-baseline", clinic.inventory, work / f"run-{index}",
                                        "--jobs", str(arguments.jobs),
                                        environment=clinic.environment)[0]
                     for index in range(arguments.runs)]
            for index, seconds in enumerate(times, start=1):
                print(f"run {index}: {seconds:.2f} s")
            print(f"median whole-process time: {statistics.median(times):.2f} s "
                  f"(--jobs {arguments.jobs})")
            last = json.loads((work / f"run-{arguments.runs - 1}" / "results.json").read_text())
            print(f"results per run: {len(last['results'])}, controls: {len(last['controls'])}")
            print("slowest checks of the last run:")
            for result in sorted(last["results"], key=lambda r: -r["duration_ms"])[:8]:
                print(f"  {result['duration_ms'] / 1000:6.2f} s  {result['check']} @ "
                      f"{result['target']}")


if __name__ == "__main__":
    main()
