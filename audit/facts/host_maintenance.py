"""Upkeep an assessor expects: pending security updates and time synchronisation."""

from __future__ import annotations

import re
from dataclasses import dataclass

from audit.facts.context import TargetContext
from audit.facts.host_batch import (
    live_output,
    prefetch_host,
    present_texts,
    strip_comment,
)
from audit.facts.host_services import server_states
from audit.transports.reads import HostCommand, HostReads

# Not part of the host batch: it takes seconds, so only a profile that asks pays for it.
APT_SIMULATE = HostCommand(("apt-get", "--simulate", "--quiet", "upgrade"), "/usr/bin/apt-get",
                           batched=False)
TIME_STATUS = HostCommand(("timedatectl", "show"), "/usr/bin/timedatectl")
TIME_CONFIGS = ("/etc/chrony/chrony.conf", "/etc/chrony.conf", "/etc/systemd/timesyncd.conf",
                "/etc/ntp.conf", "/etc/ntpsec/ntp.conf")
READS = HostReads(
    purpose="pending security updates, time synchronisation",
    files=TIME_CONFIGS, commands=(APT_SIMULATE, TIME_STATUS),
)


@dataclass(frozen=True)
class PendingUpdates:
    """Upgrades apt would install now, from the host's current package lists."""

    security: list[str]
    total: int


def pending_updates(context: TargetContext) -> PendingUpdates:
    """`apt-get --simulate upgrade`: nothing is installed; offline this cannot be known."""
    output = context.transport.run(APT_SIMULATE.argv)
    return parse_apt_simulate(output.stdout)


def parse_apt_simulate(text: str) -> PendingUpdates:
    """Count the `Inst` lines, and name those coming from a security archive."""
    installs = [line for line in text.splitlines() if line.startswith("Inst ")]
    security = [line.split()[1] for line in installs if re.search(r"security", line, re.IGNORECASE)]
    return PendingUpdates(sorted(security), len(installs))


@dataclass(frozen=True)
class TimeSyncFacts:
    """Whether the clock is synchronised (live) or a time service is set up (files)."""

    source: str                    # "timedatectl show" or "files"
    synchronized: bool | None      # live answer; None when only files were read
    enabled_services: list[str]
    servers: list[str]             # "server"/"pool"/"NTP=" lines, with their locations
    running_services: list[str] | None = None   # systemctl is-active; None: not asked


def time_sync_facts(context: TargetContext) -> TimeSyncFacts:
    """timedatectl's NTPSynchronized when it answers, else enabled units and their configs."""
    transport = prefetch_host(context)
    live = live_output(transport, TIME_STATUS.argv)
    values = dict(line.partition("=")[::2] for line in (live or "").splitlines())
    if "NTPSynchronized" in values:
        return TimeSyncFacts("timedatectl show", values["NTPSynchronized"] == "yes", [], [])
    state = context.gather(server_states)["time"]
    servers = []
    for path, text in present_texts(transport, list(TIME_CONFIGS)).items():
        for number, raw in enumerate(text.splitlines(), start=1):
            line = strip_comment(raw)
            if re.match(r"^(server|pool|NTP=\S|FallbackNTP=\S)", line):
                servers.append(f"{path}:{number}: {line}")
    source = "files" if state.active is None else "files and systemctl is-active"
    return TimeSyncFacts(source, None, state.enabled, servers, state.active)
