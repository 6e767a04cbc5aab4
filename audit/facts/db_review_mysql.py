"""MariaDB/MySQL accounts, grants and settings as a read-only audit account sees them.

The audit account needs `SELECT` on mysql.user, mysql.db, mysql.tables_priv and
mysql.roles_mapping (accounts, grants, and the roles that carry grants to an account), on
mysql.global_priv for password lifetimes and locked accounts, and `SHOW VIEW` on
the application's schemas so that their tables are listed in information_schema (no row is
readable with it).
Only flags and names are selected: `authentication_string = ''` is computed by the server, so
no hash reaches the client. Without a grant, the questions it answers are "not visible".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pymysql  # type: ignore[import-untyped]

from audit.facts.db_review import (
    Answer,
    Question,
    ReviewTarget,
    ServiceReview,
    answer,
    reviewer,
)
from audit.messages import Text, says

TABLE_ACCESS_DENIED = (1142, 1143)      # SELECT command denied (table, column)
# Accounts the server itself uses or was installed with; never the application's.
SYSTEM_ACCOUNTS = ("root", "mariadb.sys", "mysql", "debian-sys-maint", "PUBLIC")
# Privileges that change nothing; any other one lets the audit account write or administer.
READ_ONLY = frozenset({"USAGE", "SELECT", "SHOW DATABASES", "SHOW VIEW", "PROCESS",
                       "REPLICATION CLIENT", "BINLOG MONITOR", "SLAVE MONITOR",
                       "REPLICA MONITOR"})
ADMINISTRATION = ("Super", "File", "Grant", "Create_user", "Shutdown", "Reload")
EDITING = ("Update", "Delete", "Drop")
VARIABLES = ("require_secure_transport", "have_ssl", "tls_version", "local_infile",
             "general_log", "default_password_lifetime", "server_audit_logging",
             "server_audit_events")
OLD_PROTOCOLS = ("TLSv1.0", "TLSv1.1")
NO_PASSWORD_PLUGINS = ("", "mysql_native_password", "mysql_old_password")
SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")


class NotVisible(Exception):
    """A catalogue table the audit account may not read."""


@dataclass(frozen=True)
class Account:
    """An account (not a role) of mysql.user: flags only."""

    user: str
    host: str
    no_password: bool
    plugin: str
    privileges: frozenset[str]      # global privileges held, by column stem ("Super", ...),
                                    # its own and its roles' (any granted role can be SET)
    all_columns: frozenset[str]
    roles: tuple[str, ...] = ()     # roles granted to it, directly or through other roles

    @property
    def name(self) -> str:
        """user@host, as GRANT names it."""
        return f"{self.user}@{self.host}"

    def administration(self) -> list[str]:
        """The global privileges that administer the server."""
        if self.privileges >= self.all_columns - {"Grant"}:
            return ["ALL PRIVILEGES ON *.*"]
        return [f"{stem.upper().replace('_', ' ')} ON *.*" for stem in ADMINISTRATION
                if stem in self.privileges]


SSL_NOT_SUPPORTED = 2026


def _connect(target: ReviewTarget) -> pymysql.Connection:
    """Over TLS (without certificate checks: this reads grants), in clear where the server
    offers no TLS, as libmysqlclient's `--ssl-mode=PREFERRED` does."""
    options = {"host": target.address, "port": target.port, "user": target.login.user,
               "password": target.login.password, "connect_timeout": target.timeout,
               "read_timeout": target.timeout, "write_timeout": target.timeout,
               "autocommit": True}
    try:
        return pymysql.connect(ssl={"check_hostname": False}, **options)
    except pymysql.err.OperationalError as error:
        if not error.args or error.args[0] != SSL_NOT_SUPPORTED:
            raise
    return pymysql.connect(**options)


def _rows(connection: pymysql.Connection, sql: str,
          params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        try:
            cursor.execute(sql, params)
        except pymysql.err.OperationalError as error:
            if error.args and error.args[0] in TABLE_ACCESS_DENIED:
                raise NotVisible(str(error.args[1])) from None
            raise
        return list(cursor.fetchall())


def _placeholders(values: tuple[str, ...]) -> str:
    """`%s, %s, ...`: one query parameter per value."""
    return ", ".join(["%s"] * len(values))


def _visible(connection: pymysql.Connection, sql: str,
             params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]] | None:
    """The rows, or None when the account may not read the table."""
    try:
        return _rows(connection, sql, params)
    except NotVisible:
        return None


