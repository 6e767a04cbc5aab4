"""A real sshd serving a host whose /etc, /srv and /var/lib are a test tree, not this
machine's.

The weak and hardened host trees live in `tests/hosts/`; `host_tree()` copies one and gives
its files the modes git cannot store. `start_ssh_host()` builds a full /etc for the remote
host (this machine's /etc, minus every file the host checks read, plus the tree, plus an
`auditor` account), then starts `/usr/sbin/sshd -D -e` inside `unshare --mount` with that
/etc and the tree's /srv and /var/lib bind-mounted: only that sshd and its sessions see
them.

The live commands the host probes run (`auditctl -l`, `nft list ruleset`, `lsblk`, ...) would
answer with this machine's kernel and packages. On the test host they are stand-ins, laid
over /usr/sbin and /usr/bin: each prints what the real command printed on such a host
(`tests/hosts/commands/VARIANT/NAME`), or says it is not installed. sshd itself is real, and
/proc (listening sockets) stays this machine's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from audit.transports.reads import declared_reads
from tests.servers.base import ServerProcess, require_binary, start_server

HOSTS = Path(__file__).resolve().parent.parent / "hosts"
RECORDED_COMMANDS = HOSTS / "commands"
AUDITOR = "auditor"
AUDITOR_UID = 64163
# An administrative account for the fix tests only (ansible-playbook logs in as it): uid 0,
# so that it needs no sudoers line the host checks would see.
ADMIN = "mis-fixer"
SHADOW_GID = 42
# Everything the host checks read: removed from the copy of this machine's /etc, so that
# the remote host shows only what its tree holds.
MANAGED = ("ssh/sshd_config.d", "sudoers.d", "crypttab", "fstab", "audit", "nftables.conf",
           "iptables", "sysconfig", "postgresql", "mysql", "my.cnf", "my.cnf.d", "redis",
           "redis.conf", "chrony", "chrony.conf", "ntp.conf", "ntpsec", "systemd/timesyncd.conf",
           "systemd/system/multi-user.target.wants", "systemd/system/sysinit.target.wants",
           "orthanc")
# as Debian's auditd leaves it: the audit account cannot look inside
AUDIT_MODES = {"etc/audit": 0o750, "etc/audit/rules.d": 0o750}
MODES = {
    "weak": {"srv/mis": 0o755, "srv/mis/data": 0o755, "srv/mis/data/patient-0001.txt": 0o644},
    "hardened": {"srv/mis": 0o750, "srv/mis/data": 0o750,
                 "srv/mis/data/patient-0001.txt": 0o640, **AUDIT_MODES},
    "vendor": {"var/lib/medsoft": 0o750, "var/lib/medsoft/pgsql": 0o700,
               "var/lib/medsoft/dicom": 0o750, **AUDIT_MODES},
}
# A variant written as changes to another: its files replace the base's, and the base's
# paths it lists are removed. Its recorded commands default to the base's too.
BASES = {"vendor": ("hardened", ("srv/mis", "etc/sudoers.d/it-admins",
                                "etc/audit/rules.d/mis.rules"))}


def host_tree(variant: str, destination: Path) -> Path:
    """A copy of `tests/hosts/VARIANT` (over its base's) with its data modes applied; its
    own /srv and /var/lib, empty where the tree has none."""
    base, removed = BASES.get(variant, (None, ()))
    if base is not None:
        shutil.copytree(HOSTS / base, destination, symlinks=True)
        for relative in removed:
            path = destination / relative
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.copytree(HOSTS / variant, destination, symlinks=True, dirs_exist_ok=True)
    for own in ("srv", "var/lib"):
        (destination / own).mkdir(parents=True, exist_ok=True)
    for relative, mode in MODES[variant].items():
        os.chmod(destination / relative, mode)
    return destination


def _recorded(variant: str, name: str) -> Path:
    recorded = RECORDED_COMMANDS / variant / name
    base = BASES.get(variant, (None, ()))[0]
    return recorded if recorded.exists() or base is None else _recorded(base, name)


def keygen(path: Path) -> str:
    """Make an ed25519 key pair without passphrase; return the public key line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f",
                    str(path)], check=True, stdin=subprocess.DEVNULL)
    return path.with_suffix(".pub").read_text().strip()


