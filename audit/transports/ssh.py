"""The SSH transport (paramiko): a remote host read through one connection, few round trips.

Host keys are verified against the credential's known_hosts; an unknown key is refused
unless the operator set `accept_new_host_keys` (a changed key is always refused). Files,
directory listings and allow-listed commands are fetched by one generated POSIX sh script
per batch (`Prefetch`), whose records are base64-framed so that nothing a host holds can
forge a record. `sudo -n` is used only for `PRIVILEGED_COMMANDS` and for `cat` of a file
the account cannot read, and only when the credential says `sudo: true`.
"""

from __future__ import annotations

import base64
import shlex
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import paramiko  # type: ignore[import-untyped]

from audit.errors import FactUnavailable
from audit.transports.base import (
    MAX_FILE_BYTES,
    PRIVILEGED_COMMANDS,
    CommandOutput,
    DirEntry,
    Prefetch,
    Transport,
)
from audit.vocabulary import Reason

if TYPE_CHECKING:
    from audit.facts.context import Environment
    from audit.model.inventory import SshCredential, Target

MAX_CONNECT_SECONDS = 10.0
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
FILE_STATUS = {"missing": Reason.NOT_FOUND, "denied": Reason.PERMISSION_DENIED,
               "notfile": Reason.NOT_FOUND}


