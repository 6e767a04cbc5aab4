"""Which servers a host has switched on, from its configuration (systemd's wants
directories) and, where systemctl answers, from the running system.

A server's configuration files (a Redis config left on a host without Redis) say nothing
about the host unless that server is enabled or running; a unit enabled but not running is
a disagreement between configuration and the running system, shown and never passed.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.errors import FactUnavailable
from audit.facts.context import TargetContext
from audit.facts.host_batch import dir_files, prefetch_host
from audit.transports.reads import HostCommand, HostReads

UNIT_WANTS = ("/etc/systemd/system/multi-user.target.wants",
              "/etc/systemd/system/sysinit.target.wants")
# The units that run each server, as Debian (and the upstream packages) name them.
SERVER_UNITS: dict[str, tuple[str, ...]] = {
    "postgresql": ("postgresql.service",),
    "mysql": ("mariadb.service", "mysql.service", "mysqld.service"),
    "redis": ("redis-server.service", "redis.service"),
    "time": ("chrony.service", "chronyd.service", "systemd-timesyncd.service", "ntp.service",
             "ntpd.service", "ntpsec.service", "openntpd.service"),
}
ALL_UNITS = tuple(unit for units in SERVER_UNITS.values() for unit in units)
# One line per unit, in order; its exit code is non-zero as soon as one is not active.
UNITS_ACTIVE = HostCommand(("systemctl", "is-active", *ALL_UNITS), "/usr/bin/systemctl")
READS = HostReads(purpose="which servers are enabled (wants links) and running (systemctl)",
                  dirs=UNIT_WANTS, commands=(UNITS_ACTIVE,))


@dataclass(frozen=True)
class ServerState:
    """One server's units: enabled in the configuration, active in the running system."""

    enabled: list[str]
    active: list[str] | None        # None: the running system could not be asked (offline)

    @property
    def switched_on(self) -> bool:
        """Enabled or running: its configuration is the host's."""
        return bool(self.enabled or self.active)

    @property
    def stopped_but_enabled(self) -> list[str]:
        """Units the configuration starts that the running system does not run."""
        return [] if self.active is None else [u for u in self.enabled if u not in self.active]

    def describe(self) -> str:
        """Where the state was seen, for the evidence."""
        enabled = ", ".join(self.enabled) or "no unit"
        running = "not asked (no running system)" if self.active is None else \
            (", ".join(self.active) or "none") + " (systemctl is-active)"
        return f"enabled: {enabled} (systemd wants links); running: {running}"


def server_states(context: TargetContext) -> dict[str, ServerState]:
    """The state of each server kind of SERVER_UNITS on the host."""
    transport = prefetch_host(context)
    enabled = {path.rsplit("/", 1)[1] for wants in UNIT_WANTS
               for path in dir_files(transport, wants)}
    active = _active_units(context)
    return {kind: ServerState(sorted(set(units) & enabled),
                              None if active is None else [u for u in units if u in active])
            for kind, units in SERVER_UNITS.items()}


def _active_units(context: TargetContext) -> set[str] | None:
    try:
        output = prefetch_host(context).run(UNITS_ACTIVE.argv)
    except FactUnavailable:
        return None
    states = output.stdout.split()
    if len(states) != len(ALL_UNITS):       # no systemd as init: it says so, not per unit
        return None
    return {unit for unit, state in zip(ALL_UNITS, states, strict=True) if state == "active"}
