"""The SSH transport (paramiko): a remote host read through one connection, few round trips.

Host keys are verified against the credential's known_hosts; an unknown key is refused
unless the operator set `accept_new_host_keys` (a changed key is always refused). Files,
directory listings and allow-listed commands are fetched by one generated POSIX sh script
per batch (`Prefetch`), whose records are base64-framed so that nothing a host holds can
forge a record. `sudo -n` is used only for the declared commands that need root, and for
`cat` of a file or `ls` of a directory the account cannot read, and only when the credential
says `sudo: true` (`mis-audit sudoers` prints the lines that allow exactly these).
"""

from __future__ import annotations

import errno
import io
import shlex
import socket
import stat
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

import paramiko  # type: ignore[import-untyped]

from audit.errors import FactUnavailable, Unavailable
from audit.messages import says
from audit.transports.base import (
    MAX_FILE_BYTES,
    CommandOutput,
    DirEntry,
    Transport,
)
from audit.transports.reads import Prefetch, declared_reads
from audit.transports.ssh_batch import (
    b64_bytes,
    b64_text,
    batch_script,
    describe_status,
    dir_entries,
)
from audit.vocabulary import Reason

if TYPE_CHECKING:
    from audit.facts.context import Environment
    from audit.model.inventory import SshCredential, Target

MAX_CONNECT_SECONDS = 10.0
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
# What a server may send before the session is set up (banner, key exchange, host key,
# authentication): far above what sshd sends, and the end of a server that streams garbage.
MAX_HANDSHAKE_BYTES = 512 * 1024
MAX_RECV_BYTES = 64 * 1024
FILE_STATUS = {"missing": Reason.NOT_FOUND, "denied": Reason.PERMISSION_DENIED,
               "hidden": Reason.PERMISSION_DENIED, "notfile": Reason.NOT_FOUND}


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