def _accounts(connection: pymysql.Connection) -> tuple[list[Account], bool] | None:
    """The accounts with their effective global privileges, and whether the roles granted
    to them could be read (mysql.roles_mapping); None when mysql.user is not readable."""
    columns = _visible(connection, "SHOW COLUMNS FROM mysql.user LIKE '%\\_priv'")
    if columns is None:
        return None
    stems = [str(row[0])[:-len("_priv")] for row in columns]
    flags = ", ".join(f"`{stem}_priv` = 'Y'" for stem in stems)
    rows = _rows(connection, "SELECT User, Host, is_role = 'Y', authentication_string = '' "
                             f"AND plugin IN ({_placeholders(NO_PASSWORD_PLUGINS)}), "
                             f"plugin, {flags} FROM mysql.user ORDER BY User, Host",
                 NO_PASSWORD_PLUGINS)
    held = {(str(user), str(host)): frozenset(s for s, on in zip(stems, bits) if on)
            for user, host, _, _, _, *bits in rows}
    mapping = _visible(connection, "SELECT User, Host, Role FROM mysql.roles_mapping")
    granted: dict[tuple[str, str], list[str]] = {}
    for user, host, role in mapping or []:
        granted.setdefault((str(user), str(host)), []).append(str(role))
    accounts = []
    for user, host, is_role, no_password, plugin, *_ in rows:
        if is_role:
            continue
        roles = _reachable_roles(granted, (str(user), str(host)))
        privileges = held[(str(user), str(host))].union(
            *(held.get((role, ""), frozenset()) for role in roles))
        accounts.append(Account(str(user), str(host), bool(no_password), str(plugin or ""),
                                privileges, frozenset(stems), tuple(sorted(roles))))
    return accounts, mapping is not None


def _reachable_roles(granted: dict[tuple[str, str], list[str]],
                     grantee: tuple[str, str]) -> set[str]:
    """Every role granted to `grantee`, and to those roles in turn (a role's host is '')."""
    found: set[str] = set()
    waiting = list(granted.get(grantee, []))
    while waiting:
        role = waiting.pop()
        if role not in found:
            found.add(role)
            waiting += granted.get((role, ""), [])
    return found


@dataclass(frozen=True)
class Grants:
    """Schema- and table-level grants of mysql.db and mysql.tables_priv."""

    schemas: list[tuple[str, str, str, frozenset[str]]]        # user, host, db pattern, privs
    tables: list[tuple[str, str, str, str, frozenset[str]]]    # user, host, db, table, privs


def _grants(connection: pymysql.Connection) -> Grants | None:
    schemas = _visible(connection, "SELECT User, Host, Db, " + ", ".join(
        f"`{stem}_priv` = 'Y'" for stem in (*EDITING, "Select")) + " FROM mysql.db")
    tables = _visible(connection, "SELECT User, Host, Db, Table_name, Table_priv "
                                  "FROM mysql.tables_priv")
    if schemas is None or tables is None:
        return None
    return Grants(
        [(user, host, db, frozenset(s for s, on in zip((*EDITING, "Select"), held) if on))
         for user, host, db, *held in schemas],
        [(user, host, db, table, frozenset(p.capitalize() for p in str(privs).split(",") if p))
         for user, host, db, table, privs in tables])


def _like(pattern: str, value: str) -> bool:
    """MySQL's LIKE on a grant's database name: `%` and `_` are wildcards, `\\` escapes."""
    pieces = re.findall(r"\\.|[%_]|[^\\%_]+|\\", pattern)
    regex = "".join(".*" if piece == "%" else "." if piece == "_"
                    else re.escape(piece[1:] if len(piece) == 2 and piece[0] == "\\" else piece)
                    for piece in pieces)
    return re.fullmatch(regex, value) is not None


