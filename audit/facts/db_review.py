"""Databases as their own read-only audit account sees them: who inside can do what.

The network probes (`databases.py`) tell whether a database lets anyone in. This review logs
in with the credential the inventory names on a service entry and reads the server's own
catalogue: the audit account's privileges, the other accounts and their privileges, grants to
everyone, who may edit the audit tables, row-level security, logging and TLS settings as the
running server has them (not as a file says). Write access is inferred from grants and never
exercised; evidence names accounts, tables and grants, never rows, hashes or secrets.

Each engine's reviewer answers the same questions (`Question`), so that one check judges
PostgreSQL, MariaDB and Redis alike; a question an engine has no notion of is left out of
its answers, and what the account was not allowed to see is said, never taken for a pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from audit.facts.context import TargetContext
from audit.facts.databases import (
    Login,
    connect_seconds,
    service_login,
    untrusted_text,
    with_outcome,
)
from audit.facts.ports import canonical_service, target_address
from audit.messages import Message, Text, english
from audit.registry import Params
from audit.vocabulary import Reason

# Accounts and tables listed per finding, at most: a catalogue can hold thousands.
MAX_LISTED = 50
DEFAULT_AUDIT_TABLES = "audit|log|journal"


class Question(StrEnum):
    """What a review answers about one database service."""

    OWN_PRIVILEGES = "own_privileges"        # the audit account may change something
    ADMIN_PRIVILEGES = "admin_privileges"    # application accounts hold administration
    LOGINS = "logins"                        # accounts that log in without a password
    PASSWORDS = "passwords"                  # password storage and expiry
    PUBLIC_GRANTS = "public_grants"          # privileges granted to every account
    AUDIT_TABLES = "audit_tables"            # application accounts may edit audit records
    ROW_SECURITY = "row_security"            # patient tables without row-level security
    ACTIVITY_LOGGING = "activity_logging"    # connections and changes are logged
    TLS_SETTINGS = "tls_settings"            # the running server requires modern TLS


@dataclass(frozen=True)
class Answer:
    """One question answered: what fails, what was judged, and what could not be seen.

    Findings and the unseen part are messages a report says in its language (`findings` and
    `unseen` give their English text); what was judged and the limits are evidence."""

    finding_texts: tuple[Text, ...] = ()
    judged: tuple[str, ...] = ()
    unseen_text: Text = ""               # the answer cannot be given: the account's view
    limits: tuple[str, ...] = ()         # what is left out of an answer that stands

    @property
    def findings(self) -> tuple[str, ...]:
        """What fails, in English."""
        return tuple(map(english, self.finding_texts))

    @property
    def unseen(self) -> str:
        """Why the answer cannot be given, in English ("" when it can)."""
        return english(self.unseen_text)

    def evidence(self) -> dict[str, Any]:
        """A JSON-ready record, bounded in length."""
        record: dict[str, Any] = {}
        if self.findings:
            record["findings"] = list(self.findings[:MAX_LISTED])
            if len(self.findings) > MAX_LISTED:
                record["more_findings"] = len(self.findings) - MAX_LISTED
        if self.judged:
            record["judged"] = list(self.judged[:MAX_LISTED])
        if self.unseen:
            record["not_visible"] = self.unseen
        if self.limits:
            record["limits"] = list(self.limits)
        return record


def answer(findings: Sequence[Text], judged: list[str], unseen: Text = "",
           limits: list[str] | None = None) -> Answer:
    """An Answer from lists, names the server sent made printable."""
    return Answer(tuple(map(printable, findings)), tuple(map(untrusted_text, judged)),
                  unseen, tuple(limits or ()))


def printable(text: Text) -> Text:
    """A finding with the names the server sent in it made printable and short."""
    if isinstance(text, Message):
        return Message(template=text.template, params={
            name: printable(value) if isinstance(value, str | Message) else value
            for name, value in text.params.items()})
    return untrusted_text(text)


@dataclass(frozen=True)
class ServiceReview:
    """What the audit account saw on one service; `problem` when it saw nothing."""

    service: str
    port: int
    account: str
    answers: dict[Question, Answer] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    note: str = ""
    problem: Reason | None = None

    @property
    def name(self) -> str:
        """service:port, as the report names it."""
        return f"{self.service}:{self.port}"

    def evidence(self, question: Question) -> dict[str, Any]:
        """The service, the account, and this question's answer."""
        record: dict[str, Any] = {"service": self.name, "account": self.account}
        if question in self.answers:
            record.update(self.answers[question].evidence())
        if self.settings:
            record["settings"] = dict(self.settings)
        return with_outcome(record, self.note, self.problem)