def _merge_accounts(etc: Path, tree_etc: Path, name: str, *extra: str) -> None:
    """This machine's entries, the tree's entries replacing them by name, and `extra`."""
    entries: dict[str, str] = {}
    for source in (Path("/etc") / name, tree_etc / name):
        if source.exists():
            for line in source.read_text().splitlines():
                if line.strip():
                    entries[line.split(":", 1)[0]] = line
    for line in extra:
        entries[line.split(":", 1)[0]] = line
    (etc / name).write_text("\n".join(entries.values()) + "\n")


def remote_etc(tree: Path, workdir: Path, auditor_public_key: str,
               admin_public_key: str | None = None) -> Path:
    """The /etc the remote host will show (with the admin account when given its key)."""
    etc = workdir / "remote-etc"
    shutil.copytree("/etc", etc, symlinks=True, ignore_dangling_symlinks=True)
    for relative in MANAGED:
        target = etc / relative
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    shutil.copytree(tree / "etc", etc, symlinks=True, dirs_exist_ok=True)
    passwd = [f"{AUDITOR}:x:{AUDITOR_UID}:{AUDITOR_UID}:audit:/nonexistent:/bin/sh"]
    shadow = [f"{AUDITOR}:*:19000:0:99999:7:::"]
    if admin_public_key:
        home = workdir / "admin-home"
        home.mkdir(mode=0o700, exist_ok=True)
        passwd.append(f"{ADMIN}:x:0:0:fix tests:{home}:/bin/sh")
        shadow.append(f"{ADMIN}:*:19000:0:99999:7:::")
        (etc / "ssh" / f"{ADMIN}_authorized_keys").write_text(admin_public_key + "\n")
    _merge_accounts(etc, tree / "etc", "passwd", *passwd)
    _merge_accounts(etc, tree / "etc", "group", f"{AUDITOR}:x:{AUDITOR_UID}:")
    _merge_accounts(etc, tree / "etc", "shadow", *shadow)
    (etc / "ssh" / f"{AUDITOR}_authorized_keys").write_text(auditor_public_key + "\n")
    if not list((etc / "ssh").glob("ssh_host_*_key")):
        keygen(etc / "ssh" / "ssh_host_ed25519_key")   # `sshd -T` wants a host key
    os.chmod(etc, 0o755)
    os.chown(etc / "shadow", 0, SHADOW_GID)
    os.chmod(etc / "shadow", 0o640)
    os.chmod(etc / "sudoers", 0o440)
    os.chmod(etc / "sudoers.d", 0o750)
    for item in (etc / "sudoers.d").iterdir():
        os.chmod(item, 0o440)
    return etc


def stand_in_commands(variant: str, workdir: Path,
                      scripts: dict[str, str] | None = None) -> Path:
    """A tree of usr/sbin and usr/bin holding the test host's stand-in commands; `scripts`
    (an absolute path -> a shell script's body) replace or add some."""
    root = workdir / "stand-ins"
    for command in declared_reads().commands.values():
        name = command.argv[0]
        if name == "sshd":
            continue
        recorded = _recorded(variant, name)
        script = root / command.path.lstrip("/")
        script.parent.mkdir(parents=True, exist_ok=True)
        if recorded.exists() and name == "systemctl":
            body = _unit_states_script(recorded.read_text())
        elif recorded.exists():
            # inline: the audit account cannot read the test's (root-only) work directory
            body = (f"# {name} as it answered on the {variant} test host\n"
                    + (f"[ \"$(id -u)\" = 0 ] || {{ echo '{name}: must be root' >&2; exit 1; }}\n"
                       if command.needs_root else "")
                    + f"cat <<'RECORDED'\n{recorded.read_text()}RECORDED\n")
        else:
            body = f"echo '{name}: command not found' >&2\nexit 127\n"
        script.write_text("#!/bin/sh\n" + body)
        script.chmod(0o755)
    for path, body in (scripts or {}).items():
        script = root / path.lstrip("/")
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text("#!/bin/sh\n" + body)
        script.chmod(0o755)
    return root


