"""Benchmark: review one host over SSH with every host check, and count the round trips.

Starts a real sshd (as the tests do: its own mount namespace serving the hardened host tree
from tests/hosts) on 127.63.0.30, runs the host checks through the engine against it, and
prints the wall time and the number of SSH round trips (connection set-up included).
Needs root (mount namespace), /usr/sbin/sshd and sudo.

    python bench/ssh_host_review.py [--variant weak|hardened] [--repeat N] [--no-updates]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hosts import HOST_CHECKS, LIVE_CHECKS, profile_text
from tests.servers.sshd import SshHost, start_ssh_host

from audit.engine import run_plan
from audit.facts.context import Environment, TargetContext
from audit.model.inventory import Scope, SshCredential, Target
from audit.plan import build_plan
from audit.profiles import load_profiles
from audit.registry import default_registry
from audit.transports import open_transport
from audit.transports.ssh import SshTransport

ADDRESS = "127.63.0.30"


def review(host: SshHost, profile: Path, jobs: int) -> tuple[float, int, dict[str, int]]:
    """One review: seconds, round trips, and the count of results per status."""
    credential = SshCredential(type="ssh", user="auditor", key_file=str(host.key_file),
                               known_hosts=str(host.known_hosts), sudo=True, port=host.port)
    environment = Environment(base_dir=ROOT, today=date.today(),
                              scope=Scope(networks=["127.63.0.0/16"]),  # type: ignore[list-item]
                              credentials={"auditor": credential}, timeout=60.0)
    target = Target(name="bench", address=host.address, roles=["host"], ssh="auditor")  # type: ignore[list-item]
    plan = build_plan(load_profiles([str(profile)], default_registry()), [target])
    context = TargetContext(target, environment, open_transport)
    started = time.monotonic()
    outcome = run_plan(plan, {"bench": context}, jobs=jobs, timeout=60.0)
    elapsed = time.monotonic() - started
    transport = context.transport
    trips = transport.round_trips if isinstance(transport, SshTransport) else -1
    context.close()
    statuses: dict[str, int] = {}
    for result in outcome.results:
        statuses[result.status.value] = statuses.get(result.status.value, 0) + 1
    return elapsed, trips, statuses


def main() -> None:
    """Parse the options, start sshd, review the host N times, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=["weak", "hardened"], default="hardened")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--no-updates", action="store_true",
                        help="leave out hostsys.security_updates (apt-get --simulate, seconds)")
    options = parser.parse_args()
    checks = HOST_CHECKS + tuple(c for c in LIVE_CHECKS
                                 if not (options.no_updates and c == "hostsys.security_updates"))
    with tempfile.TemporaryDirectory(prefix="mis-audit-bench-") as scratch:
        workdir = Path(scratch)
        profile = workdir / "profile.yaml"
        profile.write_text(profile_text(checks))
        host = start_ssh_host(options.variant, workdir / "host", ADDRESS)
        try:
            runs = [review(host, profile, options.jobs) for _ in range(options.repeat)]
        finally:
            host.stop()
    times = [elapsed for elapsed, _, _ in runs]
    print(f"ssh host review ({options.variant} host, {len(checks)} checks, jobs={options.jobs}, "
          f"{options.repeat} runs)")
    for index, (elapsed, trips, statuses) in enumerate(runs, start=1):
        print(f"  run {index}: {elapsed:.2f} s, {trips} round trips, results {statuses}")
    print(f"median {statistics.median(times):.2f} s; round trips per review: {runs[0][1]} "
          "(1 connection, 1 batch of files, listings and commands, 1 for the data directories, "
          "1 for apt-get when security updates are checked)")


if __name__ == "__main__":
    main()
