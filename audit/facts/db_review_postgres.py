"""PostgreSQL's catalogue as a read-only audit role sees it.

What a role with LOGIN and `pg_read_all_settings` (and CONNECT on the databases) can read:
pg_roles, pg_settings, and per database pg_class/pg_namespace with their ACLs and the
`has_table_privilege` function, which resolves PUBLIC, membership and ownership the way the
server does. `pg_authid` (password hashes) is readable by superusers only: without it, which
roles still store MD5 hashes is reported as not visible. Sessions are read-only with a
statement timeout; every database is a connection of its own, at most MAX_DATABASES.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import psycopg

from audit.facts.databases import NO_PASSFILE
from audit.facts.db_review import (
    Answer,
    Question,
    ReviewTarget,
    ServiceReview,
    answer,
    application_accounts,
    reviewer,
)
from audit.messages import Text, says

MAX_DATABASES = 20
BOOTSTRAP_SUPERUSER_OID = 10        # the role initdb created (`postgres`)
# Predefined roles that reach beyond the database: the server's files and programs.
SERVER_ROLES = ("pg_read_server_files", "pg_write_server_files", "pg_execute_server_program")
# Predefined roles that write, or act on other sessions.
WRITING_ROLES = ("pg_write_all_data", "pg_signal_backend", "pg_checkpoint",
                 *SERVER_ROLES)
SETTINGS = ("listen_addresses", "ssl", "ssl_min_protocol_version", "password_encryption",
            "log_connections", "log_disconnections", "log_statement",
            "shared_preload_libraries", "pgaudit.log")
MODERN_TLS = ("TLSv1.2", "TLSv1.3")
LOGGED_STATEMENTS = ("ddl", "mod", "all")
# Written without `%`, which the driver would take for a placeholder.
USER_SCHEMAS = "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"


@dataclass(frozen=True)
class Role:
    """A role as pg_roles shows it, with its memberships in the predefined roles above."""

    name: str
    superuser: bool
    createrole: bool
    createdb: bool
    replication: bool
    bypassrls: bool
    login: bool
    expires: Any            # datetime, 'infinity' or None
    bootstrap: bool
    memberships: tuple[str, ...]

    def administration(self) -> list[Text]:
        """The attributes and memberships that administer the server, not just use it (a
        superuser holds every other one, so it is named alone)."""
        if self.superuser:
            return ["SUPERUSER"]
        held: list[Text] = [name for name, on in (("CREATEROLE", self.createrole),
                                                  ("REPLICATION", self.replication),
                                                  ("BYPASSRLS", self.bypassrls)) if on]
        return held + [says("member of {role}", role=role) for role in self.memberships
                       if role in SERVER_ROLES]

    def writes(self) -> list[Text]:
        """What lets this role change the server beyond reading."""
        if self.superuser:
            return self.administration()
        held = self.administration() + (["CREATEDB"] if self.createdb else [])
        return held + [says("member of {role}", role=role) for role in self.memberships
                       if role in WRITING_ROLES and role not in SERVER_ROLES]


def _connect(target: ReviewTarget, dbname: str) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=target.address, port=target.port, user=target.login.user,
        password=target.login.password, dbname=dbname, sslmode="prefer", passfile=NO_PASSFILE,
        connect_timeout=max(2, math.ceil(target.timeout)), gssencmode="disable",
        application_name="mis-audit-review", autocommit=True,
        options="-c default_transaction_read_only=on -c statement_timeout=5000")


def _rows(connection: psycopg.Connection[Any], sql: str,
          params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return connection.execute(sql, params or None).fetchall()


def _roles(connection: psycopg.Connection[Any]) -> list[Role]:
    rows = _rows(connection, """
        SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication,
               r.rolbypassrls, r.rolcanlogin, r.rolvaliduntil, r.oid = %s,
               ARRAY(SELECT b.rolname FROM pg_roles b WHERE b.rolname = ANY(%s)
                     AND pg_has_role(r.oid, b.oid, 'MEMBER'))
        FROM pg_roles r WHERE r.rolname !~ '^pg_' ORDER BY r.rolname""",
                 (BOOTSTRAP_SUPERUSER_OID, list(WRITING_ROLES)))
    return [Role(name, superuser, createrole, createdb, replication, bypassrls, login,
                 expires, bootstrap, tuple(memberships))
            for name, superuser, createrole, createdb, replication, bypassrls, login, expires,
            bootstrap, memberships in rows]


@dataclass(frozen=True)
class DatabaseView:
    """What one database's catalogue shows."""

    name: str
    own_writable_tables: int
    public_grants: list[Text]
    audit_table_writers: list[Text]
    audit_tables: list[str]
    patient_tables: dict[str, bool]         # schema.table: row-level security enabled