class _HandshakeBoundedSocket(socket.socket):
    """The TCP connection handed to paramiko, which reads any banner line and any packet
    length a server announces: each read is capped, and so is the total until the session
    is set up (`budget`, then None)."""

    budget: int | None = MAX_HANDSHAKE_BYTES
    overflowed = False

    @classmethod
    def connect_to(cls, address: str, port: int, timeout: float) -> _HandshakeBoundedSocket:
        """A connection to address:port (raises OSError, TimeoutError as connecting does)."""
        raw = socket.create_connection((address, port), timeout=timeout)
        bounded = cls(raw.family, raw.type, raw.proto, fileno=raw.detach())
        bounded.settimeout(timeout)
        return bounded

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """At most MAX_RECV_BYTES; OSError once the server sent more than its budget."""
        data = super().recv(min(bufsize, MAX_RECV_BYTES), flags)
        if self.budget is not None:
            self.budget -= len(data)
            if self.budget < 0:
                self.overflowed = True
                # (errno, text): paramiko's transport thread formats a socket error so
                raise OSError(errno.EMSGSIZE, "too much data before the session was set up")
        return data


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
        self._failure: Unavailable | None = None
        self._lock = threading.Lock()
        self._batch_lock = threading.Lock()
        # answers and failures are kept as values: every caller raises its own exception
        self._files: dict[str, bytes | Unavailable] = {}
        self._dirs: dict[str, list[DirEntry] | Unavailable] = {}
        self._globs: dict[str, list[str] | Unavailable] = {}
        self._commands: dict[tuple[str, ...], CommandOutput | Unavailable] = {}

    def describe(self) -> str:
        return (f"ssh {self.credential.user}@{self.address}:{self.credential.port}"
                + (" with sudo -n for read-only commands" if self.credential.sudo else ""))

    # --- connection -------------------------------------------------------------------

    def _connection(self) -> paramiko.SSHClient:
        with self._lock:
            if self._failure is not None:
                raise self._failure.error()
            if self._client is None:
                try:
                    self._client = self._connect()
                except FactUnavailable as failure:
                    self._failure = failure.unavailable   # one timeout per host, not per check
                    raise
            return self._client

    def _connect(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        try:
            if self.known_hosts.is_file():
                client.load_host_keys(str(self.known_hosts))
        except (OSError, paramiko.SSHException) as error:
            raise FactUnavailable(Reason.REFUSED, says("known_hosts {path} is unreadable: "
                                                       "{error}", path=str(self.known_hosts),
                                                       error=str(error))) from error
        client.set_missing_host_key_policy(
            _AcceptNewHostKey(self.known_hosts) if self.credential.accept_new_host_keys
            else paramiko.RejectPolicy())
        self.round_trips += 1
        started = time.monotonic()
        sock: _HandshakeBoundedSocket | None = None
        try:
            pkey = self._private_key()
            sock = _HandshakeBoundedSocket.connect_to(self.address, self.credential.port,
                                                      self.connect_timeout)
            client.connect(self.address, port=self.credential.port,
                           username=self.credential.user, pkey=pkey,
                           allow_agent=self.key_file is None, look_for_keys=False,
                           timeout=self.connect_timeout, banner_timeout=self.connect_timeout,
                           auth_timeout=self.connect_timeout, channel_timeout=self.connect_timeout,
                           sock=sock)
        except Exception as error:
            client.close()
            overflowed = sock is not None and sock.overflowed
            if sock is not None:
                sock.close()
            raise self._connect_failure(error, time.monotonic() - started, overflowed) \
                from error
        sock.budget = None      # set up: channels may carry far more than a handshake
        return client

    def _private_key(self) -> paramiko.PKey | None:
        if self.key_file is None:
            return None
        try:
            return paramiko.PKey.from_path(self.key_file)
        except paramiko.PasswordRequiredException as error:
            raise FactUnavailable(Reason.REFUSED, says(
                "key file {path} is protected by a passphrase: load it into ssh-agent instead",
                path=str(self.key_file))) from error
        except (OSError, paramiko.SSHException, ValueError) as error:
            raise FactUnavailable(Reason.REFUSED, says(
                "key file {path} cannot be loaded: {error}", path=str(self.key_file),
                error=type(error).__name__)) from error

    def _connect_failure(self, error: Exception, elapsed: float,
                         overflowed: bool = False) -> FactUnavailable:
        where = f"{self.address}:{self.credential.port}"
        if overflowed:
            return FactUnavailable(Reason.REFUSED, says(
                "{where}: the server sent more than {size} KiB before the SSH session was set "
                "up (not an SSH server, or a hostile one)", where=where,
                size=MAX_HANDSHAKE_BYTES // 1024))
        if isinstance(error, paramiko.BadHostKeyException):
            return FactUnavailable(Reason.REFUSED, says(
                "{where}: the host key CHANGED (it does not match {known_hosts}); refusing to "
                "connect", where=where, known_hosts=str(self.known_hosts)))
        if isinstance(error, paramiko.SSHException) and "not found in known_hosts" in str(error):
            return FactUnavailable(Reason.REFUSED, says(
                "{where}: unknown host key (not in {known_hosts}); add it after checking its "
                "fingerprint, or set accept_new_host_keys", where=where,
                known_hosts=str(self.known_hosts)))
        if isinstance(error, paramiko.SSHException) and "No authentication methods" in str(error):
            return FactUnavailable(Reason.PERMISSION_DENIED, says(
                "{where}: no key to offer: name a key_file in the credential or load the key "
                "into ssh-agent", where=where))
        if isinstance(error, paramiko.AuthenticationException):
            return FactUnavailable(Reason.PERMISSION_DENIED, says(
                "{where}: authentication as {user} failed", where=where,
                user=repr(self.credential.user)))
        # paramiko reports a silent peer in several ways ("No existing session", a banner
        # error); having waited the whole timeout is what they share.
        if isinstance(error, socket.timeout | TimeoutError) or elapsed >= self.connect_timeout * 0.9:
            return FactUnavailable(Reason.TIMEOUT, says(
                "{where}: no SSH answer within {seconds} s", where=where,
                seconds=f"{self.connect_timeout:g}"))
        if isinstance(error, FactUnavailable):
            return error
        return FactUnavailable(Reason.UNREACHABLE, says(
            "{where}: {kind}: {error}", where=where, kind=type(error).__name__,
            error=str(error)[:200]))

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
        sudo_commands = {c for c in request.commands if declared_reads().needs_root(c)} \
            if self.credential.sudo else set()
        script = batch_script(request, sudo_files=self.credential.sudo,
                              sudo_commands=sudo_commands, max_bytes=MAX_FILE_BYTES,
                              command_timeout=max(1, int(self.command_timeout)))
        try:
            output = self._exec(f"/bin/sh -c {shlex.quote(script)}")
        except FactUnavailable as failure:
            # Remembered for every item asked: a host that dropped the connection costs
            # one timeout, not one per probe.
            self._mark_unanswered(request, failure)
            raise
        self._store(output, request)

    def _exec(self, command: str) -> bytes:
        client = self._connection()
        self.round_trips += 1
        deadline = time.monotonic() + self.command_timeout + 5
        channel = None
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
                    raise FactUnavailable(Reason.REFUSED, says(
                        "the host sent more than {size} bytes", size=MAX_OUTPUT_BYTES))
                chunks.append(chunk)
                channel.settimeout(max(0.1, deadline - time.monotonic()))
            return b"".join(chunks)
        except FactUnavailable:
            raise
        except TimeoutError as error:
            raise FactUnavailable(Reason.TIMEOUT, says(
                "{where}: no answer within {seconds} s", where=self.address,
                seconds=f"{self.command_timeout:g}")) from error
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as error:
            raise FactUnavailable(Reason.UNREACHABLE, says(
                "{where}: the connection dropped ({kind})", where=self.address,
                kind=type(error).__name__)) from error
        finally:
            if channel is not None:
                channel.close()

    def _store(self, output: bytes, request: Prefetch) -> None:
        for line in output.split(b"\n"):
            fields = line.decode("ascii", errors="replace").split(" ")
            if len(fields) < 3:
                continue
            kind, key, status, payload = fields[0], b64_text(fields[1]), fields[2], \
                b64_bytes(fields[3] if len(fields) > 3 else "")
            if kind == "F":
                self._files[key] = payload if status == "ok" else Unavailable(
                    FILE_STATUS.get(status, Reason.UNREACHABLE),
                    says("{path}: {status}", path=key, status=describe_status(status)))
            elif kind == "D":
                self._dirs[key] = dir_entries(payload) if status == "ok" else Unavailable(
                    FILE_STATUS.get(status, Reason.UNREACHABLE),
                    says("{path}: {status}", path=key, status=describe_status(status)))
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
            self._commands[argv] = Unavailable(Reason.NOT_FOUND,
                                               says("{command}: not installed", command=argv[0]))
        elif code == 124:
            self._commands[argv] = Unavailable(Reason.TIMEOUT, says(
                "{where}: no answer within {seconds} s", where=argv[0],
                seconds=f"{self.command_timeout:g}"))
        else:
            self._commands[argv] = CommandOutput(argv=argv, exit_code=code,
                                                 stdout=payload.decode("utf-8", "replace"),
                                                 stderr="")

    def _mark_unanswered(self, request: Prefetch, failure: FactUnavailable | None = None) -> None:
        # A script cut short (dropped connection, timeout) must not pass for "no such file".
        lost = failure.unavailable if failure else Unavailable(
            Reason.UNREACHABLE, says("{where}: no answer for this item", where=self.address))
        for path in request.files:
            self._files.setdefault(path, lost)
        for path in (*request.dirs, *request.config_dirs):
            self._dirs.setdefault(path, lost)
        for pattern in request.globs:
            self._globs.setdefault(pattern, lost)
        for argv in request.commands:
            self._commands.setdefault(argv, lost)

    # --- the Transport interface --------------------------------------------------------

    def read_files(self, paths: Sequence[str]) -> dict[str, bytes | Unavailable]:
        self.prefetch(Prefetch(files=tuple(paths)))
        return {path: self._files[path] for path in paths}

    def list_dir(self, path: str) -> list[DirEntry]:
        self.prefetch(Prefetch(dirs=(path,)))
        return _or_raise(self._dirs[path])

    def glob(self, pattern: str) -> list[str]:
        self.prefetch(Prefetch(globs=(pattern,)))
        return _or_raise(self._globs[pattern])

    def _execute(self, argv: tuple[str, ...], sudo: bool) -> CommandOutput:
        self.prefetch(Prefetch(commands=(argv,)))
        return _or_raise(self._commands[argv])

    def open_binary(self, path: str) -> BinaryIO:
        """The remote file streamed over SFTP on the host's one connection, so a large
        file is scanned in pieces and never held whole (no sudo: SFTP runs as the account)."""
        try:
            sftp = self._connection().open_sftp()
        except (paramiko.SSHException, OSError) as error:
            raise FactUnavailable(Reason.UNREACHABLE, says(
                "{where}: SFTP refused: {error}", where=self.address,
                error=str(error)[:200])) from error
        try:
            if not stat.S_ISREG(sftp.stat(path).st_mode or 0):
                raise FactUnavailable(Reason.REFUSED,
                                      says("{path}: not a regular file", path=path))
            remote = sftp.open(path, "rb")
        except FactUnavailable:
            sftp.close()
            raise
        except OSError as error:
            sftp.close()
            reason = {errno.EACCES: Reason.PERMISSION_DENIED,
                      errno.ENOENT: Reason.NOT_FOUND}.get(error.errno or 0, Reason.UNREACHABLE)
            raise FactUnavailable(reason, says("{where}: {error}", where=path,
                                               error=str(error.strerror or error))) from error
        remote.prefetch()          # pipeline the reads: one round trip per window, not per block
        return io.BufferedReader(_SftpFile(remote, sftp), buffer_size=1024 * 1024)


class _SftpFile(io.RawIOBase):
    """A remote file that closes its SFTP session with it."""

    def __init__(self, remote: paramiko.SFTPFile, session: paramiko.SFTPClient) -> None:
        super().__init__()
        self._remote, self._session = remote, session

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._remote.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._remote.seek(offset, whence)
        return int(self._remote.tell())

    def tell(self) -> int:
        return int(self._remote.tell())

    def close(self) -> None:
        if not self.closed:
            self._remote.close()
            self._session.close()
        super().close()


T = TypeVar("T")


def _or_raise(cached: T | Unavailable) -> T:
    if isinstance(cached, Unavailable):
        raise cached.error()
    return cached


def open_ssh_transport(target: Target, environment: Environment) -> Transport:
    """The transport for an ssh target; it connects when a probe first needs it."""
    from audit.model.inventory import SshCredential

    credential = environment.credentials.get(target.ssh or "")
    if not isinstance(credential, SshCredential):
        raise FactUnavailable(Reason.REFUSED, says(
            "target {target}: no ssh credential named {credential}", target=repr(target.name),
            credential=repr(target.ssh)))
    if not target.address:
        raise FactUnavailable(Reason.UNREACHABLE, says("target {target} has no address",
                                                       target=repr(target.name)))
    known_hosts = environment.resolve(credential.known_hosts or "~/.ssh/known_hosts")
    key_file = environment.resolve(credential.key_file) if credential.key_file else None
    return SshTransport(target.address, credential, key_file, known_hosts, environment.timeout)
