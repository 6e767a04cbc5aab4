"""The authenticated database review against real servers: a weak and a hardened database
host (PostgreSQL, MariaDB, Redis) with the accounts of `tests/servers/db_accounts.py`, an
audit account that may see less, a refused credential, and a run through the engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pymysql
import pytest
import redis
from runs import run_audit, statuses

from audit.facts.context import Environment, TargetContext
from audit.facts.db_review import (
    REVIEWED_KINDS,
    REVIEWERS,
    Question,
    ReviewFacts,
    ReviewScope,
    ServiceReview,
    _load_reviewers,
    review_databases,
)
from audit.facts.db_review_mysql import _like
from audit.facts.db_review_redis import AclUser
from audit.model.inventory import BasicCredential, Scope, Service, Target
from audit.run import results_json
from audit.vocabulary import Reason, Role, Status

if TYPE_CHECKING:
    from tests.servers.mariadb import MariaDBServer
    from tests.servers.postgres import PostgresServer
    from tests.servers.redis_server import RedisServer

pytest_plugins = ["tests.servers.postgres", "tests.servers.mariadb", "tests.servers.redis_server"]
pytestmark = pytest.mark.servers

PASSWORD_ENV = "MIS_AUDIT_TEST_REVIEW_PASSWORD"
WRONG_ENV = "MIS_AUDIT_TEST_REVIEW_WRONG"
CREDENTIALS = {name: BasicCredential(type="basic", user=user, password_env=env)
               for name, user, env in (("audit", "audit", PASSWORD_ENV),
                                       ("blind", "blind", PASSWORD_ENV),
                                       ("wrong", "audit", WRONG_ENV))}


@pytest.fixture(scope="module")
def weak_host(postgres_weak: PostgresServer, mariadb_weak: MariaDBServer,
              redis_weak: RedisServer, password: str) -> str:
    return postgres_weak.address


@pytest.fixture(scope="module")
def hardened_host(postgres_hardened: PostgresServer, mariadb_hardened: MariaDBServer,
                  redis_hardened: RedisServer, password: str) -> str:
    return postgres_hardened.address


@pytest.fixture(scope="module")
def password() -> Iterator[str]:
    from tests.servers.db_accounts import PASSWORD
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PASSWORD_ENV, PASSWORD)
        patch.setenv(WRONG_ENV, "not-the-password")
        yield PASSWORD


def services(credential: str, redis_tls: bool = False,
             redis_apps: tuple[str, ...] = ()) -> list[Service]:
    return [Service(kind="postgresql", port=5432, credential=credential),
            Service(kind="mariadb", port=3306, credential=credential),
            Service(kind="redis", port=6379, credential=credential, tls=redis_tls,
                    app_roles=list(redis_apps))]


def review(address: str, service_list: list[Service],
           scope: ReviewScope | None = None) -> dict[str, ServiceReview]:
    target = Target(name="db", address=address, roles=[Role.DB], services=service_list)
    environment = Environment(base_dir=Path.cwd(), today=dt.date.today(), scope=Scope(),
                              credentials=dict(CREDENTIALS), timeout=10.0)
    facts: ReviewFacts = TargetContext(target, environment).gather(
        review_databases, scope or ReviewScope(patient_tables=["patients"]))
    return {r.service: r for r in facts.reviews}


def findings(found: ServiceReview, question: Question) -> list[str]:
    return list(found.answers[question].findings)


def test_the_weak_host_fails_every_question_it_can(weak_host: str) -> None:
    found = review(weak_host, services("audit"))
    postgres, mysql, cache = found["postgresql"], found["mysql"], found["redis"]
    assert [(r.service, r.note) for r in found.values() if r.problem] == []
    assert "the audit role audit has SUPERUSER" in findings(postgres, Question.OWN_PRIVILEGES)
    assert "application role mis_app has CREATEROLE" in findings(
        postgres, Question.ADMIN_PRIVILEGES)
    assert "role legacy stores an MD5 password hash" in findings(postgres, Question.PASSWORDS)
    assert "login role mis_app has no password expiry (VALID UNTIL)" in findings(
        postgres, Question.PASSWORDS)
    assert set(findings(postgres, Question.PUBLIC_GRANTS)) == {
        "postgres: public granted to PUBLIC (CREATE)",
        "postgres: public.patients granted to PUBLIC (SELECT)"}
    assert findings(postgres, Question.AUDIT_TABLES) == [
        "mis_app may UPDATE, DELETE, TRUNCATE postgres.public.audit_log"]
    assert findings(postgres, Question.ROW_SECURITY) == [
        "postgres.public.patients has no row-level security"]
    assert findings(postgres, Question.ACTIVITY_LOGGING)[:2] == [
        "log_connections = off", "log_disconnections = off"]
    assert "ssl = off: the server offers no TLS" in findings(postgres, Question.TLS_SETTINGS)

    assert "the audit account audit@% holds SUPER" in findings(mysql, Question.OWN_PRIVILEGES)
    assert "application account mis_app@% holds FILE ON *.*" in findings(
        mysql, Question.ADMIN_PRIVILEGES)
    assert "application account reporting@% holds SUPER ON *.* (roles: mis_admin, mis_ops)" \
        in findings(mysql, Question.ADMIN_PRIVILEGES)
    assert not mysql.answers[Question.ADMIN_PRIVILEGES].limits, "roles_mapping is readable"
    logins = findings(mysql, Question.LOGINS)
    assert {"anonymous account ''@%", "account root@localhost has no password",
            "account mis_app@% may log in from any host"} <= set(logins)
    assert "default_password_lifetime = 0" not in logins
    assert "account mis_app@%: password never expires" in findings(mysql, Question.PASSWORDS)
    assert set(findings(mysql, Question.PUBLIC_GRANTS)) == {
        "local_infile = ON: every account may load files from its client host",
        "mis.patients granted to PUBLIC (Select)"}
    assert findings(mysql, Question.AUDIT_TABLES) == [
        "mis_app@% may UPDATE, DELETE, DROP mis.audit_log",
        "reporting@% may DELETE mis.audit_log"]
    assert Question.ROW_SECURITY not in mysql.answers
    assert findings(mysql, Question.ACTIVITY_LOGGING)
    assert "require_secure_transport = OFF: unencrypted clients are accepted" in findings(
        mysql, Question.TLS_SETTINGS)

    assert findings(cache, Question.OWN_PRIVILEGES)[:2] == ["the audit user audit may run SET",
                                                           "the audit user audit may run DEL"]
    assert findings(cache, Question.LOGINS) == [("user default is enabled without a password "
                                               "(nopass)")]
    assert "application user mis-app may run FLUSHALL" in findings(
        cache, Question.ADMIN_PRIVILEGES)
    assert "application user default may run CONFIG SET" in findings(
        cache, Question.ADMIN_PRIVILEGES)


def test_the_hardened_host_passes_every_question(hardened_host: str) -> None:
    found = review(hardened_host, services("audit", redis_tls=True, redis_apps=("mis-app",)))
    assert sorted(found) == ["mysql", "postgresql", "redis"]
    for service, result in found.items():
        assert result.problem is None, result
        for question, given in result.answers.items():
            assert (given.findings, given.unseen) == ((), ""), (service, question, given)
    postgres = found["postgresql"]
    assert postgres.account == "audit" and found["mysql"].account == "audit@localhost"
    assert "mis.public.patients" in postgres.answers[Question.ROW_SECURITY].judged
    assert "mis.public.audit_log" in postgres.answers[Question.AUDIT_TABLES].judged
    assert "mis.audit_log" in found["mysql"].answers[Question.AUDIT_TABLES].judged
    assert postgres.settings["shared_preload_libraries"] == "pgaudit"
    assert postgres.answers[Question.PASSWORDS].limits, "MD5 hashes are not visible to audit"
    assert found["redis"].answers[Question.ADMIN_PRIVILEGES].judged == (
        "application users (named in the inventory): mis-app",)


def test_no_hash_or_secret_reaches_the_evidence(weak_host: str, password: str) -> None:
    found = review(weak_host, services("audit"))
    text = repr([r.evidence(q) for r in found.values() for q in Question])
    assert password not in text
    assert "#" not in text and "*B69" not in text, "ACL and MySQL password hashes stay out"


@pytest.fixture(scope="module")
def blind_accounts(hardened_host: str, password: str) -> str:
    """`blind`: an audit account with none of the review's grants, on the hardened host."""
    from tests.servers.postgres import HARDENED_PASSWORD
    with psycopg.connect(host=hardened_host, user="postgres", password=HARDENED_PASSWORD,
                         dbname="postgres", sslmode="require", autocommit=True) as connection:
        connection.execute(f"CREATE ROLE blind LOGIN PASSWORD '{password}' "
                           "VALID UNTIL '2099-12-31'")
    with pymysql.connect(host=hardened_host, user="root", password=HARDENED_PASSWORD,
                         ssl={"check_hostname": False}, autocommit=True) as connection, \
            connection.cursor() as cursor:
        cursor.execute(f"CREATE USER blind@'localhost' IDENTIFIED BY '{password}'")
    redis.Redis(host=hardened_host, ssl=True, ssl_cert_reqs="none", username="admin",
                password=HARDENED_PASSWORD).acl_setuser(
        "blind", enabled=True, passwords=[f"+{password}"], commands=["+acl|whoami", "+ping"])
    return hardened_host


