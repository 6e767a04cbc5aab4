"""memcached in a weak and a hardened variant.

Debian's memcached has no SASL and no TLS, so it cannot be made to require a login. What a
careful operator does instead, and what the hardened variant does, is keep it off the network:
it listens on a unix socket only (`-s`, mode 0700), so nothing answers at the host's address.

weak:     TCP on the host address, anyone can read stats and keys.
hardened: unix socket only; HARDENED_DB_HOST:11211 is closed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .base import ServerProcess, require_binary
from .postgres import (
    HARDENED_DB_HOST,
    WEAK_DB_HOST,
    DatabaseServer,
    Variant,
    service_workdir,
    serving,
    start_in_workdir,
)

MEMCACHED_PORT = 11211


@dataclass
class MemcachedServer(DatabaseServer):
    """A running memcached; `socket` is set when it listens on a unix socket only."""

    socket: Path | None


def _wait_for_socket(path: Path, server: ServerProcess, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline or server.process.poll() is not None:
            server.stop()
            raise RuntimeError(f"memcached never created {path}\n{server.log.read_text()}")
        time.sleep(0.05)


def start_memcached(variant: Variant, address: str,
                    port: int = MEMCACHED_PORT) -> MemcachedServer:
    """memcached as the memcache user: on address:port (weak) or on a unix socket (hardened)."""
    binary = require_binary("memcached")
    workdir = service_workdir(f"memcached-{variant}", "memcache")
    if variant == "weak":
        argv = [binary, "-u", "memcache", "-l", address, "-p", str(port), "-U", "0", "-m", "16"]
        process = start_in_workdir("memcached-weak", argv, address, port, workdir)
        return MemcachedServer(variant, process, None, None)
    socket_path = workdir / "memcached.sock"
    argv = [binary, "-u", "memcache", "-s", str(socket_path), "-a", "0700", "-m", "16"]
    process = start_in_workdir("memcached-hardened", argv, address, port, workdir,
                               wait=False)
    _wait_for_socket(socket_path, process)
    return MemcachedServer(variant, process, None, socket_path)


@pytest.fixture(scope="session")
def memcached_weak() -> Iterator[MemcachedServer]:
    """Open memcached on WEAK_DB_HOST:11211."""
    yield from serving(start_memcached("weak", WEAK_DB_HOST))


@pytest.fixture(scope="session")
def memcached_hardened() -> Iterator[MemcachedServer]:
    """memcached on a unix socket only: HARDENED_DB_HOST:11211 is closed."""
    yield from serving(start_memcached("hardened", HARDENED_DB_HOST))