class _AcceptNewHostKey(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    """StrictHostKeyChecking=accept-new: remember an unknown key; a changed one still fails."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        with open(self.known_hosts, "a", encoding="ascii") as handle:
            handle.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


class SshTransport(Transport):
    """A remote host over SSH; connects on first use and remembers a failure to connect."""

    kind = "ssh"

    def __init__(self, address: str, credential: SshCredential, key_file: Path | None,
                 known_hosts: Path, timeout: float) -> None:
        self.address = address
        self.credential = credential
        self.key_file = key_file
        self.known_hosts = known_hosts
        # Half the check timeout: a silent host is reported as such, not as a slow check.
        self.connect_timeout = min(timeout / 2, MAX_CONNECT_SECONDS)
        self.command_timeout = timeout
        self.round_trips = 0
        self._client: paramiko.SSHClient | None = None
        self._failure: FactUnavailable | None = None
        self._lock = threading.Lock()
        self._batch_lock = threading.Lock()
        self._files: dict[str, bytes | FactUnavailable] = {}
        self._dirs: dict[str, list[DirEntry] | FactUnavailable] = {}
        self._globs: dict[str, list[str]] = {}
        self._commands: dict[tuple[str, ...], CommandOutput | FactUnavailable] = {}

    def describe(self) -> str:
        return (f"ssh {self.credential.user}@{self.address}:{self.credential.port}"
                + (" with sudo -n for read-only commands" if self.credential.sudo else ""))

    # --- connection -------------------------------------------------------------------

    def _connection(self) -> paramiko.SSHClient:
        with self._lock:
            if self._failure is not None:
                raise self._failure
            if self._client is None:
                try:
                    self._client = self._connect()
                except FactUnavailable as failure:
                    self._failure = failure   # one timeout per host, not one per check
                    raise
            return self._client

    def _connect(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        try:
            if self.known_hosts.is_file():
                client.load_host_keys(str(self.known_hosts))
        except (OSError, paramiko.SSHException) as error:
            raise FactUnavailable(Reason.REFUSED, f"known_hosts {self.known_hosts} is "
                                  f"unreadable: {error}") from error
        client.set_missing_host_key_policy(
            _AcceptNewHostKey(self.known_hosts) if self.credential.accept_new_host_keys
            else paramiko.RejectPolicy())
        self.round_trips += 1
        started = time.monotonic()
        try:
            client.connect(self.address, port=self.credential.port,
                           username=self.credential.user, pkey=self._private_key(),
                           allow_agent=self.key_file is None, look_for_keys=False,
                           timeout=self.connect_timeout, banner_timeout=self.connect_timeout,
                           auth_timeout=self.connect_timeout, channel_timeout=self.connect_timeout)
        except Exception as error:
            client.close()
            raise self._connect_failure(error, time.monotonic() - started) from error
        return client

    def _private_key(self) -> paramiko.PKey | None:
        if self.key_file is None:
            return None
        try:
            return paramiko.PKey.from_path(self.key_file)
        except paramiko.PasswordRequiredException as error:
            raise FactUnavailable(Reason.REFUSED, f"key file {self.key_file} is protected by "
                                  "a passphrase: load it into ssh-agent instead") from error
        except (OSError, paramiko.SSHException, ValueError) as error:
            raise FactUnavailable(Reason.REFUSED, f"key file {self.key_file} cannot be "
                                  f"loaded: {type(error).__name__}") from error

    def _connect_failure(self, error: Exception, elapsed: float) -> FactUnavailable:
        where = f"{self.address}:{self.credential.port}"
        if isinstance(error, paramiko.BadHostKeyException):
            return FactUnavailable(Reason.REFUSED, f"{where}: the host key CHANGED (it does not "
                                   f"match {self.known_hosts}); refusing to connect")
        if isinstance(error, paramiko.SSHException) and "not found in known_hosts" in str(error):
            return FactUnavailable(Reason.REFUSED, f"{where}: unknown host key (not in "
                                   f"{self.known_hosts}); add it after checking its fingerprint,"
                                   " or set accept_new_host_keys")
        if isinstance(error, paramiko.AuthenticationException):
            return FactUnavailable(Reason.PERMISSION_DENIED, f"{where}: authentication as "
                                   f"{self.credential.user!r} failed")
        # paramiko reports a silent peer in several ways ("No existing session", a banner
        # error); having waited the whole timeout is what they share.
        if isinstance(error, socket.timeout | TimeoutError) or elapsed >= self.connect_timeout * 0.9:
            return FactUnavailable(Reason.TIMEOUT, f"{where}: no SSH answer within "
                                   f"{self.connect_timeout:g} s")
        if isinstance(error, FactUnavailable):
            return error
        return FactUnavailable(Reason.UNREACHABLE, f"{where}: {type(error).__name__}: "
                               f"{str(error)[:200]}")

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # --- batches ----------------------------------------------------------------------

    def prefetch(self, request: Prefetch) -> None:
        """Fetch in one round trip whatever of `request` is not cached yet."""
        if request.commands and not (request.files or request.dirs or request.config_dirs
                                     or request.globs):
            # A lone command (apt-get takes seconds) must not hold up reads of other probes.
            self._fetch_missing(request)
            return
        with self._batch_lock:
            self._fetch_missing(request)

    def _fetch_missing(self, request: Prefetch) -> None:
        missing = Prefetch(
            files=tuple(p for p in dict.fromkeys(request.files) if p not in self._files),
            dirs=tuple(d for d in dict.fromkeys(request.dirs) if d not in self._dirs),
            config_dirs=tuple(d for d in dict.fromkeys(request.config_dirs)
                              if d not in self._dirs),
            globs=tuple(g for g in dict.fromkeys(request.globs) if g not in self._globs),
            commands=tuple(c for c in dict.fromkeys(request.commands) if c not in self._commands))
        if any((missing.files, missing.dirs, missing.config_dirs, missing.globs,
                missing.commands)):
            self._fetch(missing)

    def _fetch(self, request: Prefetch) -> None:
        sudo_commands = {c for c in request.commands if c in PRIVILEGED_COMMANDS} \
            if self.credential.sudo else set()
        script = batch_script(request, sudo_files=self.credential.sudo,
                              sudo_commands=sudo_commands, max_bytes=MAX_FILE_BYTES,
                              command_timeout=max(1, int(self.command_timeout)))
        output = self._exec(f"/bin/sh -c {shlex.quote(script)}")
        self._store(output, request)

    def _exec(self, command: str) -> bytes:
        client = self._connection()
        self.round_trips += 1
        deadline = time.monotonic() + self.command_timeout + 5
        try:
            channel = client.get_transport().open_session(timeout=self.connect_timeout)
            channel.settimeout(max(0.1, deadline - time.monotonic()))
            channel.exec_command(command)
            channel.shutdown_write()
            chunks: list[bytes] = []
            size = 0
            while chunk := channel.recv(65536):
                size += len(chunk)
                if size > MAX_OUTPUT_BYTES:
                    raise FactUnavailable(Reason.REFUSED, "the host sent more than "
                                          f"{MAX_OUTPUT_BYTES} bytes")
                chunks.append(chunk)
                channel.settimeout(max(0.1, deadline - time.monotonic()))
            channel.close()
            return b"".join(chunks)
        except FactUnavailable:
            raise
        except TimeoutError as error:
            raise FactUnavailable(Reason.TIMEOUT, f"{self.address}: no answer within "
                                  f"{self.command_timeout:g} s") from error
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as error:
            raise FactUnavailable(Reason.UNREACHABLE, f"{self.address}: the connection "
                                  f"dropped ({type(error).__name__})") from error

    def _store(self, output: bytes, request: Prefetch) -> None:
        for line in output.split(b"\n"):
            fields = line.decode("ascii", errors="replace").split(" ")
            if len(fields) < 3:
                continue
            kind, key, status, payload = fields[0], _b64(fields[1]), fields[2], \
                _b64_bytes(fields[3] if len(fields) > 3 else "")
            if kind == "F":
                self._files[key] = payload if status == "ok" else FactUnavailable(
                    FILE_STATUS.get(status, Reason.UNREACHABLE), f"{key}: {_describe(status)}")
            elif kind == "D":
                self._dirs[key] = _entries(payload) if status == "ok" else FactUnavailable(
                    FILE_STATUS.get(status, Reason.UNREACHABLE), f"{key}: {_describe(status)}")
            elif kind == "G":
                self._globs[key] = sorted(p for p in payload.decode("utf-8", "replace")
                                          .split("\0") if p)
            elif kind == "C":
                self._store_command(key, status, payload)
        self._mark_unanswered(request)

    def _store_command(self, key: str, status: str, payload: bytes) -> None:
        argv = tuple(key.split("\0"))
        code = int(status) if status.lstrip("-").isdigit() else -1
        if code == 127:
            self._commands[argv] = FactUnavailable(Reason.NOT_FOUND, f"{argv[0]}: not installed")
        elif code == 124:
            self._commands[argv] = FactUnavailable(Reason.TIMEOUT, f"{argv[0]}: no answer "
                                                   f"within {self.command_timeout:g} s")
        else:
            self._commands[argv] = CommandOutput(argv=argv, exit_code=code,
                                                 stdout=payload.decode("utf-8", "replace"),
                                                 stderr="")

    def _mark_unanswered(self, request: Prefetch) -> None:
        # A script cut short (dropped connection, timeout) must not pass for "no such file".
        lost = FactUnavailable(Reason.UNREACHABLE, f"{self.address}: no answer for this item")
        for path in request.files:
            self._files.setdefault(path, lost)
        for path in (*request.dirs, *request.config_dirs):
            self._dirs.setdefault(path, lost)
        for pattern in request.globs:
            self._globs.setdefault(pattern, [])
        for argv in request.commands:
            self._commands.setdefault(argv, lost)

    # --- the Transport interface --------------------------------------------------------

    def read_files(self, paths: Sequence[str]) -> dict[str, bytes | FactUnavailable]:
        self.prefetch(Prefetch(files=tuple(paths)))
        return {path: self._files[path] for path in paths}

    def list_dir(self, path: str) -> list[DirEntry]:
        self.prefetch(Prefetch(dirs=(path,)))
        entries = self._dirs[path]
        if isinstance(entries, FactUnavailable):
            raise entries
        return entries

    def glob(self, pattern: str) -> list[str]:
        self.prefetch(Prefetch(globs=(pattern,)))
        return self._globs[pattern]

    def _execute(self, argv: tuple[str, ...], sudo: bool) -> CommandOutput:
        self.prefetch(Prefetch(commands=(argv,)))
        output = self._commands[argv]
        if isinstance(output, FactUnavailable):
            raise output
        return output


# The remote half of a batch: POSIX sh and coreutils only. Every record is one line
# "KIND BASE64(KEY) STATUS [BASE64(PAYLOAD)]", so no content can pass for a record.
SCRIPT_FUNCTIONS = r"""
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH
LC_ALL=C; export LC_ALL
b() { printf '%s' "$1" | base64 -w0; }
f() {
  k=$(b "$1")
  if [ -d "$1" ]; then echo "F $k notfile"; return; fi
  if [ -f "$1" ] && [ -r "$1" ]; then
    printf 'F %s ok ' "$k"; head -c "$M" -- "$1" 2>/dev/null | base64 -w0; echo; return
  fi
  p="${1%/*}/"; st=missing
  if [ -e "$1" ] || [ -L "$1" ] || { [ -e "$p" ] && ! [ -x "$p" ]; }; then st=denied; fi
  if [ "$st" = denied ] && [ "$S" = 1 ] && sudo -n cat -- "$1" >/dev/null 2>&1 </dev/null; then
    printf 'F %s ok ' "$k"; sudo -n cat -- "$1" 2>/dev/null </dev/null | head -c "$M" | base64 -w0
    echo; return
  fi
  echo "F $k $st"
}
d() {
  k=$(b "$1")
  if [ -d "$1" ] && [ -r "$1" ] && [ -x "$1" ]; then
    printf 'D %s ok ' "$k"
    find "$1" -mindepth 1 -maxdepth 1 -printf '%y %m %s %f\0' 2>/dev/null | head -c "$M" | base64 -w0
    echo
    if [ "$2" = 1 ]; then
      for e in "$1"/* "$1"/.[!.]*; do [ -f "$e" ] && f "$e"; done | head -n 400
    fi
  elif [ -d "$1" ] && [ "$S" = 1 ] && sudo -n ls -1A -- "$1" >/dev/null 2>&1 </dev/null; then
    printf 'D %s ok ' "$k"
    sudo -n ls -1A -- "$1" 2>/dev/null </dev/null | head -n 400 \
      | while IFS= read -r n; do printf '? 0 0 %s\0' "$n"; done | base64 -w0
    echo
    if [ "$2" = 1 ]; then
      sudo -n ls -1A -- "$1" 2>/dev/null </dev/null | head -n 400 \
        | while IFS= read -r n; do f "$1/$n"; done
    fi
  elif [ -e "$1" ] && ! [ -d "$1" ]; then echo "D $k notfile"
  elif [ -e "$1" ]; then echo "D $k denied"
  else echo "D $k missing"; fi
}
g() {
  k=$(b "$1"); shift
  printf 'G %s ok ' "$k"
  for e in "$@"; do if [ -e "$e" ] || [ -L "$e" ]; then printf '%s\0' "$e"; fi; done | base64 -w0
  echo
  for e in "$@"; do if [ -f "$e" ]; then f "$e"; fi; done
}
c() {
  k=$1; s=$2; shift 2
  if [ "$s" = 1 ]; then o=$(timeout "$T" sudo -n "$@" 2>/dev/null </dev/null); r=$?
  else o=$(timeout "$T" "$@" 2>/dev/null </dev/null); r=$?; fi
  printf 'C %s %s ' "$k" "$r"; printf '%s' "$o" | base64 -w0; echo
}
"""


def batch_script(request: Prefetch, sudo_files: bool, sudo_commands: set[tuple[str, ...]],
                 max_bytes: int, command_timeout: int) -> str:
    """The sh script that prints one record per requested item (and per file read)."""
    lines = [f"M={max_bytes}; S={1 if sudo_files else 0}; T={command_timeout}",
             SCRIPT_FUNCTIONS]
    lines += [f"f {shlex.quote(path)}" for path in request.files]
    lines += [f"d {shlex.quote(path)} 0" for path in request.dirs]
    lines += [f"d {shlex.quote(path)} 1" for path in request.config_dirs]
    lines += [f"g {shlex.quote(pattern)} {_glob_word(pattern)}" for pattern in request.globs]
    for argv in request.commands:
        key = base64.b64encode("\0".join(argv).encode()).decode()
        lines.append(f"c {key} {1 if argv in sudo_commands else 0} "
                     + " ".join(shlex.quote(word) for word in argv))
    return "\n".join(lines) + "\n"


def _glob_word(pattern: str) -> str:
    # Only * and ? stay wildcards; everything else (from a host's own Include lines,
    # untrusted) is quoted so it cannot become shell syntax.
    word, literal = "", ""
    for char in pattern:
        if char in "*?":
            word += (shlex.quote(literal) if literal else "") + char
            literal = ""
        else:
            literal += char
    return word + (shlex.quote(literal) if literal else "")


def _b64(text: str) -> str:
    return _b64_bytes(text).decode("utf-8", errors="replace")


def _b64_bytes(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=False)
    except ValueError:
        return b""


def _describe(status: str) -> str:
    return {"missing": "no such file", "denied": "permission denied",
            "notfile": "not a regular file"}.get(status, status)


def _entries(listing: bytes) -> list[DirEntry]:
    entries = []
    for record in listing.split(b"\0"):
        kind, _, rest = record.decode("utf-8", "replace").partition(" ")
        mode, _, rest = rest.partition(" ")
        size, _, name = rest.partition(" ")
        if not name or name in (".", ".."):
            continue
        entries.append(DirEntry(name=name, is_dir=kind == "d", is_symlink=kind == "l",
                                mode=int(mode, 8) if mode.isdigit() else 0,
                                size=int(size) if size.isdigit() else 0))
    return sorted(entries, key=lambda entry: entry.name)


def open_ssh_transport(target: Target, environment: Environment) -> Transport:
    """The transport for an ssh target; it connects when a probe first needs it."""
    from audit.model.inventory import SshCredential

    credential = environment.credentials.get(target.ssh or "")
    if not isinstance(credential, SshCredential):
        raise FactUnavailable(Reason.REFUSED, f"target {target.name!r}: no ssh credential "
                              f"named {target.ssh!r}")
    if not target.address:
        raise FactUnavailable(Reason.UNREACHABLE, f"target {target.name!r} has no address")
    known_hosts = environment.resolve(credential.known_hosts or "~/.ssh/known_hosts")
    key_file = environment.resolve(credential.key_file) if credential.key_file else None
    return SshTransport(target.address, credential, key_file, known_hosts, environment.timeout)
