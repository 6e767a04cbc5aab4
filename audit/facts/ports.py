"""The network view of a target: which TCP ports answer from where the scanner sits.

A TCP connect scan by the nmap binary through python-nmap (`-sT -Pn -n`): no raw sockets, no
root, no host discovery, no reverse DNS. It is bounded in ports (a table of at most
MAX_PORTS) and in time (nmap's --host-timeout, and a hard limit on the nmap process).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from xml.etree import ElementTree

import nmap  # type: ignore[import-untyped]

from audit.errors import FactUnavailable
from audit.facts.budget import Budget
from audit.facts.context import TargetContext
from audit.messages import says
from audit.vocabulary import Reason

MAX_PORTS = 1024
# The scan gets half the check's time, so that a slow scan still ends in a verdict.
SCAN_SHARE_OF_TIMEOUT = 0.5
MIN_SCAN_SECONDS = 2
# Scans asked within this window share one nmap run, of at most this many hosts.
BATCH_WINDOW = 0.05
MAX_BATCH_HOSTS = 64


@dataclass(frozen=True)
class PortScan:
    """What a TCP connect scan of one address found."""

    address: str
    scanned: tuple[int, ...]
    open: tuple[int, ...]
    # nmap's name for each open port, from its services table (not what the port said).
    nmap_names: dict[int, str]


def scan_seconds(budget: Budget) -> int:
    """How long one scan may take (whole seconds, as nmap takes it): a share of the check's."""
    return int(budget.step(SCAN_SHARE_OF_TIMEOUT, MIN_SCAN_SECONDS, None))


def target_address(context: TargetContext) -> str:
    """The target's network address (an IPv6 one without brackets), or not_applicable when it
    has none."""
    address = (context.target.address or "").strip().strip("[]")
    if not address:
        raise FactUnavailable(Reason.UNSUPPORTED, says("target {target} has no network address",
                                                       target=repr(context.target.name)))
    return address


def _nmap_host_argument(address: str) -> tuple[str, list[str]]:
    """The address as nmap takes it, and `-6` for IPv6; refuses anything that is not a host."""
    candidate = address.strip().strip("[]")
    try:
        ip = ipaddress.ip_address(candidate)
    except ValueError:
        # A host name from the inventory's scope: never something nmap could read as options.
        if not candidate or candidate.startswith("-") or any(c.isspace() for c in candidate):
            raise FactUnavailable(Reason.CHECK_FAILED, says("not a host address: {address}",
                                                            address=repr(address))) from None
        return candidate, []
    return str(ip), ["-6"] if ip.version == 6 else []


def scan_tcp_ports(address: str, ports: Collection[int], seconds: int) -> PortScan:
    """TCP connect scan of `ports` on `address`, within `seconds`. Scans of IP addresses
    asked for at about the same time (the engine probes many targets at once) share one
    nmap process."""
    wanted = _bounded(ports)
    if not wanted:
        return PortScan(address, (), (), {})
    host, family = _nmap_host_argument(address)
    if host != address.strip().strip("[]") or not _is_ip(host):
        return _parse_scan(_run_nmap(host, family, wanted, seconds, address), host, address,
                           wanted, seconds)
    return _parse_scan(_BATCHER.scan(host, tuple(family), wanted, seconds), host, address,
                       wanted, seconds)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass
class _Batch:
    """The hosts of one coming nmap run, and what it gave them."""

    hosts: list[str] = field(default_factory=list)
    seconds: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    scanner: nmap.PortScanner | None = None
    failure: FactUnavailable | None = None


