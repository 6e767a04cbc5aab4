"""`mis-audit sudoers`: the narrowest grant the audit account needs, from the declared reads.

Every line is derived from the host probes' `READS` (`audit.transports.reads`): exact
commands with exact arguments, `cat` of exact file paths. Directories whose file names are not
known in advance get read ACLs instead of a sudoers wildcard, which would match any path.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated

import typer

from audit import __version__
from audit.transports.reads import DeclaredReads, declared_reads

CAT = "/usr/bin/cat"       # the batch reads an unreadable file with `sudo -n cat -- PATH`
WILDCARDS = "*?["


def _alias(name: str, entries: list[str]) -> list[str]:
    lines = [f"Cmnd_Alias {name} = \\"]
    lines += [f"    {entry}, \\" for entry in entries[:-1]]
    lines.append(f"    {entries[-1]}")
    return lines


def privileged_commands(reads: DeclaredReads) -> list[str]:
    """The declared commands that need root, as sudoers command specs."""
    return [f"{command.path} {' '.join(command.argv[1:])}".strip()
            for command in reads.commands.values() if command.needs_root]


def exact_files(reads: DeclaredReads) -> list[str]:
    """Declared configuration files known by exact path (the kernel's /proc is readable)."""
    return [path for probe in reads.probes for path in probe.files
            if not path.startswith("/proc/")]


def unnamed_directories(reads: DeclaredReads) -> list[str]:
    """Directories whose files are read by listing or pattern: their names are not known."""
    roots = [str(_fixed_prefix(pattern)) for probe in reads.probes for pattern in probe.globs]
    return list(dict.fromkeys([d for probe in reads.probes for d in probe.config_dirs] + roots))


def _fixed_prefix(pattern: str) -> PurePosixPath:
    parts = PurePosixPath(pattern).parts
    fixed = [part for part in parts[:next(i for i, p in enumerate(parts)
                                          if any(c in p for c in WILDCARDS))]]
    return PurePosixPath(*fixed)


def sudoers_text(reads: DeclaredReads, user: str) -> str:
    """A sudoers.d file for `user`, with the ACL advice for directories as comments."""
    lines = [
        f"# sudoers for the read-only audit account {user!r}, written by mis-audit {__version__}",
        "# from the reads its host probes declare. Install: visudo -f /etc/sudoers.d/mis-audit",
        "# Each entry allows one command with exactly these arguments. Command paths are",
        "# Debian's: check each with `command -v NAME` on the host.",
        *_alias("MIS_AUDIT_COMMANDS", privileged_commands(reads)),
        *_alias("MIS_AUDIT_FILES", [f"{CAT} -- {path}" for path in exact_files(reads)]),
        f"{user} ALL=(root) NOPASSWD: MIS_AUDIT_COMMANDS, MIS_AUDIT_FILES",
        "#",
        "# The files inside these directories are read too, but their names are not known in",
        "# advance. A sudoers wildcard (cat -- /etc/sudoers.d/*) matches any path, /etc/shadow",
        "# and disk keys included, so none is given. Grant read ACLs on exactly these",
        "# directories instead (as root, Debian package acl; d: covers files added later):",
        *(f"#   setfacl -R -m u:{user}:rX -m d:u:{user}:rX {directory}"
          for directory in unnamed_directories(reads)),
    ]
    return "\n".join(lines) + "\n"


def reads_table(reads: DeclaredReads) -> str:
    """The README's table of what each host probe reads (Markdown)."""
    rows = ["| what for | files and directories | commands (root: via `sudo -n`) |",
            "|---|---|---|"]
    for probe in reads.probes:
        places = [*probe.files, *(f"{d}/" for d in (*probe.dirs, *probe.config_dirs)),
                  *probe.globs]
        commands = [f"`{c.text}`" + (" (root)" if c.needs_root else "") for c in probe.commands]
        rows.append(f"| {probe.purpose} | {', '.join(f'`{p}`' for p in places)} | "
                    f"{', '.join(commands) or '-'} |")
    return "\n".join(rows) + "\n"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""

    @app.command("sudoers")
    def sudoers(user: Annotated[str, typer.Option("--user", "-u", help="The audit account.")]
                = "auditor") -> None:
        """Print the sudoers lines (and read ACLs) the read-only audit account needs."""
        typer.echo(sudoers_text(declared_reads(), user), nl=False)
