"""Redis 7 in a weak and a hardened variant.

weak:     plaintext port, no password, protected mode off: anyone can read every key.
hardened: `--port 0` (no plaintext port), TLS only on the standard port with a certificate from
          the test CA (`tls-auth-clients no`), and ACL users with passwords: the default user
          off, an administrator, an application user kept from dangerous commands and an
          audit user with the minimal read-only ACL of the database review.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .base import require_binary
from .postgres import (
    HARDENED_DB_HOST,
    HARDENED_PASSWORD,
    WEAK_DB_HOST,
    DatabaseCA,
    DatabaseServer,
    Variant,
    copy_key_pair,
    service_workdir,
    serving,
    start_in_workdir,
)

REDIS_PORT = 6379


@dataclass
class RedisServer(DatabaseServer):
    """A running Redis; `tls` says whether its port speaks TLS only."""

    tls: bool
    cert_file: Path | None
    password: str | None


def _config(variant: Variant, address: str, port: int, workdir: Path,
            ca: DatabaseCA | None) -> tuple[list[str], Path | None]:
    common = [f"bind {address}", f"dir {workdir}", "save \"\"", "appendonly no",
              "protected-mode no", "daemonize no"]
    if variant == "weak":
        return [*common, f"port {port}", *WEAK_USERS], None
    if ca is None:
        raise ValueError("the hardened Redis needs the test CA")
    keys = copy_key_pair(ca.certs[address], workdir, "redis")
    return [*common, "port 0", f"tls-port {port}", f"tls-cert-file {keys.cert}",
            f"tls-key-file {keys.key}", f"tls-ca-cert-file {ca.ca_file}", "tls-auth-clients no",
            *HARDENED_USERS], keys.cert


# Every user's password is HARDENED_PASSWORD (throwaway). Weak: the default user stays on
# without a password, the audit and the application users may run everything.
WEAK_USERS = [f"user {name} on >{HARDENED_PASSWORD} ~* &* +@all" for name in ("audit", "mis-app")]
HARDENED_USERS = [
    "user default off",
    f"user admin on >{HARDENED_PASSWORD} ~* &* +@all",
    (f"user mis-app on >{HARDENED_PASSWORD} ~mis:* resetchannels -@all +@read +@write "
    "-@dangerous"),
    (f"user audit on >{HARDENED_PASSWORD} resetchannels -@all +acl|whoami +acl|list "
    "+acl|dryrun +info +config|get"),
]


def start_redis(variant: Variant, address: str, ca: DatabaseCA | None = None,
                port: int = REDIS_PORT) -> RedisServer:
    """redis-server from a throwaway config file, as the redis user, on address:port."""
    binary = require_binary("redis-server")
    workdir = service_workdir(f"redis-{variant}", "redis")
    lines, cert_file = _config(variant, address, port, workdir, ca)
    if ca is not None:
        shutil.copyfile(ca.ca_file, workdir / "ca.pem")   # the CA's own directory is private
        lines = [line.replace(str(ca.ca_file), str(workdir / "ca.pem")) for line in lines]
    config = workdir / "redis.conf"
    config.write_text("\n".join(lines) + "\n")
    process = start_in_workdir(f"redis-{variant}", [binary, str(config)], address, port,
                               workdir, user="redis")
    hardened = variant == "hardened"
    return RedisServer(variant, process, ca.ca_file if ca else None, hardened, cert_file,
                       HARDENED_PASSWORD if hardened else None)


@pytest.fixture(scope="session")
def redis_weak() -> Iterator[RedisServer]:
    """Plaintext, no password, on WEAK_DB_HOST:6379."""
    yield from serving(start_redis("weak", WEAK_DB_HOST))


@pytest.fixture(scope="session")
def redis_hardened(database_ca: DatabaseCA) -> Iterator[RedisServer]:
    """TLS only and ACL users with passwords, on HARDENED_DB_HOST:6379."""
    yield from serving(start_redis("hardened", HARDENED_DB_HOST, database_ca))
