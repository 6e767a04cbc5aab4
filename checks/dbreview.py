"""Inside the databases: what the read-only audit account sees of accounts, grants and the
running server's settings (PostgreSQL, MariaDB/MySQL, Redis).

Each check judges one question of the review (`audit.facts.db_review`) on every reviewed
service of the target. A service is reviewed when its inventory entry names a credential;
write access is inferred from grants, never exercised.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.errors import Unavailable
from audit.facts.db_review import Question, ReviewFacts, ReviewScope, database_review
from audit.messages import Message, listed, says
from audit.registry import Finding, check, could_not_tell, failed_on, not_applicable, passed
from audit.vocabulary import Reason, Role


@dataclass(frozen=True)
class Criterion:
    """How one question is worded in a result."""

    question: Question
    expected: str
    met: Message        # the pass summary, after the services' names
    nothing: Message    # why there was nothing to judge


def judge(facts: ReviewFacts, criterion: Criterion) -> Finding:
    """Fail on any finding; could not tell where a service or the account's view fell short;
    not applicable where no reviewed service has the notion or anything to judge."""
    question = criterion.question
    evidence = {"address": facts.address, "expected": criterion.expected,
                "observed": [review.evidence(question) for review in facts.reviews],
                "not_reviewed": list(facts.unreviewed)}
    if not facts.reviews:
        return not_applicable(says("not reviewed: no database service names a credential"),
                              **evidence)
    findings = [says("{service}: {finding}", service=review.name, finding=finding)
                for review in facts.reviews if question in review.answers
                for finding in review.answers[question].finding_texts]
    if findings:
        return failed_on(findings, **evidence)
    blind = [says("{service}: {reason}", service=review.name,
                  reason=review.note or review.answers[question].unseen_text)
             for review in facts.reviews
             if review.problem is not None or (question in review.answers
                                               and review.answers[question].unseen)]
    if blind:
        reason = next((r.problem for r in facts.reviews if r.problem), Reason.PERMISSION_DENIED)
        return could_not_tell(Unavailable(reason, says("could not tell for {services}",
                                                       services=listed(blind))), **evidence)
    answered = [review for review in facts.reviews if question in review.answers]
    judged = [review for review in answered if review.answers[question].judged]
    if not judged:
        why = criterion.nothing if answered else says("not a question for this kind of server")
        names = ", ".join(review.name for review in facts.reviews)
        return not_applicable(says("{services}: {verdict}", services=names, verdict=why),
                              **evidence)
    return passed(says("{services}: {verdict}",
                       services=", ".join(review.name for review in judged),
                       verdict=criterion.met), **evidence)


NOTHING_TO_JUDGE = says("nothing to judge")
OWN = Criterion(Question.OWN_PRIVILEGES, "the audit account can read the catalogue and change "
                "nothing", says("the audit account is read-only"), NOTHING_TO_JUDGE)
ADMIN = Criterion(Question.ADMIN_PRIVILEGES, "application accounts hold no administrative "
                  "privilege (superuser, CREATEROLE, BYPASSRLS, SUPER, FILE, ALL, FLUSHALL, "
                  "CONFIG, DEBUG)", says("application accounts hold no administrative privilege"),
                  says("no application account"))
LOGINS = Criterion(Question.LOGINS, "no anonymous account, none without a password, none "
                   "that logs in from any host", says("every account needs a password"),
                   says("no account"))
PASSWORDS = Criterion(Question.PASSWORDS, "salted password hashes (SCRAM), and passwords that "
                      "expire", says("passwords are stored salted and expire"),
                      says("no login account"))
PUBLIC = Criterion(Question.PUBLIC_GRANTS, "nothing granted to PUBLIC (every account)",
                   says("nothing is granted to every account"), NOTHING_TO_JUDGE)
AUDIT_TABLES = Criterion(Question.AUDIT_TABLES, "application accounts may add audit records "
                         "but never update, delete or truncate them",
                         says("application accounts cannot edit the audit tables"),
                         says("no audit table (by the profile's audit_tables pattern) in the "
                              "databases reviewed"))
ROW_SECURITY = Criterion(Question.ROW_SECURITY, "row-level security on every patient table "
                         "the profile names", says("the patient tables have row-level security"),
                         says("none of the patient tables the profile names exists"))
LOGGING = Criterion(Question.ACTIVITY_LOGGING, "connections, disconnections and changes "
                    "logged (PostgreSQL log_connections, log_disconnections and log_statement "
                    "or pgaudit; MariaDB server_audit or the general log)",
                    says("connections and changes are logged"), NOTHING_TO_JUDGE)
TLS = Criterion(Question.TLS_SETTINGS, "TLS on, TLS 1.2 or later only, and (MariaDB) "
                "require_secure_transport = ON, in the running server",
                says("the running server requires TLS 1.2 or later"), NOTHING_TO_JUDGE)


@check(id="db.audit_account_read_only", title="The audit account cannot change the database",
       applies_to=Role.DB, probe=database_review, params=ReviewScope)
def audit_account_read_only(facts: ReviewFacts, p: ReviewScope) -> Finding:
    """Read-only means read-only: an audit account that is a superuser, or may write tables,
    is an administrator's credential lying in an assessor's inventory. Give it only what the
    review reads: PostgreSQL LOGIN with `pg_read_all_settings` (and CONNECT); MariaDB SELECT
    on mysql.user, mysql.db, mysql.tables_priv, mysql.roles_mapping, mysql.global_priv and
    SHOW VIEW on the application's schemas; Redis `+acl|whoami +acl|list +acl|dryrun +info
    +config|get` with no keys."""
    return judge(facts, OWN)


@check(id="db.account_privileges", title="Application database accounts hold no "
       "administrative privileges", applies_to=Role.DB, probe=database_review,
       params=ReviewScope)
def account_privileges(facts: ReviewFacts, p: ReviewScope) -> Finding:
    """An application account that is superuser, may create roles or bypass row-level
    security (PostgreSQL), holds SUPER, FILE or ALL PRIVILEGES (MariaDB) or may run FLUSHALL,
    CONFIG or DEBUG (Redis) turns one SQL injection into the whole server. Name the
    application's accounts on the service entry (`app_roles`); otherwise every ordinary login
    account is judged. Revoke the privileges; administer with separate accounts."""
    return judge(facts, ADMIN)


@check(id="db.account_logins", title="Every database account needs a password",
       applies_to=Role.DB, probe=database_review, params=ReviewScope)
def account_logins(facts: ReviewFacts, p: ReviewScope) -> Finding:
    """Anonymous MariaDB accounts, accounts without a password, accounts allowed from any host
    (`%`) and Redis users marked `nopass` let in whoever reaches the server. Drop anonymous
    accounts, set passwords, restrict hosts to the application servers, and turn
    `nopass` users off."""
    return judge(facts, LOGINS)


@check(id="db.password_policy", title="Database passwords are stored salted and expire",
       applies_to=Role.DB, probe=database_review, params=ReviewScope)
def password_policy(facts: ReviewFacts, p: ReviewScope) -> Finding:
    """MD5 password hashes (PostgreSQL `password_encryption = md5`) are unsalted by anything
    but the user name and replayable; passwords that never expire outlive the staff who
    knew them. Use `scram-sha-256`, set `VALID UNTIL` on login roles (PostgreSQL) or
    `default_password_lifetime` (MariaDB), and rotate them."""
    return judge(facts, PASSWORDS)


@check(id="db.public_privileges", title="Nothing in a database is granted to every account",
       applies_to=Role.DB, probe=database_review, params=ReviewScope)
def public_privileges(facts: ReviewFacts, p: ReviewScope) -> Finding:
    """A grant to PUBLIC reaches every account, today's and tomorrow's: CREATE on a schema
    lets any account plant objects, SELECT on a table lets any account read it; MariaDB
    `local_infile` lets every account load files from its client. Revoke from PUBLIC and
    grant to the roles that need it."""
    return judge(facts, PUBLIC)


@check(id="db.audit_tables_protected", title="Application accounts cannot edit the audit "
       "trail", applies_to=Role.DB, probe=database_review, params=ReviewScope)
def audit_tables_protected(facts: ReviewFacts, p: ReviewScope) -> Finding:
    """In the Dnipro leak (2020) prescriptions and test results were edited, not only read:
    an audit log the application's own account may UPDATE, DELETE or TRUNCATE records
    nothing an intruder cannot erase. Grant the application INSERT (and SELECT) on its
    audit tables only, and keep them owned by another role. Audit tables are those whose
    name matches the `audit_tables` pattern."""
    return judge(facts, AUDIT_TABLES)


@check(id="db.row_level_security", title="Patient tables enforce row-level security",
       applies_to=Role.DB, probe=database_review, params=ReviewScope)
def row_level_security(facts: ReviewFacts, p: ReviewScope) -> Finding:
    """Row-level security keeps each clinician to the patients of their own organisation
    or ward even when the application is tricked into a broader query. Enable it
    (`ALTER TABLE ... ENABLE ROW LEVEL SECURITY` with policies) on the tables a profile names
    in `patient_tables`; not applicable where the profile names none."""
    if not p.patient_tables:
        return not_applicable(says("the profile names no patient tables (patient_tables)"))
    return judge(facts, ROW_SECURITY)


@check(id="db.activity_logging", title="Database connections and changes are logged",
       applies_to=Role.DB, probe=database_review, params=ReviewScope)
def activity_logging(facts: ReviewFacts, p: ReviewScope) -> Finding:
    """Who connected and what they changed is the evidence an investigation needs. PostgreSQL:
    `log_connections` and `log_disconnections` on, and `log_statement = mod` or pgaudit
    (`shared_preload_libraries = 'pgaudit'`, `pgaudit.log = 'write, ddl, role'`); MariaDB:
    the server_audit plugin with `server_audit_logging = ON`."""
    return judge(facts, LOGGING)


@check(id="db.tls_settings", title="The running database server requires TLS 1.2 or later",
       applies_to=Role.DB, probe=database_review, params=ReviewScope)
def tls_settings(facts: ReviewFacts, p: ReviewScope) -> Finding:
    """Judged from the running server, not from its files: PostgreSQL `ssl = on` and
    `ssl_min_protocol_version = TLSv1.2`; MariaDB `have_ssl = YES`,
    `require_secure_transport = ON` and no TLSv1.0/1.1 in `tls_version`."""
    return judge(facts, TLS)
