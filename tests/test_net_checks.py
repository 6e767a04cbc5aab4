"""net.db_ports_reachable on hand-built scans: exact statuses and evidence, no servers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from audit.facts.ports import PortScan, ServicePorts, canonical_service
from audit.vocabulary import Status
from checks.net import ReachablePortsParams, db_ports_reachable

SERVICES = {5432: "postgresql", 6379: "redis", 11211: "memcached", 15432: "postgresql"}


def scan(*open_ports: int) -> ServicePorts:
    names = {port: "postgresql" if port == 5432 else "unknown" for port in open_ports}
    return ServicePorts(PortScan("10.0.0.5", tuple(sorted(SERVICES)), open_ports, names),
                        SERVICES)


def test_open_database_ports_fail_naming_every_port_and_service() -> None:
    finding = db_ports_reachable(scan(5432, 15432), ReachablePortsParams())
    assert finding.status is Status.FAIL
    assert finding.summary == "postgresql reachable at 10.0.0.5"
    assert finding.observed == [
        {"port": 5432, "service": "postgresql", "nmap_name": "postgresql"},
        {"port": 15432, "service": "postgresql", "nmap_name": "unknown"}]
    assert finding.details == {"address": "10.0.0.5", "ports_scanned": 4}


def test_no_open_database_port_passes() -> None:
    finding = db_ports_reachable(scan(), ReachablePortsParams())
    assert finding.status is Status.PASS
    assert finding.summary == "none of 4 database ports reachable at 10.0.0.5"
    assert finding.observed == []


def test_default_table_names_the_usual_database_ports() -> None:
    ports = ReachablePortsParams().ports
    assert {5432, 3306, 1433, 1521, 27017, 6379, 11211, 9200, 5984, 8123} <= set(ports)


def test_port_table_is_bounded_and_validated() -> None:
    with pytest.raises(ValidationError, match="not TCP ports"):
        ReachablePortsParams(ports={70000: "x"})
    with pytest.raises(ValidationError, match="at most"):
        ReachablePortsParams(ports={port: "x" for port in range(1, 2000)})


def test_inventory_kinds_map_to_table_names() -> None:
    assert [canonical_service(kind) for kind in ("MariaDB", "postgres", "redis")] == [
        "mysql", "postgresql", "redis"]
