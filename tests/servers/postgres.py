"""PostgreSQL 15 in a weak and a hardened variant, and the test CA the database servers share.

weak:     `host all all 0.0.0.0/0 trust`, ssl off: anyone can log in as `postgres`, in clear.
hardened: `hostssl ... scram-sha-256` only, ssl on with a certificate from the test CA
          (TLS 1.2 minimum); a plaintext client is refused by pg_hba ("no encryption").

The database fixtures (this module, `mariadb`, `redis_server`, `memcached`) put every weak
server on WEAK_DB_HOST and every hardened one on HARDENED_DB_HOST, each on its standard port,
so that each address is one realistic database host. Register them in a test module with
`pytest_plugins = ["tests.servers.postgres", ...]` so that pytest starts each one once per session.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import psycopg
import pytest

from .base import ServerProcess, chown_tree, require_binary, start_server
from .hostile import silent_listeners  # noqa: F401 (bench/network_checks.py)
from .pki import CertFiles, make_ca, make_server_cert

Variant = Literal["weak", "hardened"]
WEAK_DB_HOST = "127.60.0.10"
HARDENED_DB_HOST = "127.60.0.11"
POSTGRES_PORT = 5432


def _postgres_bin() -> Path:
    """Debian's newest installed PostgreSQL (15 on bookworm); its binaries are not on PATH."""
    installed = [path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/postgres")
                 if path.parent.parent.name.isdigit()]
    return max(installed, key=lambda bin_dir: int(bin_dir.parent.name),
               default=Path("/usr/lib/postgresql/15/bin"))


POSTGRES_BIN = _postgres_bin()
# A throwaway password for the hardened server's `postgres` role; never a real secret.
HARDENED_PASSWORD = "mis-audit-test-only"


@dataclass(frozen=True)
class DatabaseCA:
    """The test CA and one server certificate per database host address."""

    ca_file: Path
    certs: dict[str, CertFiles]


def wait_until_accepting(url: str, timeout: float = 30) -> None:
    """Block until PostgreSQL at `url` takes logins: its port opens before recovery ends
    ("the database system is starting up")."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def history_postgres(name: str, address: str, port: int,
                     password: str | None = None) -> Iterator[str]:
    """A throwaway PostgreSQL for a history store: user `audit`, trust auth, or
    scram-sha-256 with `password`; yields its base URL and is stopped by PID."""
    initdb = require_binary(str(POSTGRES_BIN / "initdb"))
    workdir = Path(tempfile.mkdtemp(prefix=f"mis-audit-{name}-"))
    workdir.chmod(0o755)          # pytest's own temp tree is private to root
    try:
        data = workdir / "data"
        data.mkdir(mode=0o700)
        chown_tree(data, "postgres")
        auth = ["--auth=trust"]
        if password is not None:
            password_file = workdir / "password"
            password_file.write_text(password + "\n")
            shutil.chown(password_file, "postgres", "postgres")
            auth = ["--auth=scram-sha-256", f"--pwfile={password_file}"]
        subprocess.run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
                        initdb, "-D", str(data), "-U", "audit", *auth, "-E", "UTF8",
                        "--no-sync"], check=True, capture_output=True, timeout=120)
        if password is not None:
            (data / "pg_hba.conf").write_text("host all all 0.0.0.0/0 scram-sha-256\n")
        server = start_server(name, [
            str(POSTGRES_BIN / "postgres"), "-D", str(data), "-c", f"listen_addresses={address}",
            "-c", f"port={port}", "-c", f"unix_socket_directories={data}", "-c", "fsync=off"],
            address, port, workdir, user="postgres")
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    login = "audit" if password is None else f"audit:{password}"
    base = f"postgresql://{login}@{address}:{port}"
    try:
        wait_until_accepting(f"{base}/postgres")
        yield base
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def make_database_ca(directory: Path) -> DatabaseCA:
    """A CA and a certificate (IP SAN) for the hardened database host."""
    ca_files, ca_cert, ca_key = make_ca(directory, "mis-audit database test CA")
    cert = make_server_cert(directory, "hardened-db", [HARDENED_DB_HOST], ca=(ca_cert, ca_key))
    return DatabaseCA(ca_files.cert, {HARDENED_DB_HOST: cert})


def service_workdir(prefix: str, user: str) -> Path:
    """A directory a service user can reach: pytest's own temp tree is private to root."""
    workdir = Path(tempfile.mkdtemp(prefix=f"mis-audit-{prefix}-"))
    workdir.chmod(0o755)
    shutil.chown(workdir, user, user)
    return workdir


