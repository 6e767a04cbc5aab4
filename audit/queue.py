"""Per-site scanners on a Celery task queue: a worker per site consumes only its site's queue
(`site.NAME`), the dispatcher sends it one task per target and merges what comes back.

A task carries the target as the inventory describes it, the planned checks with their
parameters, and the credentials the target names, as references only (an environment
variable, a file): the worker resolves them from its own environment and files, so a site's
secrets never leave it. JSON only, never pickle; signed, when both sides are given keys
(Celery's `auth` serializer: RSA-PSS over the JSON body). Delivery is at least once (`acks_late`, and
a task whose worker died is delivered again): results are keyed by (control, check, target),
so a redelivered task replaces, never duplicates.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from celery import Celery  # type: ignore[import-untyped]
from celery.exceptions import ImproperlyConfigured, SecurityError  # type: ignore[import-untyped]
from celery.result import AsyncResult  # type: ignore[import-untyped]
from celery.security.certificate import Certificate, FSCertStore  # type: ignore[import-untyped]
from celery.security.key import PrivateKey  # type: ignore[import-untyped]
from celery.signals import worker_ready  # type: ignore[import-untyped]
from kombu.exceptions import ContentDisallowed, DecodeError, OperationalError
from pydantic import BaseModel, ConfigDict, Field

from audit.engine import run_plan
from audit.errors import InputError
from audit.facts.context import Environment, TargetContext
from audit.history_location import first_line, redact, scrub
from audit.messages import Message, says
from audit.model.inventory import Credential, Scope, Target
from audit.model.results import ErrorInfo, Result
from audit.plan import PlanItem
from audit.profiles import PlannedCheck
from audit.registry import default_registry
from audit.run import MessageSigning
from audit.transports import open_transport
from audit.vocabulary import Reason, Status

TASK = "mis_audit.audit_target"
# How long a task taken by a worker may stay unacknowledged before the broker (Redis) gives
# it to another worker of the site: longer than any target's planned budget.
DEFAULT_VISIBILITY_TIMEOUT = 3600.0
KEY_PASSWORD_ENV = "MIS_AUDIT_SIGN_KEY_PASSWORD"
BROKER_CONNECT_TIMEOUT = 10.0
PLAIN = {"task_serializer": "json", "result_serializer": "json", "accept_content": ["json"],
         "result_accept_content": ["json"]}
SIGNED = {"task_serializer": "auth", "result_serializer": "auth", "accept_content": ["auth"],
          "result_accept_content": ["auth"], "security_digest": "sha256"}
SETTINGS = {"task_acks_late": True, "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1, "broker_connection_retry_on_startup": True,
            "result_expires": 7 * 86400, "worker_hijack_root_logger": False}
# The worker's app, which holds the task; the dispatcher sends by name from an app of its own
# per run (a Celery app fixes its serializers when first used).
app = Celery("mis-audit")


def site_queue(site: str) -> str:
    """The queue a site's workers consume."""
    return f"site.{site}"


def configure(celery: Celery, broker: str,
              visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT,
              signing: MessageSigning | None = None) -> Celery:
    """`celery` on `broker` (redis://, rediss:// with TLS, redis+socket://, amqp://), which
    also keeps the results; with `signing`, every message is signed and only signed ones are
    taken."""
    # Kombu looks for tasks a dead worker held every interval x throttle seconds (100 s by
    # default): every interval, and often enough for the visibility timeout.
    sweep = {"visibility_timeout": visibility_timeout, "unacked_restore_throttle": 1,
             "unacked_restore_interval": max(1.0, min(10.0, visibility_timeout / 4))}
    broker = _verified_tls(broker)
    celery.conf.update(**SETTINGS, **(PLAIN if signing is None else SIGNED), broker_url=broker,
                       result_backend=_result_backend(broker), broker_transport_options=sweep,
                       result_backend_transport_options={"visibility_timeout":
                                                         visibility_timeout})
    if signing is not None:
        load_signing(signing)
        # every serializer but JSON, which the signed envelope holds, is disabled
        celery.setup_security(allowed_serializers=["json"], key=str(signing.key),
                              key_password=os.environ.get(KEY_PASSWORD_ENV),
                              cert=str(signing.certificate), store=str(signing.trusted))
    return celery


def _result_backend(broker: str) -> str:
    """Redis keeps the answers itself; over AMQP they come back to the dispatcher's own reply
    queue (Celery's rpc backend: it has no AMQP result store)."""
    return "rpc://" if broker.startswith(("amqp://", "amqps://", "pyamqp://")) else broker


