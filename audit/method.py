"""How and from where a run looked, for the report's method section (ISO 19011 asks for it):
the scanner host, the address it reaches each target from, the tools and their versions,
the ports the service scan covers and the commands a host review may run.

Nothing here contacts a target: the source address is what the kernel's routing picks for
a UDP socket that is connected but never sends.
"""

from __future__ import annotations

import platform
import re
import socket
import ssl
import subprocess
from functools import cache
from importlib import metadata

from audit.facts.services import COMMON_PORTS
from audit.model.results import RunMethod
from audit.transports.reads import declared_reads

# The libraries that speak to targets, by distribution name.
PROTOCOL_LIBRARIES = ("sslyze", "cryptography", "paramiko", "requests", "psycopg", "pymysql",
                      "redis", "pymemcache", "pynetdicom", "python-nmap")
NMAP_SECONDS = 5


def run_method() -> RunMethod:
    """This machine, its tools and what the probes may do."""
    commands = [f"{command.text}{' (root: sudo -n)' if command.needs_root else ''}"
                for command in declared_reads().commands.values()]
    return RunMethod(scanner_host=socket.gethostname(), tools=tool_versions(),
                     ports_scanned=sorted(COMMON_PORTS), host_commands=commands)


@cache
def tool_versions() -> dict[str, str]:
    """Python, OpenSSL, nmap and the protocol libraries, each with its version."""
    versions = {"python": platform.python_version(), "openssl": ssl.OPENSSL_VERSION,
                "nmap": _nmap_version()}
    for name in PROTOCOL_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _nmap_version() -> str:
    try:
        done = subprocess.run(["nmap", "--version"], capture_output=True, text=True,
                              timeout=NMAP_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    found = re.search(r"Nmap version (\S+)", done.stdout)
    return found.group(1) if found else "unknown"


def source_address(address: str | None) -> str | None:
    """The local address this machine reaches `address` from (None: not routable here)."""
    if not address:
        return None
    try:
        family, kind, proto, _, peer = socket.getaddrinfo(address.strip("[]"), 9,
                                                          type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.connect(peer)          # UDP: chooses the route, sends nothing
            return str(probe.getsockname()[0])
    except OSError:
        return None