def test_an_account_that_sees_less_says_what_it_could_not_see(blind_accounts: str) -> None:
    found = review(blind_accounts, services("blind", redis_tls=True))
    postgres, mysql, cache = found["postgresql"], found["mysql"], found["redis"]
    assert "pg_read_all_settings" in postgres.answers[Question.ACTIVITY_LOGGING].unseen
    assert not findings(postgres, Question.OWN_PRIVILEGES)
    assert "mysql.user is not readable" in mysql.answers[Question.LOGINS].unseen
    assert findings(mysql, Question.TLS_SETTINGS) == [], "global variables are readable to all"
    assert "+acl|list" in cache.answers[Question.LOGINS].unseen
    assert "+acl|dryrun" in cache.answers[Question.OWN_PRIVILEGES].unseen


def test_a_refused_credential_is_a_problem_not_a_pass(hardened_host: str) -> None:
    found = review(hardened_host, services("wrong", redis_tls=True))
    assert {r.problem for r in found.values()} == {Reason.PERMISSION_DENIED}, found


PROFILE = """
id: db-review-test
title: Database review checks
version: "1"
threshold: 80
controls:
  - id: REVIEW
    title: Accounts and settings inside the databases
    severity: high
    checks:
      - {check: db.audit_account_read_only}
      - {check: db.account_privileges}
      - {check: db.account_logins}
      - {check: db.password_policy}
      - {check: db.public_privileges}
      - {check: db.audit_tables_protected}
      - {check: db.row_level_security, with: {patient_tables: [patients]}}
      - {check: db.activity_logging}
      - {check: db.tls_settings}
"""

