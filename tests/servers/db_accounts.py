"""Accounts, grants and tables inside the test database servers, for the database review.

weak:     the audit account is a superuser (PostgreSQL) or holds ALL PRIVILEGES (MariaDB);
          the application account `mis_app` may create roles (PostgreSQL) or holds FILE
          (MariaDB) and may edit the audit table; PUBLIC may read the patients table and
          (PostgreSQL) create in the public schema; a legacy role stores an MD5 hash;
          MariaDB has an anonymous account and accounts allowed from any host, and an account
          `reporting` that holds SUPER and DELETE on the audit table only through roles.
hardened: a read-only audit account with exactly the grants the review documents; the
          application may INSERT into the audit table only; patients has row-level
          security; every login role's password expires.

Every password is HARDENED_PASSWORD (throwaway). Accounts are cluster-wide and made once, by
the session fixtures of the servers.
"""

from __future__ import annotations

import socket

import psycopg
import pymysql

from .postgres import HARDENED_PASSWORD

AUDIT_ACCOUNT, APP_ACCOUNT = "audit", "mis_app"
PASSWORD = HARDENED_PASSWORD

POSTGRES_SQL = {
    "weak": [
        f"CREATE ROLE {AUDIT_ACCOUNT} LOGIN SUPERUSER PASSWORD '{PASSWORD}'",
        f"CREATE ROLE {APP_ACCOUNT} LOGIN CREATEROLE PASSWORD '{PASSWORD}'",
        "SET password_encryption = 'md5'",
        f"CREATE ROLE legacy LOGIN PASSWORD '{PASSWORD}'",
        "CREATE TABLE audit_log (at timestamptz, who text, what text)",
        "CREATE TABLE patients (iin text, name text)",
        f"GRANT ALL ON audit_log, patients TO {APP_ACCOUNT}",
        "GRANT SELECT ON patients TO PUBLIC",
        "GRANT CREATE ON SCHEMA public TO PUBLIC",
    ],
    "hardened": [
        f"CREATE ROLE {AUDIT_ACCOUNT} LOGIN PASSWORD '{PASSWORD}' VALID UNTIL '2099-12-31'",
        f"GRANT pg_read_all_settings TO {AUDIT_ACCOUNT}",
        f"CREATE ROLE {APP_ACCOUNT} LOGIN PASSWORD '{PASSWORD}' VALID UNTIL '2099-12-31'",
        "CREATE DATABASE mis",
    ],
}
# Run in the hardened server's `mis` database.
POSTGRES_MIS_SQL = [
    "REVOKE ALL ON SCHEMA public FROM PUBLIC",
    f"GRANT USAGE ON SCHEMA public TO {APP_ACCOUNT}, {AUDIT_ACCOUNT}",
    "CREATE TABLE audit_log (at timestamptz, who text, what text)",
    "CREATE TABLE patients (iin text, name text, clinic text)",
    "ALTER TABLE patients ENABLE ROW LEVEL SECURITY",
    (f"CREATE POLICY own_clinic ON patients TO {APP_ACCOUNT} "
    "USING (clinic = current_setting('mis.clinic', true))"),
    f"GRANT SELECT, INSERT ON audit_log TO {APP_ACCOUNT}",
    f"GRANT SELECT, INSERT, UPDATE ON patients TO {APP_ACCOUNT}",
]


def add_postgres_accounts(variant: str, address: str, port: int) -> None:
    """The review's accounts and tables on a PostgreSQL of the tests."""
    login = {"host": address, "port": port, "user": "postgres", "autocommit": True,
             "connect_timeout": 10}
    if variant == "hardened":
        login |= {"password": PASSWORD, "sslmode": "require"}
    with psycopg.connect(dbname="postgres", **login) as connection:  # type: ignore[arg-type]
        for statement in POSTGRES_SQL[variant]:
            connection.execute(statement)  # type: ignore[arg-type]
    if variant == "hardened":
        with psycopg.connect(dbname="mis", **login) as connection:  # type: ignore[arg-type]
            for statement in POSTGRES_MIS_SQL:
                connection.execute(statement)  # type: ignore[arg-type]


def mariadb_sql(variant: str) -> list[str]:
    """The accounts: weak ones from any host, hardened ones from this host only (clients on
    loopback are `localhost` to MariaDB)."""
    tables = ["CREATE DATABASE mis", "CREATE TABLE mis.audit_log (at datetime, what text)",
              "CREATE TABLE mis.patients (iin varchar(12), name text)"]
    if variant == "weak":
        return tables + [
            f"CREATE USER {AUDIT_ACCOUNT}@'%' IDENTIFIED BY '{PASSWORD}'",
            f"GRANT ALL PRIVILEGES ON *.* TO {AUDIT_ACCOUNT}@'%'",
            f"CREATE USER {APP_ACCOUNT}@'%' IDENTIFIED BY '{PASSWORD}'",
            f"GRANT FILE ON *.* TO {APP_ACCOUNT}@'%'",
            f"GRANT ALL ON mis.* TO {APP_ACCOUNT}@'%'",
            "CREATE USER ''@'%'",
            "GRANT SELECT ON mis.patients TO PUBLIC",
            # SUPER through a role granted to a role: only the role chain carries it.
            "CREATE ROLE mis_ops", "CREATE ROLE mis_admin", "GRANT SUPER ON *.* TO mis_admin",
            "GRANT mis_admin TO mis_ops",
            f"CREATE USER reporting@'%' IDENTIFIED BY '{PASSWORD}'",
            "GRANT mis_ops TO reporting@'%'",
            "GRANT DELETE ON mis.audit_log TO mis_ops",
        ]
    audit = f"{AUDIT_ACCOUNT}@'localhost'"
    return tables + [
        f"DROP USER IF EXISTS 'root'@'{socket.gethostname()}'",   # made by mariadb-install-db
        f"CREATE USER {audit} IDENTIFIED BY '{PASSWORD}'",
        *[f"GRANT SELECT ON mysql.{table} TO {audit}"
          for table in ("user", "db", "tables_priv", "roles_mapping", "global_priv")],
        f"GRANT SHOW VIEW ON mis.* TO {audit}",
        f"CREATE USER {APP_ACCOUNT}@'localhost' IDENTIFIED BY '{PASSWORD}'",
        f"GRANT SELECT, INSERT ON mis.audit_log TO {APP_ACCOUNT}@'localhost'",
        f"GRANT SELECT, INSERT, UPDATE ON mis.patients TO {APP_ACCOUNT}@'localhost'",
    ]


def add_mariadb_accounts(variant: str, address: str, port: int, ca_file: str | None) -> None:
    """The review's accounts and tables on a MariaDB of the tests, made as root."""
    tls = {"ssl": {"ca": ca_file}} if ca_file else {}
    with pymysql.connect(host=address, port=port, user="root",
                         password=PASSWORD if variant == "hardened" else "",
                         autocommit=True, **tls) as connection, connection.cursor() as cursor:
        for statement in mariadb_sql(variant):
            cursor.execute(statement)
