"""Per-site scanners over RabbitMQ: a worker killed mid-task has its task given to another
worker of its site as soon as its connection drops (no visibility timeout to wait out, as
with Redis), and the run still has every result exactly once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hosts import profile_text

from audit.model.results import RunResults
from audit.vocabulary import Status
from tests.servers.base import ServerProcess, wait_for_port
from tests.servers.queue import SILENT_LISTENER, Site
from tests.servers.rabbitmq import amqp_url, start_rabbitmq

pytestmark = pytest.mark.servers
SILENT_ADDRESS, SILENT_PORT = "127.77.0.31", 7003
CHECK_TIMEOUT = 24                      # each connection waits an eighth: 3 s


@pytest.fixture(scope="module")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = start_rabbitmq(tmp_path_factory.mktemp("rabbitmq"))
    yield amqp_url()
    server.stop()


@pytest.fixture
def silent(tmp_path: Path) -> Iterator[ServerProcess]:
    """A listener on this machine's loopback that accepts and never answers."""
    log = tmp_path / "silent.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "-c", SILENT_LISTENER, SILENT_ADDRESS,
                                    str(SILENT_PORT)], stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    wait_for_port(SILENT_ADDRESS, SILENT_PORT, 20, process, log)
    listener = ServerProcess("silent", process, SILENT_ADDRESS, SILENT_PORT, tmp_path, log)
    for _ in range(1000):               # said once accept() returns, after the probe's connect
        if b"accepted" in log.read_bytes():
            break
        time.sleep(0.01)
    log.write_bytes(b"")                # the readiness probe's own connection
    yield listener
    listener.stop()


def test_over_rabbitmq_a_dead_workers_task_goes_to_another_at_once(
        rabbitmq: str, silent: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "inventory.yaml").write_text(
        "organisation: Hospital group\nscope: {networks: [127.77.0.0/16]}\ntargets:\n"
        f"  - {{name: rabbit-slow, site: rabbit, address: {SILENT_ADDRESS}, roles: [db], "
        f"services: [{{kind: redis, port: {SILENT_PORT}}}]}}\n")
    (tmp_path / "profile.yaml").write_text(profile_text(("db.unauthenticated_access",)))
    site = Site("rabbit", tmp_path, rabbitmq, own_network=False)
    try:
        # both scanners of the site consume before the task is sent: one started once the
        # probe is under way could take longer to start than the probe takes
        workers = [site.start_worker(), site.start_worker()]
        run = subprocess.Popen(
            [sys.executable, "-m", "audit.cli", "run", "-p", str(tmp_path / "profile.yaml"),
             "-i", str(tmp_path / "inventory.yaml"), "-o", str(tmp_path / "out"),
             "--broker", rabbitmq, "--timeout", str(CHECK_TIMEOUT), "--site-timeout", "120",
             "--history", "off", "--quiet", "--format", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        holder = _holding_the_probe(workers, run)
        killed = time.monotonic()
        os.killpg(holder.process.pid, signal.SIGKILL)
        _, stderr = run.communicate(timeout=120)
        taken_over = time.monotonic() - killed
        assert run.returncode in (0, 1), stderr
    finally:
        site.stop()
    record = RunResults.model_validate_json((tmp_path / "out/results.json").read_bytes())
    [result] = record.results
    assert result.target == "rabbit-slow" and "no scanner answered" not in result.summary
    assert result.status is not Status.PASS
    # the second worker took the task when the first one's connection dropped: its own
    # probe's wait, and no more
    assert taken_over < CHECK_TIMEOUT + 8, taken_over
    assert silent.log.read_text().count("accepted") >= 2, "the task ran again, elsewhere"


def _holding_the_probe(workers: list[ServerProcess],
                       run: subprocess.Popen[str]) -> ServerProcess:
    """The worker whose process holds a connection to the silent listener, as soon as one
    does (`ss` names the process; a worker is its process group)."""
    deadline = time.monotonic() + 60
    while True:
        listing = subprocess.run(
            ["ss", "-Htnp", "state", "established", "dst", f"{SILENT_ADDRESS}:{SILENT_PORT}"],
            capture_output=True, text=True, check=True).stdout
        groups = {os.getpgid(int(pid)) for pid in re.findall(r"pid=(\d+)", listing)}
        holders = [worker for worker in workers if worker.process.pid in groups]
        if holders:
            return holders[0]
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, "no worker probed the target"
        time.sleep(0.02)