def start_in_workdir(name: str, argv: list[str], address: str, port: int, workdir: Path,
                     **options: Any) -> ServerProcess:
    """`start_server`, removing the server's directory when the server does not come up (a
    port already taken, a bad config)."""
    try:
        return start_server(name, argv, address, port, workdir, **options)
    except Exception:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def copy_key_pair(cert: CertFiles, directory: Path, user: str) -> CertFiles:
    """The certificate and key copied where `user` owns them (servers refuse others' keys)."""
    copied = CertFiles(directory / "server.pem", directory / "server.key")
    shutil.copyfile(cert.cert, copied.cert)
    shutil.copyfile(cert.key, copied.key)
    copied.key.chmod(0o600)
    for path in (copied.cert, copied.key):
        shutil.chown(path, user, user)
    return copied


@dataclass
class DatabaseServer:
    """A running database server of the tests, stopped by PID with its files removed."""

    variant: Variant
    process: ServerProcess
    ca_file: Path | None

    @property
    def address(self) -> str:
        """The loopback address it listens on."""
        return self.process.address

    @property
    def port(self) -> int:
        """The TCP port it listens on (the one `start_server` waited for)."""
        return self.process.port

    def stop(self) -> None:
        """Stop the server by PID and remove its files."""
        self.process.stop()
        shutil.rmtree(self.process.workdir, ignore_errors=True)


ServerT = TypeVar("ServerT", bound=DatabaseServer)


def serving(server: ServerT) -> Iterator[ServerT]:
    """The body of a fixture: hand the server to the tests, stop it after them."""
    try:
        yield server
    finally:
        server.stop()


@dataclass
class PostgresServer(DatabaseServer):
    """A running PostgreSQL, with what TLS tests need to talk to it."""

    cert_file: Path | None
    password: str | None


HBA = {
    "weak": "host all all 0.0.0.0/0 trust\nhost all all ::/0 trust\n",
    "hardened": ("hostssl all all 0.0.0.0/0 scram-sha-256\n"
                 "hostssl all all ::/0 scram-sha-256\n"),
}


def _initdb(data: Path) -> None:
    """A cluster whose `postgres` role has HARDENED_PASSWORD (pg_hba decides if it is asked)."""
    pwfile = data.parent / "pwfile"
    pwfile.write_text(HARDENED_PASSWORD + "\n")
    shutil.chown(pwfile, "postgres", "postgres")
    initdb = [str(POSTGRES_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--no-sync",
              "--auth=scram-sha-256", f"--pwfile={pwfile}"]
    subprocess.run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *initdb],
                   check=True, capture_output=True, timeout=120)


# Connections and changes logged: log_connections and pgaudit (Debian's postgresql-NN-pgaudit).
HARDENED_LOGGING = ["log_connections=on", "log_disconnections=on",
                    "shared_preload_libraries=pgaudit", "pgaudit.log=write, ddl, role"]


def start_postgres(variant: Variant, address: str, ca: DatabaseCA | None = None,
                   port: int = POSTGRES_PORT) -> PostgresServer:
    """A fresh cluster in a temp dir, `postgres` as the postgres user on address:port."""
    postgres = require_binary(str(POSTGRES_BIN / "postgres"))
    workdir = service_workdir(f"pg-{variant}", "postgres")
    data = workdir / "data"
    fresh_data_directory("postgresql", _initdb, data, "postgres")
    password = HARDENED_PASSWORD if variant == "hardened" else None
    (data / "pg_hba.conf").write_text(HBA[variant])
    settings = [f"listen_addresses={address}", f"port={port}",
                f"unix_socket_directories={workdir}", "fsync=off", "ssl=off"]
    cert_file = None
    if variant == "hardened":
        if ca is None:
            raise ValueError("the hardened PostgreSQL needs the test CA")
        require_binary(str(POSTGRES_BIN.parent / "lib" / "pgaudit.so"))
        keys = copy_key_pair(ca.certs[address], data, "postgres")
        cert_file = keys.cert
        settings[-1] = "ssl=on"
        settings += [f"ssl_cert_file={keys.cert}", f"ssl_key_file={keys.key}",
                     "ssl_min_protocol_version=TLSv1.2", *HARDENED_LOGGING]
    argv = [postgres, "-D", str(data)] + [arg for item in settings for arg in ("-c", item)]
    process = start_in_workdir(f"postgres-{variant}", argv, address, port, workdir,
                               user="postgres")
    return PostgresServer(variant, process, ca.ca_file if ca else None, cert_file, password)