class _ScanBatcher:
    """Gathers the scans of the same ports asked within BATCH_WINDOW into one nmap run: the
    first asker waits the window, runs nmap over every host gathered, and hands each its
    part. A failed run is every member's failure."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[tuple[tuple[str, ...], tuple[int, ...]], _Batch] = {}

    def scan(self, host: str, family: tuple[str, ...], ports: tuple[int, ...],
             seconds: int) -> nmap.PortScanner:
        key = (family, ports)
        with self._lock:
            batch = self._open.get(key)
            leader = batch is None or len(batch.hosts) >= MAX_BATCH_HOSTS
            if leader:
                batch = self._open[key] = _Batch()
            assert batch is not None
            batch.hosts.append(host)
            batch.seconds = max(batch.seconds, seconds)
        if leader:
            time.sleep(BATCH_WINDOW)
            with self._lock:
                if self._open.get(key) is batch:
                    del self._open[key]
            self._run(batch, list(family), ports)
        elif not batch.done.wait(batch.seconds * 2 + BATCH_WINDOW + MIN_SCAN_SECONDS):
            raise FactUnavailable(Reason.TIMEOUT, says("the port scan of {hosts} took over "
                                                       "{seconds} s", hosts=host, seconds=seconds))
        if batch.failure is not None:
            raise batch.failure
        assert batch.scanner is not None
        return batch.scanner

    @staticmethod
    def _run(batch: _Batch, family: list[str], ports: tuple[int, ...]) -> None:
        try:
            batch.scanner = _run_nmap(" ".join(batch.hosts), family, ports, batch.seconds,
                                      ", ".join(batch.hosts[:3]) + (" ..." if len(batch.hosts) > 3
                                                                    else ""),
                                      group=len(batch.hosts))
        except FactUnavailable as failure:
            batch.failure = failure
        finally:
            batch.done.set()


_BATCHER = _ScanBatcher()


def scan_network(network: ipaddress.IPv4Network | ipaddress.IPv6Network, ports: Collection[int],
                 seconds: int) -> dict[str, tuple[int, ...]]:
    """One TCP connect scan of `ports` on every address of `network`: the open ports of each
    address where any is open (hosts nmap gave up on are left out)."""
    wanted = _bounded(ports)
    family = ["-6"] if network.version == 6 else []
    scanner = _run_nmap(str(network), family, wanted, seconds, str(network))
    found = {host: _open_ports(scanner, host, wanted) for host in scanner.all_hosts()}
    return {host: ports for host, ports in found.items() if ports}


def _bounded(ports: Collection[int]) -> tuple[int, ...]:
    wanted = tuple(sorted(set(ports)))
    if len(wanted) > MAX_PORTS:
        raise FactUnavailable(Reason.CHECK_FAILED, says(
            "{count} ports asked, at most {limit} are scanned", count=len(wanted),
            limit=MAX_PORTS))
    return wanted


def _run_nmap(hosts: str, family: list[str], ports: tuple[int, ...], seconds: int,
              label: str, group: int = 1) -> nmap.PortScanner:
    """nmap's connect scan (no root, no host discovery, no DNS) of `ports` on `hosts`, the
    `group` hosts of a batch scanned in parallel (each within its own host timeout)."""
    arguments = ["-sT", "-Pn", "-n", "--max-retries", "1", "--host-timeout", f"{seconds}s",
                 *(["--min-hostgroup", str(group)] if group > 1 else []), *family]
    try:
        scanner = nmap.PortScanner()
    except nmap.PortScannerError as error:
        raise FactUnavailable(Reason.NOT_FOUND, says("nmap is not usable on the scanner: {error}",
                                                     error=str(error))) from None
    try:
        scanner.scan(hosts=hosts, ports=",".join(map(str, ports)), arguments=" ".join(arguments),
                     timeout=seconds + MIN_SCAN_SECONDS)
    except nmap.PortScannerTimeout:
        raise FactUnavailable(Reason.TIMEOUT, says("the port scan of {hosts} took over "
                                                   "{seconds} s", hosts=label,
                                                   seconds=seconds)) from None
    except nmap.PortScannerError as error:
        raise FactUnavailable(Reason.CHECK_FAILED, says("nmap failed on {hosts}: {error}",
                                                        hosts=label, error=str(error))) from None
    return scanner


def _open_ports(scanner: nmap.PortScanner, host: str, wanted: tuple[int, ...]) -> tuple[int, ...]:
    """The ports of `wanted` nmap found open on `host`."""
    tcp = scanner[host].get("tcp", {})
    return tuple(port for port in wanted if tcp.get(port, {}).get("state") == "open")


def _timed_out(scanner: nmap.PortScanner, host: str) -> bool:
    """Whether nmap marked `host` `timedout` (python-nmap does not parse that attribute)."""
    try:
        report = ElementTree.fromstring(scanner.get_nmap_last_output())
    except ElementTree.ParseError:
        return True
    return any(item.get("timedout") == "true" for item in report.iter("host")
               if any(entry.get("addr") == host for entry in item.iter("address")))


def _parse_scan(scanner: nmap.PortScanner, host: str, address: str, wanted: tuple[int, ...],
                seconds: int) -> PortScan:
    hosts = scanner.all_hosts()
    found = host if host in hosts else (hosts[0] if len(hosts) == 1 else None)
    if found is None or _timed_out(scanner, found):
        # A host nmap gave up on (--host-timeout) is listed as up with no ports at all: it
        # must not read as "nothing open".
        raise FactUnavailable(Reason.TIMEOUT, says("the port scan of {hosts} did not finish "
                                                   "within {seconds} s", hosts=address,
                                                   seconds=seconds))
    tcp = scanner[found].get("tcp", {})
    open_ports = _open_ports(scanner, found, wanted)
    names = {port: str(tcp[port].get("name") or "unknown") for port in open_ports}
    return PortScan(address, wanted, open_ports, names)


# Other names inventories use for the services of a port table.
SERVICE_ALIASES = {"mariadb": "mysql", "postgres": "postgresql", "pgsql": "postgresql",
                   "sqlserver": "mssql", "mongo": "mongodb", "elastic": "elasticsearch"}


def canonical_service(kind: str) -> str:
    """The table's name for a service kind an inventory declares (`mariadb` is `mysql`)."""
    lowered = kind.strip().lower()
    return SERVICE_ALIASES.get(lowered, lowered)


class PortTable(Protocol):
    """Parameters naming the ports to scan and the service behind each."""

    @property
    def ports(self) -> Mapping[int, str]: ...


@dataclass(frozen=True)
class ServicePorts:
    """A scan of a table of service ports, and the service name behind every scanned port."""

    scan: PortScan
    services: dict[int, str]

    def open_services(self) -> list[dict[str, str | int]]:
        """Every open port with the service expected behind it (and nmap's own name)."""
        return [{"port": port, "service": self.services[port],
                 "nmap_name": self.scan.nmap_names.get(port, "unknown")}
                for port in self.scan.open]