@dataclass(frozen=True)
class ReviewFacts:
    """Every reviewed service of a target, and the database services left unreviewed."""

    address: str
    reviews: tuple[ServiceReview, ...]
    unreviewed: tuple[str, ...]          # "mysql:3306 (no credential)"


class ReviewScope(Params):
    """What the review reads beyond accounts and settings: the tables that keep the audit
    trail (a regular expression over table names, case-insensitive) and the patient tables
    that must have row-level security (`table` or `schema.table`)."""

    audit_tables: str = DEFAULT_AUDIT_TABLES
    patient_tables: list[str] = Field(default_factory=list)

    @field_validator("audit_tables")
    @classmethod
    def _a_pattern(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"audit_tables is not a regular expression: {error}") from None
        return pattern

    def scope(self) -> ReviewScope:
        """These settings alone: the key under which the review checks share one review."""
        return ReviewScope(audit_tables=self.audit_tables, patient_tables=self.patient_tables)


@dataclass(frozen=True)
class ReviewTarget:
    """One service to review, with the audit credential and the named application accounts."""

    service: str
    address: str
    port: int
    timeout: float
    login: Login
    app_accounts: tuple[str, ...]
    scope: ReviewScope
    tls: bool | None = None              # the service entry's `tls`, if it says


Reviewer = Callable[[ReviewTarget], ServiceReview]
REVIEWERS: dict[str, Reviewer] = {}
# The service kinds a reviewer logs in to (canonical names; each module registers its own).
REVIEWED_KINDS = frozenset({"postgresql", "mysql", "redis"})


def reviewer(service: str) -> Callable[[Reviewer], Reviewer]:
    """Register an engine's reviewer (its module is imported by `review_databases`)."""
    def register(function: Reviewer) -> Reviewer:
        REVIEWERS[service] = function
        return function
    return register


def _load_reviewers() -> None:
    from audit.facts import (  # noqa: F401  (each module registers its reviewer)
        db_review_mysql,
        db_review_postgres,
        db_review_redis,
    )


def review_databases(context: TargetContext, scope: ReviewScope) -> ReviewFacts:
    """Review, in parallel, every declared database service that names a credential."""
    _load_reviewers()
    address = target_address(context)
    timeout = connect_seconds(context.budget)
    targets, unreviewed = [], []
    for service in context.target.services:
        kind = canonical_service(service.kind)
        if kind not in REVIEWED_KINDS:
            continue
        if service.credential is None:
            unreviewed.append(f"{kind}:{service.port} (no credential in the inventory)")
            continue
        login = service_login(context.environment, service.credential)
        assert login is not None
        targets.append(ReviewTarget(kind, address, service.port, timeout, login,
                                    tuple(service.app_roles), scope, service.tls))
    if not targets:
        return ReviewFacts(address, (), tuple(unreviewed))
    with ThreadPoolExecutor(max_workers=len(targets),
                            thread_name_prefix="mis-audit-review") as pool:
        reviews = tuple(pool.map(_review_one, targets))
    return ReviewFacts(address, reviews, tuple(unreviewed))


def _review_one(target: ReviewTarget) -> ServiceReview:
    """One service's review; a failure stays with that service (the others' must survive)."""
    try:
        return REVIEWERS[target.service](target)
    except Exception as error:  # noqa: BLE001
        return ServiceReview(target.service, target.port, target.login.user,
                             problem=failure_reason(error),
                             note=untrusted_text(f"{type(error).__name__}: {error}"))


def failure_reason(error: BaseException) -> Reason:
    """Why a review saw nothing: refused credentials, an unreachable server, or else."""
    text = str(error).lower()
    if any(word in text for word in ("password", "denied", "auth", "permission")):
        return Reason.PERMISSION_DENIED
    if "timeout" in text or "timed out" in text:
        return Reason.TIMEOUT
    if "refused" in text or isinstance(error, OSError):
        return Reason.UNREACHABLE
    return Reason.CHECK_FAILED


def application_accounts(named: tuple[str, ...], inferred: list[str]) -> list[str]:
    """The accounts the application uses: those named on the service entry, else every
    ordinary login account the reviewer inferred."""
    return list(named) if named else inferred


def database_review(context: TargetContext, params: ReviewScope) -> ReviewFacts:
    """The review every db review check judges: one per target and scope."""
    return context.gather(review_databases, params.scope())