def _verified_tls(broker: str) -> str:
    """A rediss:// URL that does not say how to verify the broker's certificate verifies it,
    and its name (kombu would connect unverified, with a warning; redis-py checks no name)."""
    if not broker.startswith("rediss://"):
        return broker
    for default in ("ssl_cert_reqs=required", "ssl_check_hostname=true"):
        if default.split("=")[0] + "=" not in broker:
            broker += ("&" if "?" in broker else "?") + default
    return broker


def check_broker(broker: str, signing: MessageSigning | None = None) -> None:
    """Whether the broker answers, before any target is contacted: InputError naming it
    (its password masked) and why not."""
    celery = configure(Celery("mis-audit"), broker, signing=signing)
    try:
        with celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=BROKER_CONNECT_TIMEOUT)
    except (OperationalError, OSError) as error:
        raise InputError.at(f"--broker {redact(broker)}", "cannot connect: "
                            + first_line(scrub(str(error), broker), 300)) from None


def load_signing(signing: MessageSigning) -> None:
    """Whether the key, the certificate and the trusted ones load; InputError naming the file
    and why not (a missing file, a wrong passphrase, a non-RSA key, an expired certificate)."""
    password = os.environ.get(KEY_PASSWORD_ENV)
    _loads(signing.key, lambda: PrivateKey(signing.key.read_text(), password=password))
    _loads(signing.certificate, lambda: Certificate(signing.certificate.read_text()))
    _loads(signing.trusted, lambda: _trusted(signing.trusted))


