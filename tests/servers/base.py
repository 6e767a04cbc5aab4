"""Starting and stopping a real server process for a test."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def require_binary(path: str) -> str:
    """The binary's path, or skip the test when the server is not installed here."""
    found = shutil.which(path) or (path if os.path.exists(path) else None)
    if not found:
        if os.environ.get("CI"):
            pytest.fail(f"{path} is not installed: .ci/run must install it")
        pytest.skip(f"{path} is not installed")
    return found


def port_is_free(address: str, port: int) -> bool:
    """Whether nothing listens on address:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def wait_for_port(address: str, port: int, timeout: float = 30.0,
                  process: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    """Block until address:port accepts TCP connections; fail loudly when it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            detail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"server exited with {process.returncode} before listening on "
                               f"{address}:{port}\n{detail}")
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    detail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"nothing listening on {address}:{port} after {timeout} s\n{detail}")


@dataclass
class ServerProcess:
    """A started server: stop it by its PID (its whole process group)."""

    name: str
    process: subprocess.Popen[bytes]
    address: str
    port: int
    workdir: Path
    log: Path
    extra: dict[str, object] = field(default_factory=dict)
    # Servers that exist for this one (a TLS proxy in front of it), stopped with it.
    companions: list[ServerProcess] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The server's PID."""
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL if it lingers; companions first."""
        for companion in self.companions:
            companion.stop()
        if self.process.poll() is not None:
            with contextlib.suppress(ProcessLookupError):   # what the leader left behind
                os.killpg(self.process.pid, signal.SIGKILL)
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start_server(name: str, argv: Sequence[str], address: str, port: int, workdir: Path,
                 user: str | None = None, env: dict[str, str] | None = None,
                 wait: bool = True, timeout: float = 30.0,
                 own_network: bool = False) -> ServerProcess:
    """Start `argv` in its own process group (as `user` when given) and wait for its port.
    With `own_network` (a namespace of its own), nothing here can hold its port already."""
    if not own_network and not port_is_free(address, port):
        raise RuntimeError(f"{name}: {address}:{port} is already taken")
    log = workdir / f"{name}.log"
    command = list(argv)
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", *command]
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=workdir, start_new_session=True,
                                   env={**os.environ, **(env or {})})
    server = ServerProcess(name, process, address, port, workdir, log)
    if wait:
        try:
            wait_for_port(address, port, timeout, process, log)
        except Exception:
            server.stop()
            raise
    return server


def chown_tree(path: Path, user: str) -> None:
    """Give a directory tree to a service user."""
    shutil.chown(path, user, user)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            shutil.chown(os.path.join(root, name), user, user)