INVENTORY = """
organisation: Database review clinic
scope: {{networks: [127.60.0.0/16]}}
credentials:
  audit: {{type: basic, user: audit, password_env: {env}}}
targets:
  - name: db-weak
    address: {weak}
    roles: [db]
    services:
      - {{kind: postgresql, port: 5432, credential: audit}}
      - {{kind: mariadb, port: 3306, credential: audit}}
      - {{kind: redis, port: 6379, credential: audit}}
  - name: db-hardened
    address: {hardened}
    roles: [db]
    services:
      - {{kind: postgresql, port: 5432, credential: audit}}
      - {{kind: mariadb, port: 3306, credential: audit}}
      - {{kind: redis, port: 6379, credential: audit, tls: true, app_roles: [mis-app]}}
  - {{name: db-anonymous, address: {hardened}, roles: [db]}}
"""


def test_a_run_through_the_engine(weak_host: str, hardened_host: str, password: str,
                                  tmp_path: Path) -> None:
    results = run_audit(tmp_path, PROFILE, INVENTORY.format(
        env=PASSWORD_ENV, weak=weak_host, hardened=hardened_host), timeout=20.0)
    got = statuses(results)
    checks = sorted({check for check, _ in got})
    assert len(checks) == 9
    expected = {"db-weak": Status.FAIL, "db-hardened": Status.PASS,
                "db-anonymous": Status.NOT_APPLICABLE}
    for target, status in expected.items():
        assert {check: got[(check, target)] for check in checks} == dict.fromkeys(
            checks, status), target
    assert password not in results_json(results)
    assert not any("'audit'" in warning for warning in results.warnings), results.warnings
    weak = next(r for r in results.results
                if (r.check, r.target) == ("db.account_logins", "db-weak"))
    assert weak.summary.startswith("mysql:3306: anonymous account ''@% (+")


def test_every_reviewed_kind_has_its_reviewer() -> None:
    _load_reviewers()
    assert set(REVIEWERS) == REVIEWED_KINDS


def test_acl_hashes_are_dropped_and_grant_patterns_match_as_mysql_does() -> None:
    user = AclUser.parse("user app on #a1fce436 >secret ~* resetchannels +@all -flushall")
    assert user == AclUser("app", True, False, "~* resetchannels +@all -flushall")
    assert AclUser.parse("user default off nopass ~* &* +@all").enabled is False
    assert _like("mis\\_%", "mis_prod") and not _like("mis\\_%", "misxprod")
    assert _like("m_s", "mis") and _like("%", "anything") and not _like("MIS", "mis")
