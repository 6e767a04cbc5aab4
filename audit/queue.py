"""Per-site scanners on a Celery task queue: a worker per site consumes only its site's queue
(`site.NAME`), the dispatcher sends it one task per target and merges what comes back.

A task carries the target as the inventory describes it, the planned checks with their
parameters, and the credentials the target names, as references only (an environment
variable, a file): the worker resolves them from its own environment and files, so a site's
secrets never leave it. JSON only, never pickle. Delivery is at least once (`acks_late`, and
a task whose worker died is delivered again): results are keyed by (control, check, target),
so a redelivered task replaces, never duplicates.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from celery import Celery  # type: ignore[import-untyped]
from celery.result import AsyncResult  # type: ignore[import-untyped]
from celery.signals import worker_ready  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field

from audit.engine import run_plan
from audit.facts.context import Environment, TargetContext
from audit.messages import Message, says
from audit.model.inventory import Credential, Scope, Target
from audit.model.results import ErrorInfo, Result
from audit.plan import PlanItem
from audit.profiles import PlannedCheck
from audit.registry import default_registry
from audit.transports import open_transport
from audit.vocabulary import Reason, Status

TASK = "mis_audit.audit_target"
# How long a task taken by a worker may stay unacknowledged before the broker (Redis) gives
# it to another worker of the site: longer than any target's planned budget.
DEFAULT_VISIBILITY_TIMEOUT = 3600.0
app = Celery("mis-audit")
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                result_accept_content=["json"], task_acks_late=True,
                task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
                broker_connection_retry_on_startup=True, result_expires=7 * 86400,
                worker_hijack_root_logger=False)


def site_queue(site: str) -> str:
    """The queue a site's workers consume."""
    return f"site.{site}"


def configure(broker: str, visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT) -> Celery:
    """The app on `broker` (redis://, rediss:// with TLS, redis+socket://, amqp://), which
    also keeps the results."""
    # Kombu looks for tasks a dead worker held every interval x throttle seconds (100 s by
    # default): every interval, and often enough for the visibility timeout.
    sweep = {"visibility_timeout": visibility_timeout, "unacked_restore_throttle": 1,
             "unacked_restore_interval": max(1.0, min(10.0, visibility_timeout / 4))}
    app.conf.update(broker_url=broker, result_backend=broker, broker_transport_options=sweep,
                    result_backend_transport_options={"visibility_timeout": visibility_timeout})
    return app


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
    configure(broker, visibility_timeout)
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


def send_tasks(tasks: Iterable[TargetTask], broker: str,
               expires: float) -> dict[str, TargetTask]:
    """Each task on its site's queue, by task id; a worker that comes after `expires`
    seconds discards it (the dispatcher has given up on it by then)."""
    configure(broker)
    return {_audit_target_task.apply_async(args=[task.model_dump(mode="json")],
                                           queue=site_queue(task.site), expires=expires).id: task
            for task in tasks}


def collect(sent: Mapping[str, TargetTask], site_timeout: float,
            finished: Callable[[Result], None], poll: float = 0.5) -> tuple[list[Result], bool]:
    """Wait for the sent tasks: every task's results (each told to `finished` as it comes),
    or, for a site whose scanner did not answer within `site_timeout`, error results naming
    the site. Ctrl-C returns what came, and False."""
    deadline = time.monotonic() + site_timeout
    results: dict[tuple[str, str, str], Result] = {}
    pending = dict(sent)
    try:
        while pending and time.monotonic() < deadline:
            for task_id in [t for t in pending if AsyncResult(t, app=app).ready()]:
                for result in _collected(AsyncResult(task_id, app=app), pending.pop(task_id)):
                    results[(result.control, result.check, result.target)] = result
                    finished(result)
            if pending:
                time.sleep(poll)
    except KeyboardInterrupt:
        return [*results.values(), *abandoned(pending)], False
    for task_id, task in pending.items():
        AsyncResult(task_id, app=app).revoke()
        unanswered = says("site {site}: no scanner answered within {seconds} s",
                          site=task.site, seconds=f"{site_timeout:g}")
        for result in _errors(task, unanswered, Reason.UNREACHABLE):
            results[(result.control, result.check, result.target)] = result
            finished(result)
    return list(results.values()), True


def abandoned(sent: Mapping[str, TargetTask]) -> list[Result]:
    """The run stopped: the sent tasks revoked, an `interrupted` error for each of their
    checks."""
    for task_id in sent:
        AsyncResult(task_id, app=app).revoke()
    return [result for task in sent.values() for result in _errors(
        task, says("interrupted before it finished"), Reason.INTERRUPTED)]


def _collected(answer: AsyncResult, task: TargetTask) -> list[Result]:
    """A finished task's results; a task that failed on the worker is an error per item."""
    if answer.successful():
        return [Result.model_validate(item) for item in answer.get()]
    return _errors(task, says("site {site}: the worker failed: {error}", site=task.site,
                              error=str(answer.result)), Reason.CHECK_FAILED)
