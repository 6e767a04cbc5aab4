"""What host probes read, fetched ahead in one batch so a remote host costs few round trips.

Every host probe first calls `prefetch_host(context)`: the first call per target asks the
transport for all the files, include directories and allow-listed commands below at
once (over SSH: one round trip); later reads are served from the transport's cache.
"""

from __future__ import annotations

from audit.errors import FactUnavailable
from audit.facts.context import TargetContext
from audit.transports.base import Prefetch, Transport
from audit.vocabulary import Reason

HOST_FILES: tuple[str, ...] = (
    "/etc/ssh/sshd_config", "/etc/pam.d/sshd", "/etc/login.defs", "/etc/shadow",
    "/etc/passwd", "/etc/group", "/etc/sudoers", "/etc/crypttab", "/etc/fstab",
    "/etc/audit/audit.rules", "/etc/nftables.conf", "/etc/iptables/rules.v4",
    "/etc/iptables/rules.v6", "/etc/sysconfig/iptables", "/etc/redis/redis.conf",
    "/etc/redis.conf", "/etc/mysql/my.cnf", "/etc/my.cnf", "/etc/chrony/chrony.conf",
    "/etc/chrony.conf", "/etc/systemd/timesyncd.conf", "/etc/ntp.conf", "/etc/ntpsec/ntp.conf",
    "/proc/net/tcp", "/proc/net/tcp6",
)
HOST_CONFIG_DIRS: tuple[str, ...] = (
    "/etc/ssh/sshd_config.d", "/etc/sudoers.d", "/etc/audit/rules.d", "/etc/pam.d",
    "/etc/mysql/conf.d",
    "/etc/mysql/mariadb.conf.d", "/etc/mysql/mysql.conf.d", "/etc/my.cnf.d",
)
HOST_DIRS: tuple[str, ...] = (
    "/etc/systemd/system/multi-user.target.wants", "/etc/systemd/system/sysinit.target.wants",
)
HOST_GLOBS: tuple[str, ...] = (
    "/etc/postgresql/*/*/postgresql.conf", "/etc/postgresql/*/*/pg_hba.conf",
    "/etc/postgresql/*/*/conf.d/*.conf",
)
HOST_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("sshd", "-T"),
    ("lsblk", "--json", "--output", "NAME,TYPE,FSTYPE,MOUNTPOINT,PKNAME"),
    ("nft", "list", "ruleset"),
    ("iptables-save",),
    ("auditctl", "-l"),
    ("timedatectl", "show"),
)
HOST_PREFETCH = Prefetch(files=HOST_FILES, dirs=HOST_DIRS, config_dirs=HOST_CONFIG_DIRS,
                         globs=HOST_GLOBS, commands=HOST_COMMANDS)


def _prefetch(context: TargetContext) -> bool:
    context.transport.prefetch(HOST_PREFETCH)
    return True


def prefetch_host(context: TargetContext) -> Transport:
    """The target's transport, after the host's usual facts were fetched in one batch."""
    context.gather(_prefetch)
    return context.transport


def optional_text(transport: Transport, path: str) -> str | None:
    """A file's text, None when it does not exist (other failures are raised)."""
    try:
        return transport.read_text(path)
    except FactUnavailable as error:
        if error.reason is Reason.NOT_FOUND:
            return None
        raise


def present_texts(transport: Transport, paths: list[str]) -> dict[str, str]:
    """The texts of those of `paths` that exist, in order (other failures are raised)."""
    found = {}
    for path, content in transport.read_files(paths).items():
        if isinstance(content, FactUnavailable):
            if content.reason is Reason.NOT_FOUND:
                continue
            raise content
        found[path] = content.decode("utf-8", errors="replace")
    return found


def dir_files(transport: Transport, directory: str) -> list[str]:
    """The regular files directly in a directory (none when it does not exist)."""
    try:
        entries = transport.list_dir(directory)
    except FactUnavailable as error:
        if error.reason is Reason.NOT_FOUND:
            return []
        raise
    return [f"{directory}/{entry.name}" for entry in entries if not entry.is_dir]


def live_output(transport: Transport, argv: tuple[str, ...]) -> str | None:
    """An allow-listed command's output when it ran and succeeded; None when it could not."""
    try:
        output = transport.run(argv)
    except FactUnavailable:
        return None
    return output.stdout if output.exit_code == 0 and output.stdout.strip() else None


def strip_comment(line: str, marker: str = "#") -> str:
    """A config line without its comment and surrounding blanks."""
    return line.split(marker, 1)[0].strip()
