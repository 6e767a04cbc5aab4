"""How long the TLS and web checks take: per TLS endpoint and per web target, weak and hardened.

    python bench/tls_web_checks.py [--repeat N]

Starts the test fixtures (nginx weak and hardened with their login backends, a hardened
PostgreSQL with STARTTLS and a hardened Redis over TLS) on 127.61.4.x, runs the checks through
the engine's `evaluate` as a run does (one fresh target context per measurement, so nothing is
cached between repeats), prints the medians, and stops every server it started by PID.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers.nginx import WebServer, start_web_server
from tests.servers.pki import make_ca, make_server_cert
from tests.servers.postgres import DatabaseCA, start_postgres
from tests.servers.redis_server import start_redis

from audit.engine import evaluate
from audit.facts.context import Environment, TargetContext
from audit.facts.tls import tls_facts
from audit.model.inventory import LoginProbe, Scope, Service, Target
from audit.plan import PlanItem
from audit.profiles import PlannedCheck
from audit.registry import default_registry
from audit.vocabulary import Role

WEB_CHECKS = ("web.https_redirect", "web.hsts", "web.version_disclosure", "web.public_exports",
              "web.login_bruteforce")
WEAK_WEB, HARDENED_WEB, HARDENED_DB = "127.61.4.10", "127.61.4.11", "127.61.4.12"


def context(target: Target, ca_file: Path | None) -> TargetContext:
    """A fresh context, as a run makes one per target."""
    return TargetContext(target, Environment(base_dir=Path.cwd(), today=dt.date.today(),
                                             scope=Scope(), ca_file=ca_file, timeout=30.0))


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    """The median wall time of `action` over `repeat` runs."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def web_checks(target: Target, ca_file: Path) -> list[str]:
    """Every web check on one target through one context (probes shared as in a run)."""
    shared = context(target, ca_file)
    registry = default_registry()
    return [evaluate(PlanItem("BENCH", PlannedCheck(registry.get(check_id),
                                                    registry.get(check_id).params()),
                              target.name), shared).status.value for check_id in WEB_CHECKS]


def site_target(site: WebServer) -> Target:
    """A web target with both front ends and the opt-in login probe."""
    return Target(name=f"web-{site.variant}", address=site.address, roles=[Role.WEB],
                  services=[Service(kind="http", port=site.http_port),
                            Service(kind="https", port=site.https_port)],
                  login=LoginProbe(url=site.login_url, username="audit.probe", max_attempts=8))


def main() -> None:
    """Start the fixtures, measure, print, stop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    work = Path(tempfile.mkdtemp(prefix="mis-audit-bench-"))
    with ExitStack() as servers:
        weak = start_web_server(work / "weak", "weak", WEAK_WEB)
        servers.callback(weak.stop)
        hardened = start_web_server(work / "hardened", "hardened", HARDENED_WEB)
        servers.callback(hardened.stop)
        ca_files, ca_cert, ca_key = make_ca(work / "db-ca")
        db_ca = DatabaseCA(ca_files.cert, {HARDENED_DB: make_server_cert(
            work / "db-ca", "db", [HARDENED_DB], ca=(ca_cert, ca_key))})
        postgres = start_postgres("hardened", HARDENED_DB, db_ca)
        servers.callback(postgres.stop)
        redis = start_redis("hardened", HARDENED_DB, db_ca)
        servers.callback(redis.stop)

        endpoints = [
            ("https, weak nginx (TLS 1.0-1.2, expired self-signed)", weak.address, "https",
             weak.https_port, weak.ca_file),
            ("https, hardened nginx (TLS 1.2-1.3)", hardened.address, "https",
             hardened.https_port, hardened.ca_file),
            ("postgresql STARTTLS, hardened", HARDENED_DB, "postgresql", postgres.port,
             db_ca.ca_file),
            ("redis TLS, hardened", HARDENED_DB, "redis", redis.port, db_ca.ca_file),
        ]
        print(f"TLS scan per endpoint (a handshake per version, median of {repeat}):")
        for label, address, kind, port, ca_file in endpoints:
            target = Target(name="bench", address=address, roles=[Role.DB],
                            services=[Service(kind=kind, port=port, tls=True)])
            seconds = median_seconds(
                lambda t=target, c=ca_file: context(t, c).gather(tls_facts), repeat)
            print(f"  {label:<55} {seconds:6.2f} s")

        print(f"Web checks per target ({len(WEB_CHECKS)} checks, median of {repeat}):")
        for site in (weak, hardened):
            statuses = web_checks(site_target(site), site.ca_file)
            seconds = median_seconds(
                lambda s=site: web_checks(site_target(s), s.ca_file), repeat)
            print(f"  {site.variant:<10} {seconds:6.2f} s   {dict(zip(WEB_CHECKS, statuses))}")


if __name__ == "__main__":
    main()
