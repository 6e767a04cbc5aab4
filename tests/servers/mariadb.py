"""MariaDB in a weak and a hardened variant.

weak:     `root` logs in over TCP with an empty password, no TLS.
hardened: `root` has a password, TLS with a certificate from the test CA, and
          `require_secure_transport=ON`: a plaintext client is refused; the server_audit
          plugin logs connections and changes, `local_infile` is off and passwords expire.
"""

from __future__ import annotations

import shutil
import subprocess
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
    fresh_data_directory,
    service_workdir,
    serving,
    start_in_workdir,
)

MARIADB_PORT = 3306


@dataclass
class MariaDBServer(DatabaseServer):
    """A running MariaDB; `password` is root's, None when root has none."""

    password: str | None


def _install_db(data: Path) -> None:
    # "normal": root@localhost/127.0.0.1 get an (empty) password instead of unix_socket only.
    subprocess.run([require_binary("mariadb-install-db"), "--no-defaults", "--user=mysql",
                    f"--datadir={data}", "--auth-root-authentication-method=normal",
                    "--skip-test-db"], check=True, capture_output=True, timeout=120)


def start_mariadb(variant: Variant, address: str, ca: DatabaseCA | None = None,
                  port: int = MARIADB_PORT) -> MariaDBServer:
    """mariadb-install-db into a temp dir, then mariadbd as the mysql user on address:port."""
    mariadbd = require_binary("/usr/sbin/mariadbd")
    workdir = service_workdir(f"mariadb-{variant}", "mysql")
    data = workdir / "data"
    fresh_data_directory("mariadb", _install_db, data, "mysql")
    argv = [mariadbd, "--no-defaults", "--user=mysql", f"--datadir={data}",
            f"--socket={workdir}/mysqld.sock", f"--pid-file={workdir}/mysqld.pid",
            f"--bind-address={address}", f"--port={port}", "--skip-log-bin",
            "--innodb-buffer-pool-size=16M"]
    password = None
    if variant == "hardened":
        if ca is None:
            raise ValueError("the hardened MariaDB needs the test CA")
        password = HARDENED_PASSWORD
        keys = copy_key_pair(ca.certs[address], workdir, "mysql")
        ca_copy = workdir / "ca.pem"        # the CA's own directory is private to root
        shutil.copyfile(ca.ca_file, ca_copy)
        init = workdir / "init.sql"
        init.write_text("".join(f"ALTER USER 'root'@'{host}' IDENTIFIED BY '{password}';\n"
                                for host in ("localhost", "127.0.0.1", "::1")))
        shutil.chown(init, "mysql", "mysql")
        argv += [f"--ssl-cert={keys.cert}", f"--ssl-key={keys.key}", f"--ssl-ca={ca_copy}",
                 "--require-secure-transport=ON", f"--init-file={init}",
                 "--plugin-load-add=server_audit", "--server-audit-logging=ON",
                 "--server-audit-events=CONNECT,QUERY_DDL,QUERY_DML",
                 f"--server-audit-file-path={workdir}/audit.log", "--local-infile=0",
                 "--default-password-lifetime=180"]
    process = start_in_workdir(f"mariadb-{variant}", argv, address, port, workdir, timeout=60)
    return MariaDBServer(variant, process, ca.ca_file if ca else None, password)


@pytest.fixture(scope="session")
def mariadb_weak() -> Iterator[MariaDBServer]:
    """root without a password, plaintext, on WEAK_DB_HOST:3306, with the review's accounts."""
    yield from serving(with_accounts(start_mariadb("weak", WEAK_DB_HOST)))


@pytest.fixture(scope="session")
def mariadb_hardened(database_ca: DatabaseCA) -> Iterator[MariaDBServer]:
    """root with a password, TLS required, on HARDENED_DB_HOST:3306, with the review's
    accounts."""
    yield from serving(with_accounts(start_mariadb("hardened", HARDENED_DB_HOST, database_ca)))


def with_accounts(server: MariaDBServer) -> MariaDBServer:
    """The server, with the database review's accounts and tables (`db_accounts`)."""
    from .db_accounts import add_mariadb_accounts
    try:
        add_mariadb_accounts(server.variant, server.address, server.port,
                             str(server.ca_file) if server.ca_file else None)
    except BaseException:
        server.stop()
        raise
    return server