@reviewer("mysql")
def review_mysql(target: ReviewTarget) -> ServiceReview:
    """The audit account's review, over one connection."""
    with _connect(target) as connection:
        me = str(_rows(connection, "SELECT CURRENT_USER()")[0][0])
        own = [str(row[0]) for row in _rows(connection, _OWN_PRIVILEGES)]
        settings = {str(k).lower(): str(v) for k, v in _rows(
            connection, "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema."
            f"GLOBAL_VARIABLES WHERE VARIABLE_NAME IN ({_placeholders(VARIABLES)})",
            VARIABLES)}
        audit_plugin = _rows(connection, "SELECT PLUGIN_STATUS FROM information_schema.PLUGINS "
                                         "WHERE PLUGIN_NAME = 'SERVER_AUDIT'")
        view = _accounts(connection)
        grants = _grants(connection)
        extra = _extra_flags(connection)
        tables = _rows(connection, "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema."
                                   "TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA "
                                   f"NOT IN ({_placeholders(SYSTEM_SCHEMAS)})",
                       SYSTEM_SCHEMAS)
    audit_active = bool(audit_plugin) and str(audit_plugin[0][0]).upper() == "ACTIVE"
    answers = {
        Question.OWN_PRIVILEGES: answer(
            [says("the audit account {account} holds {privilege}", account=me,
                  privilege=privilege) for privilege in own
             if privilege.upper() not in READ_ONLY],
            [f"grants of {me}"]),
        Question.TLS_SETTINGS: _tls_settings(settings),
        Question.ACTIVITY_LOGGING: _activity_logging(settings, audit_active),
    }
    if view is None:
        unseen = says("mysql.user is not readable to the audit account (GRANT SELECT ON "
                      "mysql.user)")
        for question in (Question.ADMIN_PRIVILEGES, Question.LOGINS, Question.PASSWORDS,
                         Question.AUDIT_TABLES, Question.PUBLIC_GRANTS):
            answers[question] = Answer(unseen_text=unseen)
    else:
        accounts, roles_seen = view
        apps = _application_accounts(accounts, target.app_accounts, me)
        answers |= {
            Question.ADMIN_PRIVILEGES: _admin_privileges(apps, target.app_accounts, roles_seen),
            Question.LOGINS: _logins(accounts, extra),
            Question.PASSWORDS: _passwords(accounts, settings, extra),
            Question.PUBLIC_GRANTS: _public_grants(settings, grants),
            Question.AUDIT_TABLES: _audit_tables(apps, grants, tables,
                                                 target.scope.audit_tables, roles_seen),
        }
    return ServiceReview("mysql", target.port, me, answers,
                         {k: v for k, v in settings.items() if k in VARIABLES})


# The current account's own grants, at every level (information_schema shows one's own rows).
_OWN_PRIVILEGES = """
    SELECT DISTINCT PRIVILEGE_TYPE FROM (
      SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES
      UNION ALL SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES
      UNION ALL SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES
    ) AS granted
    WHERE GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''',
                           SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')
    ORDER BY 1"""


def _application_accounts(accounts: list[Account], named: tuple[str, ...],
                          me: str) -> list[Account]:
    """Named accounts (`user` or `user@host`), else every account but the audit account
    and the server's own."""
    if named:
        return [a for a in accounts if a.user in named or a.name in named]
    return [a for a in accounts if a.user and a.user not in SYSTEM_ACCOUNTS and a.name != me]


ROLES_UNSEEN = "privileges held through roles: mysql.roles_mapping is not readable"


def _admin_privileges(apps: list[Account], named: tuple[str, ...], roles_seen: bool) -> Answer:
    source = "named in the inventory" if named else "every account but root, the server's " \
        "own and the audit account"
    return answer([says("application account {account} holds {privilege} (roles: {roles})",
                        account=a.name, privilege=held, roles=", ".join(a.roles)) if a.roles
                   else says("application account {account} holds {privilege}",
                             account=a.name, privilege=held)
                   for a in apps for held in a.administration()],
                  [(f"application accounts ({source}): "
                   f"{', '.join(a.name for a in apps) or 'none'}")],
                  limits=[] if roles_seen else [ROLES_UNSEEN])


@dataclass(frozen=True)
class ExtraFlags:
    """What mysql.global_priv adds to mysql.user: lifetimes and locks, by (user, host)."""

    lifetime: dict[tuple[str, str], str | None]
    locked: frozenset[tuple[str, str]]


def _extra_flags(connection: pymysql.Connection) -> ExtraFlags | None:
    rows = _visible(connection, "SELECT User, Host, JSON_VALUE(Priv, '$.password_lifetime'), "
                                "JSON_VALUE(Priv, '$.account_locked') FROM mysql.global_priv")
    if rows is None:
        return None
    return ExtraFlags({(str(u), str(h)): None if v is None else str(v) for u, h, v, _ in rows},
                      frozenset((str(u), str(h)) for u, h, _, lock in rows
                                if lock in ("1", "true")))


def _logins(accounts: list[Account], extra: ExtraFlags | None) -> Answer:
    open_ = [a for a in accounts if extra is None or (a.user, a.host) not in extra.locked]
    findings: list[Text] = [says("anonymous account ''@{host}", host=a.host)
                            for a in open_ if not a.user]
    findings += [says("account {account} has no password", account=a.name)
                 for a in open_ if a.no_password and a.user]
    findings += [says("account {account} may log in from any host", account=a.name)
                 for a in open_ if a.host == "%" and a.user]
    limits = [] if extra else [("locked accounts are judged too: mysql.global_priv is not "
                               "readable")]
    return answer(findings, [f"{len(open_)} unlocked account(s) of mysql.user"], limits=limits)


