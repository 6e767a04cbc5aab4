"""Database configuration files on a host: PostgreSQL, MySQL/MariaDB, Redis.

Secrets in these files (Redis `requirepass`) are reduced to "set or not" here and never
kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from audit.facts.context import TargetContext
from audit.facts.host_batch import dir_files, prefetch_host, present_texts, strip_comment
from audit.facts.host_services import ServerState, server_states
from audit.transports.base import Transport
from audit.transports.reads import HostReads

MYSQL_FILES = ("/etc/mysql/my.cnf", "/etc/my.cnf")
MYSQL_DIRS = ("/etc/mysql/conf.d", "/etc/mysql/mariadb.conf.d", "/etc/mysql/mysql.conf.d",
              "/etc/my.cnf.d")
MYSQL_SERVER_SECTIONS = frozenset({"mysqld", "mariadb", "server", "mariadbd"})
REDIS_FILES = ("/etc/redis/redis.conf", "/etc/redis.conf")
POSTGRES_CONFIGS = "/etc/postgresql/*/*/postgresql.conf"
POSTGRES_INCLUDES = "/etc/postgresql/*/*/conf.d/*.conf"
POSTGRES_HBA = "/etc/postgresql/*/*/pg_hba.conf"
READS = HostReads(
    purpose="PostgreSQL, MySQL/MariaDB and Redis server configuration",
    files=(*MYSQL_FILES, *REDIS_FILES), config_dirs=MYSQL_DIRS,
    globs=(POSTGRES_CONFIGS, POSTGRES_HBA, POSTGRES_INCLUDES),
)


@dataclass(frozen=True)
class Setting:
    """A configuration value and where it was set (the last setting wins)."""

    value: str
    location: str


@dataclass(frozen=True)
class HbaLine:
    """One pg_hba.conf rule."""

    kind: str
    database: str
    user: str
    method: str
    location: str
    text: str


@dataclass(frozen=True)
class PostgresCluster:
    """One PostgreSQL cluster's configuration directory."""

    directory: str
    ssl: Setting | None
    hba: list[HbaLine]
    data_directory: Setting | None = None


@dataclass(frozen=True)
class DatabaseConfigs:
    """The database servers configured on the host (empty lists: not installed)."""

    postgres: list[PostgresCluster]
    mysql_files: list[str]
    mysql_secure_transport: Setting | None
    redis_file: str | None
    redis_password_set: bool
    redis_protected_mode: Setting | None
    redis_bind: Setting | None
    servers: dict[str, ServerState] = field(default_factory=dict)   # by kind: on or off
    mysql_datadir: Setting | None = None
    redis_dir: Setting | None = None


def database_configs(context: TargetContext) -> DatabaseConfigs:
    """PostgreSQL clusters below /etc/postgresql, my.cnf and its directories, redis.conf."""
    transport = prefetch_host(context)
    mysql_files, mysql_settings = _mysql(transport)
    redis = present_texts(transport, list(REDIS_FILES))
    redis_file = next(iter(redis), None)
    redis_settings = _key_values(redis[redis_file], redis_file) if redis_file else {}
    requirepass = redis_settings.pop("requirepass", None)    # the secret is dropped here
    password = bool(requirepass and requirepass.value) or \
        _redis_acl_password(redis.get(redis_file or "", ""))
    return DatabaseConfigs(
        postgres=_postgres(transport), mysql_files=mysql_files,
        mysql_secure_transport=mysql_settings.get("require_secure_transport"),
        redis_file=redis_file, redis_password_set=password,
        redis_protected_mode=redis_settings.get("protected-mode"),
        redis_bind=redis_settings.get("bind"), servers=context.gather(server_states),
        mysql_datadir=mysql_settings.get("datadir"), redis_dir=redis_settings.get("dir"))


def _postgres(transport: Transport) -> list[PostgresCluster]:
    clusters = []
    included = transport.glob(POSTGRES_INCLUDES)
    for conf in transport.glob(POSTGRES_CONFIGS):
        directory = str(PurePosixPath(conf).parent)
        paths = [conf, *sorted(p for p in included if p.startswith(f"{directory}/conf.d/"))]
        settings: dict[str, Setting] = {}
        for path, text in present_texts(transport, paths).items():
            settings.update(_key_values(text, path, separator="="))
        hba_text = present_texts(transport, [f"{directory}/pg_hba.conf"])
        hba = [line for path, text in hba_text.items() for line in parse_pg_hba(text, path)]
        clusters.append(PostgresCluster(directory, settings.get("ssl"), hba,
                                        settings.get("data_directory")))
    return clusters


def parse_pg_hba(text: str, path: str) -> list[HbaLine]:
    """The rules of a pg_hba.conf: type, database, user, [address], method."""
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = strip_comment(raw).split()
        if len(fields) < 4 or fields[0].startswith("include"):
            continue
        method_index = 3 if fields[0] == "local" else 4
        if fields[0] != "local" and len(fields) > 4 and "/" not in fields[3] \
                and re.fullmatch(r"[\d.]+", fields[3]):
            method_index = 5          # "address mask" written as two fields
        if len(fields) > method_index:
            lines.append(HbaLine(fields[0], fields[1], fields[2], fields[method_index],
                                 f"{path}:{number}", strip_comment(raw)))
    return lines


def _key_values(text: str, path: str, separator: str | None = None) -> dict[str, Setting]:
    settings: dict[str, Setting] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = strip_comment(raw)
        if separator and separator in line:
            key, _, value = line.partition(separator)
        else:
            key, _, value = line.partition(" ")
        if key.strip():
            settings[key.strip().lower()] = Setting(value.strip().strip("'\""), f"{path}:{number}")
    return settings


def _redis_acl_password(text: str) -> bool:
    # "user NAME on >password ..." or "#<sha256>" gives that user a password.
    return any(re.match(r"^\s*user\s+\S+.*\s(?:>|#)\S+", line) for line in text.splitlines())


def _mysql(transport: Transport) -> tuple[list[str], dict[str, Setting]]:
    """The files read and the server sections' settings (dashes as underscores, the last
    setting wins; a bare option is ON)."""
    paths = list(MYSQL_FILES)
    for directory in MYSQL_DIRS:
        paths += sorted(p for p in dir_files(transport, directory) if p.endswith(".cnf"))
    found = present_texts(transport, paths)
    settings: dict[str, Setting] = {}
    for path, text in found.items():
        section = ""
        for number, raw in enumerate(text.splitlines(), start=1):
            line = strip_comment(strip_comment(raw), ";")
            if line.startswith("["):
                section = line.strip("[]").strip().lower()
                continue
            key, _, value = line.partition("=")
            if section in MYSQL_SERVER_SECTIONS and key.strip():
                settings[key.strip().lower().replace("-", "_")] = \
                    Setting(value.strip().strip("'\"") or "ON", f"{path}:{number}")
    return list(found), settings
