"""`mis-audit discover`: a bounded, read-only sweep of the networks a user names, written as a
draft inventory.

One nmap connect scan of the service map's common ports over each network, then every open
port named by the service map's own first messages. An address is a target only where a
service answers; a port that answers on every address of a network (a wildcard listener, as
on loopback) is that network's, reported once in a comment and on no target. Roles are
guessed from the kinds found; the draft says what was guessed and what only the user knows.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from audit.facts.dicom import PACS_HTTP_SERVICE_KIND, revealed_ae_title
from audit.facts.net import http_origin
from audit.facts.ports import scan_network
from audit.facts.services import COMMON_PORTS, DATABASE_PORTS, FoundService, identify_all

MAX_ADDRESSES = 4096          # in all the networks of one sweep
IDENTIFY_SECONDS = 3.0
# The role each kind of service suggests.
ROLE_OF_KIND = {**{kind: "db" for kind in DATABASE_PORTS.values()},
                "http": "web", "https": "web", "dicom": "pacs", "pacs-http": "pacs",
                "hl7": "hl7", "ssh": "host"}
ROLE_ORDER = ("host", "db", "web", "pacs", "hl7", "fhir")


@dataclass(frozen=True)
class Host:
    """One address where services answer, and what they are."""

    address: str
    services: tuple[FoundService, ...]
    ae_title: str | None = None       # told by the PACS's own HTTP API, without a login

    @property
    def roles(self) -> list[str]:
        """The roles its services suggest, in a stable order."""
        found = {ROLE_OF_KIND[service.kind] for service in self.services
                 if service.kind in ROLE_OF_KIND}
        return [role for role in ROLE_ORDER if role in found]


@dataclass(frozen=True)
class Sweep:
    """Every host found, and the ports that answered on every address of a network."""

    networks: tuple[str, ...]
    hosts: tuple[Host, ...]
    wildcards: dict[str, tuple[int, ...]]


def parse_networks(texts: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks named (an address is a network of one), at most MAX_ADDRESSES in all;
    ValueError says what is wrong."""
    networks = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{text!r}: expected a network (10.20.0.0/24) or an address") \
                from None
    total = sum(network.num_addresses for network in networks)
    if total > MAX_ADDRESSES:
        raise ValueError(f"{total} addresses asked: a sweep covers at most {MAX_ADDRESSES}; "
                         "name smaller networks")
    return networks


def sweep(networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
          scan_seconds: int = 60) -> Sweep:
    """Scan and identify every network (FactUnavailable when nmap cannot run)."""
    hosts: list[Host] = []
    wildcards: dict[str, tuple[int, ...]] = {}
    for network in networks:
        open_ports = scan_network(network, COMMON_PORTS, scan_seconds)
        everywhere = _on_every_address(network, open_ports)
        if everywhere:
            wildcards[str(network)] = everywhere
        for address, ports in sorted(open_ports.items(), key=lambda item: _sort_key(item[0])):
            own = [port for port in ports if port not in everywhere]
            if own:
                services = identify_all(address, own, COMMON_PORTS, IDENTIFY_SECONDS)
                hosts.append(Host(address, services, _told_ae_title(address, services)))
    return Sweep(tuple(map(str, networks)), tuple(hosts), wildcards)


def _told_ae_title(address: str, services: tuple[FoundService, ...]) -> str | None:
    """The AE title a PACS's HTTP API tells anyone who asks (the first that does)."""
    origins = [http_origin(address, found.service()) for found in services
               if found.kind == PACS_HTTP_SERVICE_KIND]
    return next(filter(None, (revealed_ae_title(origin, IDENTIFY_SECONDS)
                              for origin in origins)), None)


def _on_every_address(network: ipaddress.IPv4Network | ipaddress.IPv6Network,
                      open_ports: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    """Ports open on every scanned address of a network of more than one address."""
    if network.num_addresses < 2 or len(open_ports) < network.num_addresses:
        return ()
    common = set.intersection(*(set(ports) for ports in open_ports.values()))
    return tuple(sorted(common))


def _sort_key(address: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(address)
    return ip.version, int(ip)


def draft_inventory(found: Sweep) -> str:
    """The sweep as an inventory that validates as it is, with what to add in comments."""
    lines = [
        "# Draft written by `mis-audit discover`: review every guess before an audit.",
        "# Add what no scan can find out: credentials (ssh for hosts, logins for databases),",
        "# `login:` test accounts for web logins, trust anchors, a PACS's `ae_title`, FHIR",
        "# base `urls`, data `paths`, and the evidence documents (`mis-audit init` lists them).",
        "organisation: CHANGE ME",
        "scope:",
        f"  networks: [{', '.join(found.networks)}]",
    ]
    for network, ports in found.wildcards.items():
        lines.append(f"# on every address of {network} (a wildcard listener, left out): "
                     f"ports {', '.join(map(str, ports))}")
    lines.append("targets:" if found.hosts else "targets: []   # nothing answered")
    for host in found.hosts:
        lines += _target_lines(host)
    return "\n".join(lines) + "\n"


def _target_lines(host: Host) -> list[str]:
    roles = host.roles
    name = f"{roles[0] if roles else 'host'}-{host.address.replace('.', '-').replace(':', '-')}"
    lines = [f"  - name: {name}", f"    address: \"{host.address}\""]
    lines.append(f"    roles: [{', '.join(roles)}]" if roles else
                 "    roles: [host]   # nothing recognised: what is it?")
    if "host" in roles:
        lines.append("    # ssh: NAME   # an ssh credential, for the host review")
    if host.ae_title is not None:
        lines.append(f"    ae_title: {json.dumps(host.ae_title)}   # told by its HTTP API "
                     "without a login")
    elif "pacs" in roles:
        lines.append("    # ae_title: NAME   # the PACS's own AE title: its HTTP API hid it")
    lines.append("    services:   # found by the scan; the audit finds them again by itself")
    for found in host.services:
        service = found.service()
        tls = ", tls: true" if service.tls else ""
        sure = "" if found.confirmed else ", unconfirmed"
        lines.append(f"      - {{kind: {service.kind}, port: {service.port}{tls}}}   "
                     f"# {_comment(found.how)}{sure}")
    return lines


def _comment(text: str) -> str:
    """A fixed phrase of the service map, safe on one comment line."""
    return " ".join(text.split()).replace("#", "")