def _passwords(accounts: list[Account], settings: dict[str, str],
               extra: ExtraFlags | None) -> Answer:
    default = settings.get("default_password_lifetime", "0")
    with_password = [a for a in accounts if not a.no_password and a.user
                     and a.plugin in NO_PASSWORD_PLUGINS]
    findings: list[Text] = [says("account {account} stores a pre-4.1 password hash",
                                 account=a.name)
                            for a in accounts if a.plugin == "mysql_old_password"]
    if extra is None:
        if default == "0":
            findings.append(says("default_password_lifetime = 0: passwords never expire"))
        return answer(findings, ["default_password_lifetime"], limits=[
            "per-account password lifetimes: mysql.global_priv is not readable"])
    with_password = [a for a in with_password if (a.user, a.host) not in extra.locked]
    for account in with_password:
        value = extra.lifetime.get((account.user, account.host))
        lifetime = default if value in (None, "-1") else str(value)
        if lifetime == "0":
            findings.append(says("account {account}: password never expires",
                                 account=account.name))
    return answer(findings, ["default_password_lifetime"] +
                  [f"password lifetime of {a.name}" for a in with_password])


def _public_grants(settings: dict[str, str], grants: Grants | None) -> Answer:
    findings: list[Text] = [says("local_infile = ON: every account may load files from its "
                                 "client host")] \
        if settings.get("local_infile", "OFF").upper() == "ON" else []
    if grants is None:
        return answer(findings, ["local_infile"], limits=[
            "grants to PUBLIC: mysql.db or mysql.tables_priv is not readable"])
    findings += [says("{what} granted to PUBLIC ({privileges})", what=f"{db}.*",
                      privileges=", ".join(sorted(privs)))
                 for user, _, db, privs in grants.schemas if user == "PUBLIC" and privs]
    findings += [says("{what} granted to PUBLIC ({privileges})", what=f"{db}.{table}",
                      privileges=", ".join(sorted(privs)))
                 for user, _, db, table, privs in grants.tables if user == "PUBLIC" and privs]
    return answer(findings, ["local_infile", "schema and table grants to PUBLIC"])


def _audit_tables(apps: list[Account], grants: Grants | None, tables: list[tuple[Any, ...]],
                  pattern: str, roles_seen: bool) -> Answer:
    audit = [(str(db), str(name)) for db, name in tables
             if re.search(pattern, str(name), re.IGNORECASE)]
    if grants is None:
        return Answer(unseen_text=says("mysql.db or mysql.tables_priv is not readable to the "
                                       "audit account"))
    findings: list[Text] = []
    for account in apps:
        for db, table in audit:
            rights = _editing_rights(account, grants, db, table)
            if rights:
                findings.append(says("{account} may {rights} {table}", account=account.name,
                                     rights=", ".join(rights), table=f"{db}.{table}"))
    limits = ["tables listed where the audit account has SHOW VIEW on the schema"]
    return answer(findings, [f"{db}.{table}" for db, table in audit],
                  limits=limits if roles_seen else [*limits, ROLES_UNSEEN])


def _editing_rights(account: Account, grants: Grants, db: str, table: str) -> list[str]:
    """The editing rights on db.table the account holds, itself or through its roles."""
    grantees = {(account.user, account.host), *((role, "") for role in account.roles)}
    held = set(account.privileges & set(EDITING))
    for user, host, pattern, privs in grants.schemas:
        if (user, host) in grantees and _like(pattern, db):
            held |= privs & set(EDITING)
    for user, host, grant_db, grant_table, privs in grants.tables:
        if (user, host) in grantees and (grant_db, grant_table.lower()) == (db, table.lower()):
            held |= privs & set(EDITING)
    return [right.upper() for right in EDITING if right in held]


def _activity_logging(settings: dict[str, str], audit_active: bool) -> Answer:
    audit_on = audit_active and settings.get("server_audit_logging", "OFF").upper() == "ON"
    general = settings.get("general_log", "OFF").upper() == "ON"
    findings: list[Text] = [] if audit_on or general else [
        says("neither the server_audit plugin (server_audit_logging = ON) nor the general log "
             "records connections and statements")]
    return answer(findings, ["server_audit plugin", "server_audit_logging", "general_log"])


def _tls_settings(settings: dict[str, str]) -> Answer:
    findings: list[Text] = []
    if settings.get("have_ssl", "DISABLED").upper() != "YES":
        findings.append(says("have_ssl = {value}: no TLS offered",
                             value=settings.get("have_ssl", "DISABLED")))
    if settings.get("require_secure_transport", "OFF").upper() != "ON":
        findings.append(says("require_secure_transport = OFF: unencrypted clients are "
                             "accepted"))
    old = [v for v in OLD_PROTOCOLS if v in settings.get("tls_version", "")]
    if old:
        findings.append(says("tls_version allows {versions}", versions=", ".join(old)))
    return answer(findings, ["have_ssl", "require_secure_transport", "tls_version"])