def _unit_states_script(recorded: str) -> str:
    """`systemctl is-active UNIT...`: one state per unit asked, from "unit state" lines
    (unlisted units are inactive), exit 3 when one is not active, as systemctl does."""
    cases = "".join(f"    {unit}) echo {state};;\n" for unit, state in
                    (line.split() for line in recorded.splitlines() if line.strip()))
    return ('shift; code=0\nfor unit in "$@"; do\n  case "$unit" in\n' + cases
            + '    *) echo inactive; code=3;;\n  esac\ndone\nexit $code\n')


@dataclass
class SshHost:
    """A running remote host and what an inventory needs to reach it."""

    server: ServerProcess
    address: str
    port: int
    key_file: Path
    known_hosts: Path
    host_public_key: str
    tree: Path
    admin_key_file: Path | None = None

    def stop(self) -> None:
        """Stop sshd (its process group)."""
        self.server.stop()


def start_ssh_host(variant: str, workdir: Path, address: str, port: int = 2222,
                   commands: str | None = None, admin: bool = False,
                   scripts: dict[str, str] | None = None,
                   binds: dict[str, Path] | None = None) -> SshHost:
    """Start sshd on address:port serving the VARIANT host tree, its live commands answering
    as recorded in tests/hosts/commands/COMMANDS (default: the variant's own), with the
    `scripts` stand-ins added (see `stand_in_commands`) and each `binds` directory mounted
    at its path. `admin` adds the administrative account the fix tests log in as."""
    sshd = require_binary("/usr/sbin/sshd")
    require_binary("unshare")
    workdir.mkdir(parents=True, exist_ok=True)
    tree = host_tree(variant, workdir / "tree")
    host_key = keygen(workdir / "host_ed25519")
    auditor_key = keygen(workdir / "auditor_ed25519")
    admin_key = keygen(workdir / "admin_ed25519") if admin else None
    etc = remote_etc(tree, workdir, auditor_key, admin_key)
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text(f"[{address}]:{port} {' '.join(host_key.split()[:2])}\n")
    config = workdir / "sshd_serve.conf"
    config.write_text("\n".join([
        f"ListenAddress {address}:{port}", f"HostKey {workdir / 'host_ed25519'}", "PidFile none",
        "AuthorizedKeysFile /etc/ssh/%u_authorized_keys", "StrictModes no", "UsePAM no",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes", "PermitRootLogin prohibit-password",
        f"AllowUsers {AUDITOR}" + (f" {ADMIN}" if admin else ""), "MaxSessions 64",
        "MaxStartups 64", "LogLevel VERBOSE", "Subsystem sftp internal-sftp", ""]))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)     # sshd's privilege-separation dir
    stand_ins = stand_in_commands(commands or variant, workdir, scripts)
    overlays = " && ".join(f"mount -t overlay overlay -o lowerdir={stand_ins}/{directory}:/"
                           f"{directory} /{directory}" for directory in ("usr/sbin", "usr/bin"))
    binds = " && ".join(f"mount --bind {source} {mountpoint}" for source, mountpoint in
                        ((etc, "/etc"), (tree / "srv", "/srv"), (tree / "var/lib", "/var/lib"),
                         *((source, mountpoint) for mountpoint, source in (binds or {}).items())))
    script = f"{overlays} && {binds} && exec {sshd} -D -e -f {config}"
    server = start_server(f"sshd-{variant}", ["unshare", "--mount", "--propagation", "private",
                                              "sh", "-c", script], address, port, workdir)
    return SshHost(server, address, port, workdir / "auditor_ed25519", known_hosts, host_key, tree,
                   workdir / "admin_ed25519" if admin else None)