_TEMPLATES: dict[str, Path] = {}
_TEMPLATES_LOCK = threading.Lock()


def fresh_data_directory(kind: str, initialise: Callable[[Path], None], data: Path,
                         user: str) -> None:
    """A new data directory at `data`, copied from one `initialise`d once per process:
    initdb and mariadb-install-db take seconds, a copy a fraction of one."""
    with _TEMPLATES_LOCK:
        if kind not in _TEMPLATES:
            template = service_workdir(f"{kind}-template", user) / "data"
            initialise(template)
            atexit.register(shutil.rmtree, template.parent, True)
            _TEMPLATES[kind] = template
    shutil.copytree(_TEMPLATES[kind], data, symlinks=True)
    chown_tree(data, user)


@pytest.fixture(scope="session")
def database_ca(tmp_path_factory: pytest.TempPathFactory) -> DatabaseCA:
    """The test CA of the database servers (its file is `ca_file`)."""
    return make_database_ca(tmp_path_factory.mktemp("database-ca"))


@pytest.fixture(scope="session")
def postgres_weak() -> Iterator[PostgresServer]:
    """Trust authentication, no TLS, on WEAK_DB_HOST:5432, with the review's accounts."""
    yield from serving(with_accounts(start_postgres("weak", WEAK_DB_HOST)))


@pytest.fixture(scope="session")
def postgres_hardened(database_ca: DatabaseCA) -> Iterator[PostgresServer]:
    """hostssl + scram-sha-256 only, TLS 1.2+ (STARTTLS), on HARDENED_DB_HOST:5432, with the
    review's accounts."""
    yield from serving(with_accounts(start_postgres("hardened", HARDENED_DB_HOST, database_ca)))


def with_accounts(server: PostgresServer) -> PostgresServer:
    """The server, with the database review's accounts and tables (`db_accounts`)."""
    from .db_accounts import add_postgres_accounts
    try:
        add_postgres_accounts(server.variant, server.address, server.port)
    except BaseException:
        server.stop()
        raise
    return server


@dataclass
class ConfiguredPostgres(PostgresServer):
    """A PostgreSQL whose configuration lives in a directory of its own, as Debian keeps it
    in /etc/postgresql/VERSION/CLUSTER: a test edits the files there, then `reload()`s."""

    config_dir: Path

    def reload(self) -> None:
        """What `pg_ctlcluster ... reload` does: SIGHUP, then wait for the server to answer."""
        os.kill(self.process.pid, signal.SIGHUP)
        time.sleep(1.0)      # the postmaster rereads its files asynchronously


def start_configured_postgres(address: str, port: int, hba: str, server_cert: CertFiles,
                              ssl: str = "off") -> ConfiguredPostgres:
    """A fresh cluster configured by CONFIG/postgresql.conf and CONFIG/pg_hba.conf (`hba`),
    ssl as given, with a certificate ready in CONFIG should ssl be switched on."""
    postgres = require_binary(str(POSTGRES_BIN / "postgres"))
    workdir = service_workdir("pg-configured", "postgres")
    data, config = workdir / "data", workdir / "config"
    fresh_data_directory("postgresql", _initdb, data, "postgres")
    config.mkdir()
    keys = copy_key_pair(server_cert, config, "postgres")
    (config / "pg_hba.conf").write_text(hba)
    (config / "pg_ident.conf").write_text("")
    (config / "postgresql.conf").write_text(
        f"data_directory = '{data}'\nhba_file = '{config}/pg_hba.conf'\n"
        f"ident_file = '{config}/pg_ident.conf'\n"
        f"listen_addresses = '{address}'\nport = {port}\nunix_socket_directories = '{workdir}'\n"
        f"fsync = off\nssl_cert_file = '{keys.cert}'\nssl_key_file = '{keys.key}'\n"
        f"ssl = {ssl}\n")
    chown_tree(config, "postgres")
    argv = [postgres, "-c", f"config_file={config}/postgresql.conf"]
    process = start_in_workdir("postgres-configured", argv, address, port, workdir,
                               user="postgres")
    return ConfiguredPostgres("weak", process, None, keys.cert, HARDENED_PASSWORD, config)
