"""net.db_ports_reachable against real servers: nmap's TCP connect scan of a weak and a
hardened database host, declared services on other ports, targets without an address, and a
host that is down (in a network namespace of the test's own)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from tests.servers.base import require_binary
from tests.servers.nginx import run_check

from audit.facts.ports import scan_tcp_ports
from audit.model.inventory import Service, Target
from audit.vocabulary import Role, Status

if TYPE_CHECKING:  # imported for real by pytest_plugins, so that pytest rewrites its asserts
    from tests.servers.postgres import DatabaseServer

pytest_plugins = ["tests.servers.postgres", "tests.servers.mariadb", "tests.servers.redis_server",
                  "tests.servers.memcached"]
pytestmark = pytest.mark.servers

OTHER_PORT_HOST = "127.60.0.21"
EMPTY_HOST = "127.60.0.22"


def host(address: str, *services: Service) -> Target:
    return Target(name="scanned-host", address=address, roles=[Role.HOST],
                  services=list(services))


@pytest.fixture()
def postgres_on_another_port() -> Iterator[str]:
    """Something listening on 15432 that the inventory says is PostgreSQL, and on 8443."""
    from tests.servers.hostile import silent_listeners
    with silent_listeners(OTHER_PORT_HOST, [15432, 8443]) as address:
        yield address


def test_weak_host_exposes_every_database_port(
        postgres_weak: DatabaseServer, mariadb_weak: DatabaseServer, redis_weak: DatabaseServer,
        memcached_weak: DatabaseServer) -> None:
    result = run_check("net.db_ports_reachable", host(postgres_weak.address))
    assert result.status is Status.FAIL
    assert result.summary == f"memcached, mysql, postgresql, redis reachable at " \
                             f"{postgres_weak.address}"
    assert [(item["port"], item["service"]) for item in result.evidence.observed] == [
        (3306, "mysql"), (5432, "postgresql"), (6379, "redis"), (11211, "memcached")]
    assert result.evidence.details["ports_scanned"] == 11


def test_hardened_host_keeps_memcached_off_the_network(
        postgres_hardened: DatabaseServer, mariadb_hardened: DatabaseServer,
        redis_hardened: DatabaseServer, memcached_hardened: DatabaseServer) -> None:
    address = postgres_hardened.address
    exposed = run_check("net.db_ports_reachable", host(address))
    assert [item["port"] for item in exposed.evidence.observed] == [3306, 5432, 6379]
    cache_only = run_check("net.db_ports_reachable", host(address),
                           ports={11211: "memcached"})
    assert cache_only.status is Status.PASS
    assert cache_only.summary == f"none of 1 database ports reachable at {address}"


def test_declared_database_services_are_scanned_and_named(postgres_on_another_port: str) -> None:
    target = host(postgres_on_another_port, Service(kind="postgres", port=15432),
                  Service(kind="https", port=8443))
    result = run_check("net.db_ports_reachable", target)
    assert result.status is Status.FAIL
    assert result.evidence.observed == [
        {"port": 15432, "service": "postgresql", "nmap_name": "unknown"}]
    assert result.evidence.details["ports_scanned"] == 12, "8443 is not a database kind"


def test_an_empty_address_passes_quickly() -> None:
    started = time.monotonic()
    result = run_check("net.db_ports_reachable", host(EMPTY_HOST))
    assert result.status is Status.PASS
    assert time.monotonic() - started < 5


def test_a_target_without_address_is_not_applicable() -> None:
    target = Target(name="share", roles=[Role.HOST], paths=["/srv/share"])
    result = run_check("net.db_ports_reachable", target)
    assert result.status is Status.NOT_APPLICABLE
    assert result.error is not None and "no network address" in result.error.message


def test_a_host_name_that_looks_like_an_option_is_refused() -> None:
    result = run_check("net.db_ports_reachable", host("-iL/etc/passwd"))
    assert result.status is Status.ERROR
    assert result.error is not None and "not a host address" in result.error.message


def test_the_scanner_reports_only_open_ports() -> None:
    with socket.socket() as listener:
        listener.bind((EMPTY_HOST, 5432))
        listener.listen(1)
        scan = scan_tcp_ports(EMPTY_HOST, [5432, 5433], seconds=5)
    assert (scan.scanned, scan.open, scan.nmap_names) == ((5432, 5433), (5432,),
                                                          {5432: "postgresql"})


# A host that is down: inside a network namespace of the test's own, 10.99.0.2 is a neighbour
# whose packets vanish (a veth peer without an address), so every SYN goes unanswered.
DOWN_HOST = "10.99.0.2"
NAMESPACE_SETUP = (
    "ip link set lo up && ip link add v0 type veth peer name v1 && "
    "ip addr add 10.99.0.1/24 dev v0 && ip link set v0 up && ip link set v1 up && "
    f"ip neigh add {DOWN_HOST} lladdr 02:00:00:00:00:02 dev v0 && exec \"$@\""
)
DOWN_HOST_PROBES = """
import datetime, json, sys, time
from pathlib import Path
from audit.errors import FactUnavailable
from audit.facts.context import Environment, TargetContext
from audit.facts.databases import database_access
from audit.facts.ports import scan_tcp_ports
from audit.model.inventory import Scope, Target

def timed(probe):
    started = time.monotonic()
    try:
        probe()
        outcome = "finished"
    except FactUnavailable as error:
        outcome = error.reason.value
    return {"outcome": outcome, "seconds": time.monotonic() - started}

target = Target(name="down", address=sys.argv[1], roles=["db"])
environment = Environment(base_dir=Path.cwd(), today=datetime.date.today(), scope=Scope(),
                          timeout=4.0)
print(json.dumps({
    "scan": timed(lambda: scan_tcp_ports(sys.argv[1], range(1, 1001), seconds=2)),
    "databases": timed(lambda: database_access(TargetContext(target, environment))),
}))
"""


def test_a_host_that_is_down_costs_no_more_than_the_scan_budget() -> None:
    unshare = require_binary("unshare")
    command = [unshare, "--net", "sh", "-c", NAMESPACE_SETUP, "sh",
               sys.executable, "-c", DOWN_HOST_PROBES, DOWN_HOST]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert finished.returncode == 0, finished.stderr
    outcomes = json.loads(finished.stdout)
    assert outcomes["scan"]["outcome"] == "timeout", "a partial scan must not read as closed"
    assert outcomes["databases"]["outcome"] == "timeout"
    assert outcomes["scan"]["seconds"] < 4.5
    assert outcomes["databases"]["seconds"] < 4.5, "within the check's 4 s, plus start-up"


def test_an_ipv6_target_is_scanned_over_ipv6() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as listener:
        listener.bind(("::1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        result = run_check("net.db_ports_reachable", host("[::1]"), ports={port: "postgresql"})
    assert result.status is Status.FAIL
    assert result.evidence.observed[0]["port"] == port
