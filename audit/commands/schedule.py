"""`mis-audit schedule`: ready-to-install units for a nightly run, left to the schedulers ops
already run (a systemd timer or cron); mis-audit itself never runs as a daemon.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from audit.commands import fail
from audit.outputs import OutputError, private_directory, write_atomically

UNIT = "mis-audit"
# `not ready` (1) is a standing state, not a failed job; a regression (3) fails the unit, so
# OnFailure= or a monitor alerts on change.
RUN_OPTIONS = "--format json,html,sarif,junit --quiet --log-format json --fail-on-regression"


def _program() -> str:
    """This installation's mis-audit: on PATH, else the script beside this Python."""
    beside = Path(sys.executable).with_name("mis-audit")
    found = shutil.which("mis-audit") or (str(beside) if beside.exists() else None)
    return str(Path(found).absolute()) if found else "/usr/local/bin/mis-audit"


def service_unit(program: str, inventory: str, profiles: list[str], user: str) -> str:
    """The oneshot service: a dedicated user, a read-only system, state in StateDirectory."""
    profile_options = "".join(f" -p {profile}" for profile in profiles)
    return f"""# Install: useradd --system --home-dir /var/lib/{UNIT} --shell /usr/sbin/nologin {user}
#   cp {UNIT}.service {UNIT}.timer /etc/systemd/system/ && systemctl daemon-reload
#   systemctl enable --now {UNIT}.timer      (runs land in /var/lib/{UNIT}/mis-audit-runs/)
[Unit]
Description=mis-audit: security audit of the medical information system ({inventory})
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
User={user}
Group={user}
StateDirectory={UNIT}
StateDirectoryMode=0700
WorkingDirectory=/var/lib/{UNIT}
Environment=MIS_AUDIT_HISTORY=/var/lib/{UNIT}/history.sqlite
ExecStart={program} run -i {inventory}{profile_options} {RUN_OPTIONS}
SuccessExitStatus=1
UMask=0077
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
NoNewPrivileges=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
LockPersonality=yes
CapabilityBoundingSet=
"""


def timer_unit(at: str) -> str:
    """The nightly timer; a run missed while the machine was off starts at the next boot."""
    return f"""[Unit]
Description=mis-audit: nightly security audit

[Timer]
OnCalendar=*-*-* {at}:00
RandomizedDelaySec=15m
Persistent=true

[Install]
WantedBy=timers.target
"""


def cron_line(program: str, inventory: str, profiles: list[str], user: str, at: str) -> str:
    """One /etc/cron.d line doing what the service does."""
    hour, minute = at.split(":")
    profile_options = "".join(f" -p {profile}" for profile in profiles)
    return (f"{int(minute)} {int(hour)} * * * {user} cd /var/lib/{UNIT} && "
            f"MIS_AUDIT_HISTORY=/var/lib/{UNIT}/history.sqlite {program} run -i {inventory}"
            f"{profile_options} {RUN_OPTIONS}\n")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""

    @app.command("schedule")
    def schedule(
        inventory: Annotated[str, typer.Option("--inventory", "-i", help="The inventory the nightly run audits.")] = "/etc/mis-audit/inventory.yaml",
        profile: Annotated[list[str] | None, typer.Option("--profile", "-p", help="Profile id or path; repeat to combine.")] = None,
        systemd: Annotated[bool, typer.Option("--systemd", help="A service and a timer (the default).")] = False,
        cron: Annotated[bool, typer.Option("--cron", help="An /etc/cron.d line instead.")] = False,
        user: Annotated[str, typer.Option("--user", help="The dedicated account the run uses.")] = UNIT,
        at: Annotated[str, typer.Option("--at", help="Time of day, HH:MM.")] = "02:30",
        output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the files into this directory instead of printing them.")] = None,
    ) -> None:
        """Print (or write) units for a nightly run: systemd service + timer, or a cron line."""
        hour, _, minute = at.partition(":")
        if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
            fail(f"--at {at!r}: expected HH:MM")
        if systemd and cron:
            fail("choose --systemd or --cron")
        profiles, program = profile or [], _program()
        files = {f"{UNIT}.cron": cron_line(program, inventory, profiles, user, at)} if cron else {
            f"{UNIT}.service": service_unit(program, inventory, profiles, user),
            f"{UNIT}.timer": timer_unit(at)}
        if output is None:
            for name, text in files.items():
                typer.echo(f"# --- {name} ---\n{text}")
            return
        try:
            directory = private_directory(output)
            for name, text in files.items():
                typer.echo(f"wrote {write_atomically(directory / name, text)}")
        except OutputError as error:
            fail(str(error))
