"""A network namespace of its own for a test server that binds every address (Orthanc).

The namespace holds one end of a veth pair, the host the other; both ends get an address of
198.18.0.0/15, the range RFC 2544 sets aside for benchmarking on a lab network, routed only
over this pair. Inside, the server sees its own loopback and its veth address and nothing
of this machine's; outside, only the veth address reaches it. Needs root (ip netns).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from tests.servers.base import require_binary

IP = "/usr/sbin/ip"


@dataclass(frozen=True)
class Namespace:
    """A named network namespace and the address a server in it is reached at."""

    name: str
    address: str          # the namespace's end of the pair
    host_address: str     # this machine's end

    @property
    def exec_prefix(self) -> list[str]:
        """The argv prefix that runs a command inside the namespace."""
        return [IP, "netns", "exec", self.name]

    def remove(self) -> None:
        """Delete the namespace (its end of the pair, and so the pair, goes with it)."""
        subprocess.run([IP, "netns", "delete", self.name], check=False, capture_output=True)
        subprocess.run([IP, "link", "delete", self._host_link], check=False, capture_output=True)

    @property
    def _host_link(self) -> str:
        return f"{self.name[:11]}h"


def create_namespace(name: str, host_address: str, address: str) -> Namespace:
    """A fresh namespace `name` (at most 11 characters) linked to this machine by a /30:
    `host_address` here, `address` inside; a stale one of the same name is replaced."""
    require_binary(IP)
    namespace = Namespace(name, address, host_address)
    namespace.remove()
    inner = f"{name[:11]}n"
    commands = [
        [IP, "netns", "add", name],
        [IP, "link", "add", namespace._host_link, "type", "veth", "peer", "name", inner,
         "netns", name],
        [IP, "addr", "add", f"{host_address}/30", "dev", namespace._host_link],
        [IP, "link", "set", namespace._host_link, "up"],
        [*namespace.exec_prefix, IP, "addr", "add", f"{address}/30", "dev", inner],
        [*namespace.exec_prefix, IP, "link", "set", inner, "up"],
        [*namespace.exec_prefix, IP, "link", "set", "lo", "up"],
    ]
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            namespace.remove()
            raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    return namespace