def _database_view(connection: psycopg.Connection[Any], name: str, target: ReviewTarget,
                   app_roles: list[str]) -> DatabaseView:
    writable = _rows(connection, f"""
        SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMAS}
          AND has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')""")[0][0]
    public = _rows(connection, f"""
        SELECT n.nspname, a.privilege_type FROM pg_namespace n,
               aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
        WHERE a.grantee = 0 AND a.privilege_type = 'CREATE' AND {USER_SCHEMAS}
        UNION ALL
        SELECT n.nspname || '.' || c.relname, string_agg(a.privilege_type, ', ')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
             aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
        WHERE a.grantee = 0 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {USER_SCHEMAS}
        GROUP BY 1 ORDER BY 1 LIMIT 200""")
    audit = _rows(connection, f"""
        SELECT n.nspname || '.' || c.relname, r.rolname,
               has_table_privilege(r.oid, c.oid, 'UPDATE'),
               has_table_privilege(r.oid, c.oid, 'DELETE'),
               has_table_privilege(r.oid, c.oid, 'TRUNCATE')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_roles r ON r.rolname = ANY(%s)
        WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMAS} AND c.relname ~* %s
        ORDER BY 1, 2 LIMIT 1000""", (app_roles, target.scope.audit_tables))
    patient = _rows(connection, f"""
        SELECT n.nspname || '.' || c.relname, c.relrowsecurity
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMAS}
          AND (c.relname = ANY(%s) OR n.nspname || '.' || c.relname = ANY(%s))
        ORDER BY 1""", (target.scope.patient_tables, target.scope.patient_tables))
    return DatabaseView(
        name, int(writable), [says("{database}: {what} granted to PUBLIC ({privileges})",
                                   database=name, what=what, privileges=privileges)
                              for what, privileges in public],
        [_writer(name, table, role, flags) for table, role, *flags in audit
         if role is not None and any(flags)],
        sorted({f"{name}.{table}" for table, *_ in audit}),
        {f"{name}.{table}": bool(enabled) for table, enabled in patient})


def _writer(database: str, table: str, role: str, flags: list[bool]) -> Text:
    rights = [right for right, on in zip(("UPDATE", "DELETE", "TRUNCATE"), flags) if on]
    return says("{account} may {rights} {table}", account=role, rights=", ".join(rights),
                table=f"{database}.{table}")


@reviewer("postgresql")
def review_postgresql(target: ReviewTarget) -> ServiceReview:
    """The audit role's review: cluster-wide facts once, then each database it may enter."""
    with _connect(target, "postgres") as connection:
        me = _rows(connection, "SELECT current_user")[0][0]
        roles = _roles(connection)
        settings = dict(_rows(connection, "SELECT name, setting FROM pg_settings "
                                          "WHERE name = ANY(%s)", (list(SETTINGS),)))
        md5_roles = _md5_roles(connection)
        databases = [row[0] for row in _rows(connection, """
            SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate
              AND has_database_privilege(datname, 'CONNECT') ORDER BY datname""")]
        named = target.app_accounts
        inferred = [r.name for r in roles if r.login and not r.superuser and r.name != me]
        app_roles = application_accounts(named, inferred)
        views = [_database_view(connection, "postgres", target, app_roles)] \
            if "postgres" in databases else []
    for name in [db for db in databases if db != "postgres"][:MAX_DATABASES - len(views)]:
        with _connect(target, name) as connection:
            views.append(_database_view(connection, name, target, app_roles))
    by_name = {role.name: role for role in roles}
    skipped = databases[MAX_DATABASES:]
    answers = {
        Question.OWN_PRIVILEGES: _own_privileges(by_name[me], views),
        Question.ADMIN_PRIVILEGES: _admin_privileges(by_name, app_roles, named),
        Question.PASSWORDS: _passwords(roles, settings, md5_roles),
        Question.PUBLIC_GRANTS: answer([g for v in views for g in v.public_grants],
                                       [f"schemas and tables of {v.name}" for v in views]),
        Question.AUDIT_TABLES: answer([w for v in views for w in v.audit_table_writers],
                                      [t for v in views for t in v.audit_tables]),
        Question.ACTIVITY_LOGGING: _activity_logging(settings),
        Question.TLS_SETTINGS: _tls_settings(settings),
    }
    if target.scope.patient_tables:
        answers[Question.ROW_SECURITY] = _row_security(views, target.scope.patient_tables)
    if skipped:
        answers = {q: _limited(a, f"databases not reviewed (more than {MAX_DATABASES}): "
                                  f"{', '.join(skipped[:10])}") for q, a in answers.items()}
    return ServiceReview("postgresql", target.port, me, answers, settings)


def _limited(given: Answer, limit: str) -> Answer:
    return Answer(given.finding_texts, given.judged, given.unseen_text, (*given.limits, limit))