def _trusted(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(2, "no such file or directory")
    if next(FSCertStore(str(path)).itercerts(), None) is None:
        raise SecurityError("no certificate in it")


def _loads(path: Path, load: Callable[[], object]) -> None:
    try:
        load()
    except OSError as error:
        raise InputError.at(path, f"message signing: {error.strerror or error}") from None
    except (UnicodeDecodeError, ValueError, TypeError, SecurityError,
            ImproperlyConfigured) as error:
        raise InputError.at(path, f"message signing: {error}") from None


class PlannedItem(BaseModel):
    """One planned check of a task, as JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    control: str
    check: str
    params: dict[str, Any] = Field(default_factory=dict)
    timeout: float | None = None


class TargetTask(BaseModel):
    """Everything a site's worker needs to audit one target, and no secret."""

    model_config = ConfigDict(extra="forbid")

    site: str
    target: Target
    items: list[PlannedItem]
    credentials: dict[str, Credential] = Field(default_factory=dict)
    scope: Scope
    today: date
    timeout: float
    jobs: int


def target_task(site: str, target: Target, items: Iterable[PlanItem],
                environment: Environment, jobs: int) -> TargetTask:
    """The task for one target: its checks, and the credentials it names (references)."""
    named = target.credential_names
    return TargetTask(
        site=site, target=target,
        items=[PlannedItem(control=item.control, check=item.check_id,
                           params=item.check.params.model_dump(mode="json"),
                           timeout=item.check.timeout)
               for item in items if item.check is not None],
        credentials={name: credential for name, credential in environment.credentials.items()
                     if name in named},
        scope=environment.scope, today=environment.today, timeout=environment.timeout,
        jobs=jobs)


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker resolves on its own side."""

    base_dir: Path          # relative key and secret files resolve here
    ca_file: Path | None = None
    signing: MessageSigning | None = None


WORKER = WorkerSettings(Path.cwd())


def audit_target(task: TargetTask, settings: WorkerSettings) -> list[Result]:
    """Run a task's checks on its target, here: facts gathered once, checks concurrently."""
    registry = default_registry()
    environment = Environment(base_dir=settings.base_dir, today=task.today, scope=task.scope,
                              credentials=dict(task.credentials), ca_file=settings.ca_file,
                              timeout=task.timeout)
    plan = []
    for item in task.items:
        spec = registry.get(item.check)
        plan.append(PlanItem(item.control, PlannedCheck(spec, spec.params.model_validate(
            item.params), item.timeout), task.target.name))
    context = TargetContext(task.target, environment,
                            open_transport if task.target.host_transport else None)
    try:
        return run_plan(plan, {task.target.name: context}, task.jobs, task.timeout).results
    finally:
        context.close()


@app.task(name=TASK)  # type: ignore[untyped-decorator]
def _audit_target_task(payload: dict[str, Any]) -> list[dict[str, Any]]:
    task = TargetTask.model_validate(payload)
    return [result.model_dump(mode="json") for result in audit_target(task, WORKER)]


def run_worker(site: str, broker: str, concurrency: int, settings: WorkerSettings,
               on_ready: Callable[[], None],
               visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT) -> None:
    """Consume the site's queue until stopped (SIGTERM: finish the tasks at hand);
    `on_ready` once it consumes."""
    global WORKER
    WORKER = settings
    configure(app, broker, visibility_timeout, settings.signing)
    worker_ready.connect(lambda **_: on_ready(), weak=False)
    app.worker_main(["worker", "--queues", site_queue(site), "--pool", "threads",
                     "--concurrency", str(concurrency), "--loglevel", "WARNING",
                     "--hostname", f"{site}.{os.getpid()}@%h", "--without-gossip",
                     "--without-mingle"])


def _errors(task: TargetTask, summary: Message, reason: Reason) -> list[Result]:
    """An error result for each of the task's checks."""
    return [Result(control=item.control, check=item.check, target=task.target.name,
                   status=Status.ERROR, summary=str(summary), message=summary,
                   error=ErrorInfo(type=reason.value, message=str(summary)))
            for item in task.items]


@dataclass(frozen=True)
class Sent:
    """The tasks a run sent, by task id, and the app that sent them (and reads the answers)."""

    app: Celery
    tasks: dict[str, TargetTask]

    def answer(self, task_id: str) -> AsyncResult:
        """A task's answer as the broker holds it."""
        return AsyncResult(task_id, app=self.app)


def send_tasks(tasks: Iterable[TargetTask], broker: str, expires: float,
               signing: MessageSigning | None = None) -> Sent:
    """Each task on its site's queue; a worker that comes after `expires` seconds discards
    it (the dispatcher has given up on it by then)."""
    sender = configure(Celery("mis-audit"), broker, signing=signing)
    return Sent(sender, {sender.send_task(TASK, args=[task.model_dump(mode="json")],
                                          queue=site_queue(task.site), expires=expires).id: task
                         for task in tasks})


def collect(sent: Sent, site_timeout: float, finished: Callable[[Result], None],
            poll: float = 0.5) -> tuple[list[Result], bool]:
    """Wait for the sent tasks: every task's results (each told to `finished` as it comes),
    or, for a site whose scanner did not answer within `site_timeout`, error results naming
    the site. Ctrl-C returns what came, and False."""
    deadline = time.monotonic() + site_timeout
    results: dict[tuple[str, str, str], Result] = {}
    pending = dict(sent.tasks)
    try:
        while pending and time.monotonic() < deadline:
            for task_id in list(pending):
                for result in _answered(sent.answer(task_id), pending, task_id):
                    results[(result.control, result.check, result.target)] = result
                    finished(result)
            if pending:
                time.sleep(poll)
    except KeyboardInterrupt:
        return [*results.values(), *abandoned(Sent(sent.app, pending))], False
    for task_id, task in pending.items():
        sent.answer(task_id).revoke()
        unanswered = says("site {site}: no scanner answered within {seconds} s",
                          site=task.site, seconds=f"{site_timeout:g}")
        for result in _errors(task, unanswered, Reason.UNREACHABLE):
            results[(result.control, result.check, result.target)] = result
            finished(result)
    return list(results.values()), True


def abandoned(sent: Sent) -> list[Result]:
    """The run stopped: the sent tasks revoked, an `interrupted` error for each of their
    checks."""
    for task_id in sent.tasks:
        sent.answer(task_id).revoke()
    return [result for task in sent.tasks.values() for result in _errors(
        task, says("interrupted before it finished"), Reason.INTERRUPTED)]


def _answered(answer: AsyncResult, pending: dict[str, TargetTask], task_id: str
              ) -> list[Result]:
    """A finished task's results, taken out of `pending`; none while it runs. An answer
    that fails verification (unsigned, or signed by a certificate not trusted here) is an
    error per item: a scanner's word is taken only as signed."""
    task = pending[task_id]
    try:
        if not answer.ready():
            return []
        collected = _collected(answer, task)
    except (SecurityError, ContentDisallowed, DecodeError) as error:
        collected = _errors(task, says("site {site}: its answer was refused: {error}",
                                       site=task.site, error=str(error)), Reason.CHECK_FAILED)
    del pending[task_id]
    return collected


def _collected(answer: AsyncResult, task: TargetTask) -> list[Result]:
    """A finished task's results; a task that failed on the worker is an error per item."""
    if answer.successful():
        return [Result.model_validate(item) for item in answer.get()]
    return _errors(task, says("site {site}: the worker failed: {error}", site=task.site,
                              error=str(answer.result)), Reason.CHECK_FAILED)
