"""The CPU a whole `mis-audit run` spends over real web test servers.

    python bench/web_run_cpu.py [--sites N] [--repeat N] [--tls]

Starts N nginx sites (weak and hardened alternately, with their login backends) on 127.61.5.x,
writes an inventory and a profile with the web checks (and the TLS checks with --tls), runs
`mis-audit run` as its own process, and prints its wall time and CPU time (user + system,
read from wait4, so child processes count), median of the repeats. Stops every server it
started by PID.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers.nginx import WebServer, start_web_server

REPOSITORY = Path(__file__).resolve().parents[1]
WEB_CHECKS = ["web.https_redirect", "web.hsts", "web.version_disclosure", "web.public_exports",
              "web.login_bruteforce"]
TLS_CHECKS = ["tls.protocol_versions", "tls.certificate"]


def write_inputs(work: Path, sites: list[WebServer], checks: list[str]) -> None:
    """The profile (one control per check) and the inventory (one target per site)."""
    controls = "".join(f"  - {{id: C{index}, title: {check}, severity: high, "
                       f"checks: [{{check: {check}}}]}}\n" for index, check in enumerate(checks))
    (work / "profile.yaml").write_text(
        f"id: bench-web\ntitle: web bench\nversion: '1'\ncontrols:\n{controls}")
    targets = "".join(
        f"  - {{name: site{index}-{site.variant}, address: {site.address}, roles: [web], "
        f"urls: ['{site.https_url}'], login: {{url: '{site.login_url}', "
        f"username: audit.probe, max_attempts: 4}}}}\n" for index, site in enumerate(sites))
    (work / "inventory.yaml").write_text(
        "organisation: Bench\nscope: {networks: [127.61.5.0/24]}\n"
        f"trust: {{ca_file: {sites[-1].ca_file}}}\ntargets:\n{targets}")


def timed_run(work: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the process and its children) of one run."""
    argv = [sys.executable, "-m", "audit.cli", "run", "-p", str(work / "profile.yaml"), "-i",
            str(work / "inventory.yaml"), "-o", str(work / "out"), "--format", "json",
            "--history", "off", "--quiet"]
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=REPOSITORY, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        print(f"run ended with exit {code}", file=sys.stderr)
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    """Start the sites, measure, print, stop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tls", action="store_true", help="add the TLS checks")
    arguments = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mis-audit-bench-web-"))
    checks = WEB_CHECKS + (TLS_CHECKS if arguments.tls else [])
    with ExitStack() as servers:
        sites = []
        for index in range(arguments.sites):
            variant = "weak" if index % 2 == 0 else "hardened"
            site = start_web_server(work / f"site{index}", variant, f"127.61.5.{10 + index}")
            servers.callback(site.stop)
            sites.append(site)
        write_inputs(work, sites, checks)
        figures = [timed_run(work) for _ in range(arguments.repeat)]
    wall = statistics.median(item[0] for item in figures)
    cpu = statistics.median(item[1] for item in figures)
    print(f"{arguments.sites} sites, {len(checks)} checks each, median of {arguments.repeat}: "
          f"wall {wall:.2f} s, CPU {cpu:.2f} s ({cpu / arguments.sites * 1000:.0f} ms per "
          "target)")


if __name__ == "__main__":
    main()
