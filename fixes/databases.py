"""Database servers' configuration files: PostgreSQL ssl and pg_hba methods, MariaDB/MySQL
secure transport, the Redis password."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from audit.fix import RELOAD_SERVICES, Handler, Remedy, Safety, Task, Template, fixer
from audit.model.results import Result

# Debian's layout: /etc/postgresql/VERSION/CLUSTER, binaries in /usr/lib/postgresql/VERSION.
CLUSTER = re.compile(r"/etc/postgresql/(\d+(?:\.\d+)?)/([A-Za-z0-9_.-]+)")
SSL_OFF = re.compile(r"(/etc/postgresql/[^:]+): ssl = .*?(?: \((/[^()]+):\d+\))?")
HBA_LINE = re.compile(r"(/[^:]+):\d+: (.+)")
SCRAM = "scram-sha-256"


def _postgres_handlers(cluster: str) -> tuple[Handler, Handler] | None:
    """`postgres -C` proves the changed postgresql.conf parses before pg_ctlcluster reloads
    it (PostgreSQL keeps its previous pg_hba.conf when a new one has errors)."""
    match = CLUSTER.fullmatch(cluster)
    if match is None:
        return None
    version, name = match.groups()
    check = Handler(f"check PostgreSQL {version}/{name} configuration (postgres -C)",
                    "ansible.builtin.command",
                    {"argv": ["runuser", "-u", "postgres", "--",
                              f"/usr/lib/postgresql/{version}/bin/postgres", "-D", cluster,
                              "-C", "ssl"]}, changed_when=False)
    reload = Handler(f"reload PostgreSQL {version}/{name}", "ansible.builtin.command",
                     {"argv": ["pg_ctlcluster", version, name, "reload"]},
                     when=f"{RELOAD_SERVICES} | bool", changed_when=True)
    return check, reload


def _not_debian(cluster: str) -> Remedy:
    return Remedy.cannot(f"{cluster} is not a Debian cluster directory "
                         "(/etc/postgresql/VERSION/NAME)")


@fixer("hostdb.postgres_ssl")
def postgres_ssl(result: Result) -> Remedy:
    """ssl = on, where the cluster sets ssl (or in its postgresql.conf)."""
    tasks = []
    for entry in result.evidence.observed or []:
        match = SSL_OFF.fullmatch(str(entry))
        if match is None:
            return Remedy.cannot(f"the setting's place is not known: {entry}")
        cluster, where = match.group(1), match.group(2) or f"{match.group(1)}/postgresql.conf"
        handlers = _postgres_handlers(cluster)
        if handlers is None:
            return _not_debian(cluster)
        tasks.append(Task(
            f"PostgreSQL {cluster}: ssl = on", "ansible.builtin.lineinfile",
            {"path": where, "regexp": r"^\s*#?\s*ssl\s*=", "line": "ssl = on"},
            Safety.REVIEW, "PostgreSQL then needs ssl_cert_file and ssl_key_file to exist "
            "(Debian points them at the snakeoil pair): without them it will not start",
            notify=handlers))
    return Remedy(tuple(tasks)) if tasks else Remedy.cannot("no cluster named")


def _method_swap(text: str, method: str) -> str | None:
    """A regexp that finds this pg_hba line (any spacing) up to its method; None when the
    method is not among its fields."""
    fields = text.split()
    index = 3 if fields[0] == "local" else 4
    while index < len(fields) and fields[index] != method:
        index += 1
    if index >= len(fields):
        return None
    head = r"\s+".join(re.escape(field) for field in fields[:index])
    return rf"^(\s*{head}\s+){re.escape(method)}(?=\s|$)"


@fixer("hostdb.pg_hba_trust")
def pg_hba_trust(result: Result) -> Remedy:
    """Each line with a forbidden method asks for a SCRAM password instead."""
    forbidden = re.findall(r"\b(trust|password|md5|ident|peer|reject)\b",
                           str(result.evidence.expected))
    tasks = []
    for entry in result.evidence.observed or []:
        match = HBA_LINE.fullmatch(str(entry))
        path, text = (match.group(1), match.group(2)) if match else ("", "")
        cluster = str(PurePosixPath(path).parent)
        method = next((f for f in text.split()[3:] if f in forbidden), None)
        regexp = _method_swap(text, method) if method else None
        handlers = _postgres_handlers(cluster)
        if regexp is None:
            return Remedy.cannot(f"the pg_hba.conf line is not known: {entry}")
        if handlers is None:
            return _not_debian(cluster)
        tasks.append(Task(
            f"{path}: {' '.join(text.split())} -> {SCRAM}", "ansible.builtin.replace",
            {"path": path, "regexp": regexp, "replace": rf"\g<1>{SCRAM}"}, Safety.REVIEW,
            f"clients that log in without a password, or whose role has no SCRAM password "
            f"(only md5 or none), are refused: set their passwords first ({method} -> {SCRAM})",
            notify=handlers))
    return Remedy(tuple(tasks)) if tasks else Remedy.cannot("no pg_hba.conf line named")


MYSQL_DROP_IN = "99-mis-audit.cnf"
MYSQL_DIRS = ("/etc/mysql/mariadb.conf.d", "/etc/mysql/mysql.conf.d", "/etc/mysql/conf.d",
              "/etc/my.cnf.d")
LOCATED = re.compile(r"(/.+):\d+")


@fixer("hostdb.mysql_secure_transport")
def mysql_secure_transport(result: Result) -> Remedy:
    """require_secure_transport = ON where it is set OFF, or in a drop-in of ours."""
    location = LOCATED.fullmatch(str(result.evidence.details.get("location") or ""))
    files = [str(f) for f in result.evidence.details.get("files") or []]
    mariadb = any("mariadb" in f for f in files)
    restart = Handler("restart " + ("MariaDB" if mariadb else "MySQL"),
                      "ansible.builtin.service",
                      {"name": "mariadb" if mariadb else "mysql", "state": "restarted"},
                      when=f"{RELOAD_SERVICES} | bool")
    reason = ("clients that connect without TLS (old drivers, the MIS itself if it is not "
              "configured for TLS) are refused; the server needs a certificate (ssl_cert, "
              "ssl_key)")
    if location:
        task = Task(f"{location.group(1)}: require_secure_transport = ON",
                    "ansible.builtin.lineinfile",
                    {"path": location.group(1),
                     "regexp": r"^\s*require[-_]secure[-_]transport\b",
                     "line": "require_secure_transport = ON"}, Safety.REVIEW, reason,
                    notify=(restart,))
        return Remedy((task,))
    directory = next((d for d in MYSQL_DIRS for f in files if f.startswith(d + "/")), None)
    if directory is None:
        return Remedy.cannot("no included configuration directory to add a file to")
    path = f"{directory}/{MYSQL_DROP_IN}"
    return Remedy((Task(f"{path}: require_secure_transport = ON", "ansible.builtin.copy",
                        {"dest": path, "content": "# mis-audit fix\n[mysqld]\n"
                         "require_secure_transport = ON\n", "owner": "root", "group": "root",
                         "mode": "0644"}, Safety.REVIEW, reason, notify=(restart,)),))


REDIS_PASSWORD = "mis_audit_redis_password"


@fixer("hostdb.redis_auth")
def redis_auth(result: Result) -> Remedy:
    """requirepass from a variable the user supplies (ansible-vault), protected-mode yes."""
    path = result.evidence.details.get("file")
    if not path:
        return Remedy.cannot("the Redis configuration file is not known")
    restart = Handler("restart Redis", "ansible.builtin.service",
                      {"name": "redis-server", "state": "restarted"},
                      when=f"{RELOAD_SERVICES} | bool")
    reason = (f"every Redis client must then send the password (give it to the MIS first), "
              f"and until it does only local clients are let in; pass the password with "
              f"-e @vault.yml ({REDIS_PASSWORD})")
    password = Task(f"{path}: requirepass (from {REDIS_PASSWORD})", "ansible.builtin.lineinfile",
                    {"path": str(path), "regexp": r"^\s*#?\s*requirepass\s",
                     "line": Template(f"requirepass {{{{ {REDIS_PASSWORD} | mandatory }}}}")},
                    Safety.REVIEW, reason, notify=(restart,), secret=True)
    protected = Task(f"{path}: protected-mode yes", "ansible.builtin.lineinfile",
                     {"path": str(path), "regexp": r"^\s*#?\s*protected-mode\s",
                      "line": "protected-mode yes"}, Safety.REVIEW, reason, notify=(restart,))
    return Remedy((password, protected))
