"""The network view: what a target exposes to where the scanner sits."""

from __future__ import annotations

from pydantic import Field, field_validator

from audit.facts.ports import MAX_PORTS, ServicePorts
from audit.facts.services import service_ports
from audit.messages import says
from audit.registry import Finding, Params, check, failed, passed
from audit.vocabulary import Role
from checks.host import DATABASE_PORTS


class ReachablePortsParams(Params):
    """The database and cache ports that must not answer from the scanner's position, each
    with the service behind it; a target's declared services of these kinds are added."""

    ports: dict[int, str] = Field(default_factory=lambda: dict(DATABASE_PORTS))

    @field_validator("ports")
    @classmethod
    def _bounded_table(cls, ports: dict[int, str]) -> dict[int, str]:
        if len(ports) > MAX_PORTS:
            raise ValueError(f"at most {MAX_PORTS} ports")
        bad = [port for port in ports if not 1 <= port <= 65535]
        if bad:
            raise ValueError(f"not TCP ports: {bad}")
        return ports


@check(id="net.db_ports_reachable", title="No database or cache port answers from the network",
       applies_to=[Role.DB, Role.HOST, Role.PACS, Role.WEB], probe=service_ports,
       params=ReachablePortsParams)
def db_ports_reachable(found: ServicePorts, p: ReachablePortsParams) -> Finding:
    """A database port that answers from a workstation or user network is one weak password,
    one unpatched server or one `trust` line away from patients' records being read or
    changed. Run the audit from the network the risk comes from (user or internet side):
    every port listed should be closed or filtered there. Bind databases and caches to the
    interface the application servers use and deny their ports in the firewall."""
    exposed = found.open_services()
    expected = "closed or filtered from this network"
    scanned = len(found.scan.scanned)
    if exposed:
        names = sorted({str(item["service"]) for item in exposed})
        return failed(says("{services} reachable at {address}", services=", ".join(names),
                           address=found.scan.address),
                      observed=exposed, expected=expected, address=found.scan.address,
                      ports_scanned=scanned)
    return passed(says("none of {count} database ports reachable at {address}", count=scanned,
                       address=found.scan.address),
                  observed=[], expected=expected, address=found.scan.address,
                  ports_scanned=scanned)