def _md5_roles(connection: psycopg.Connection[Any]) -> list[str] | None:
    """Login roles whose stored password is an MD5 hash (the hash never leaves the server);
    None when pg_authid is not readable (it is to superusers only)."""
    if not _rows(connection, "SELECT has_table_privilege('pg_authid', 'SELECT')")[0][0]:
        return None
    return [row[0] for row in _rows(connection, "SELECT rolname FROM pg_authid WHERE "
                                                "rolcanlogin AND left(rolpassword, 3) = 'md5'")]


def _own_privileges(me: Role, views: list[DatabaseView]) -> Answer:
    findings = [says("the audit role {role} has {held}", role=me.name, held=held)
                for held in me.writes()]
    findings += [says("the audit role {role} may write {count} table(s) in {database}",
                      role=me.name, count=v.own_writable_tables, database=v.name)
                 for v in views if v.own_writable_tables]
    return answer(findings, [f"attributes and memberships of {me.name}"] +
                  [f"table privileges of {me.name} in {v.name}" for v in views])


def _admin_privileges(roles: dict[str, Role], app_roles: list[str],
                      named: tuple[str, ...]) -> Answer:
    present = [name for name in app_roles if name in roles]
    findings: list[Text] = [says("application role {role} has {held}", role=name, held=held)
                            for name in present for held in roles[name].administration()]
    missing = [name for name in app_roles if name not in roles]
    limits = [f"application role(s) named in the inventory do not exist: {', '.join(missing)}"] \
        if missing else []
    source = "named in the inventory" if named else "every login role that is neither a " \
        "superuser nor the audit role"
    return answer(findings, [f"application roles ({source}): {', '.join(present) or 'none'}"],
                  limits=limits)


def _passwords(roles: list[Role], settings: dict[str, str],
               md5_roles: list[str] | None) -> Answer:
    findings: list[Text] = []
    if settings.get("password_encryption", "").lower() == "md5":
        findings.append(says("password_encryption = md5: new passwords are stored as MD5 "
                             "hashes"))
    findings += [says("role {role} stores an MD5 password hash", role=name)
                 for name in md5_roles or []]
    ordinary = [r for r in roles if r.login and not r.bootstrap]
    findings += [says("login role {role} has no password expiry (VALID UNTIL)", role=r.name)
                 for r in ordinary if r.expires is None or str(r.expires) == "infinity"]
    limits = [] if md5_roles is not None else [
        "which existing roles still store MD5 hashes: pg_authid is readable by superusers only"]
    return answer(findings, ["password_encryption"] +
                  [f"password expiry of {r.name}" for r in ordinary], limits=limits)


def _activity_logging(settings: dict[str, str]) -> Answer:
    findings: list[Text] = [says("{setting} = {value}", setting=name,
                                 value=settings.get(name, "off"))
                            for name in ("log_connections", "log_disconnections")
                            if settings.get(name, "off") != "on"]
    statement = settings.get("log_statement", "none")
    preload = settings.get("shared_preload_libraries")
    pgaudit = "pgaudit" in re.split(r"[\s,]+", preload or "") and \
        settings.get("pgaudit.log", "none") not in ("", "none")
    unseen: Text = ""
    if statement not in LOGGED_STATEMENTS and not pgaudit:
        if preload is None:
            unseen = says("log_statement is none, and whether pgaudit is loaded "
                          "(shared_preload_libraries) needs pg_read_all_settings")
        else:
            findings.append(says("changes are not logged: log_statement = {value} and "
                                 "pgaudit is not loaded with pgaudit.log set", value=statement))
    return answer(findings, ["log_connections", "log_disconnections", "log_statement",
                             "shared_preload_libraries", "pgaudit.log"], unseen=unseen)


def _tls_settings(settings: dict[str, str]) -> Answer:
    findings: list[Text] = []
    if settings.get("ssl", "off") != "on":
        findings.append(says("ssl = {value}: the server offers no TLS",
                             value=settings.get("ssl", "off")))
    minimum = settings.get("ssl_min_protocol_version", "")
    if not minimum:
        findings.append(says("ssl_min_protocol_version = unset (TLS 1.2 expected)"))
    elif minimum not in MODERN_TLS:
        findings.append(says("ssl_min_protocol_version = {value} (TLS 1.2 expected)",
                             value=minimum))
    return answer(findings, ["ssl", "ssl_min_protocol_version"])


def _row_security(views: list[DatabaseView], named: list[str]) -> Answer:
    found = {table: enabled for view in views for table, enabled in view.patient_tables.items()}
    findings: list[Text] = [says("{table} has no row-level security", table=table)
                            for table, on in found.items() if not on]
    seen = {table.split(".", 1)[1] for table in found}
    missing = [name for name in named if not any(
        entry == name or entry.endswith("." + name) for entry in seen)]
    limits = [f"patient table(s) not found in the databases reviewed: {', '.join(missing)}"] \
        if missing else []
    return answer(findings, sorted(found), limits=limits)
