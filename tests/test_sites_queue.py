"""Per-site scanners on a real Celery queue (Redis on a unix socket): each site's worker runs
in a network namespace of its own where only its site's Redis is reachable (at the same
address in both sites), and `mis-audit run --broker` sends each site its targets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hosts import HOST_CHECKS, profile_text
from runs import run_audit, statuses, weak_and_hardened_trees

from audit.errors import InputError
from audit.history_location import redact
from audit.journal import (
    JOURNAL_FILE,
    JournalHeader,
    RecordedRequest,
    resumed_request,
)
from audit.model.results import RunResults
from audit.run import MessageSigning
from audit.sites import UNNAMED_SITE, StoredRun, merge_runs
from audit.vocabulary import Status
from tests.servers.base import ServerProcess
from tests.servers.pki import make_ca, make_server_cert
from tests.servers.queue import (
    SITE_DB_ADDRESS,
    SITE_DB_PORT,
    TLS_BROKER_ADDRESS,
    Broker,
    Site,
    start_broker,
)

pytestmark = pytest.mark.servers
SOUTH_SECRET = "south-redis-secret-8841"
WEST_SECRET = "west-secret-never-sent-1207"
DB_CHECKS = ("db.unauthenticated_access", "db.audit_account_read_only")
PROFILE = profile_text(HOST_CHECKS + DB_CHECKS)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    started = start_broker(tmp_path_factory.mktemp("broker"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def sites(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Site]]:
    north = Site("north", tmp_path_factory.mktemp("north"), broker.url)
    south = Site("south", tmp_path_factory.mktemp("south"), broker.url, redis_password=SOUTH_SECRET,
                 env={"SOUTH_REDIS_PASSWORD": SOUTH_SECRET})
    try:
        north.start_worker()
        south.start_worker()
        yield {"north": north, "south": south}
    finally:
        north.stop()
        south.stop()


def _inventory(trees: Path, west: bool = False) -> str:
    west_target = (f"  - {{name: west-db, site: west, address: {SITE_DB_ADDRESS}, roles: [db], "
                   f"services: [{{kind: redis, port: {SITE_DB_PORT}, credential: west-redis}}]}}\n"
                   if west else "")
    return (
        "organisation: Hospital group\nscope: {networks: [127.77.0.0/16]}\n"
        "credentials:\n"
        "  south-redis: {type: basic, user: default, password_env: SOUTH_REDIS_PASSWORD}\n"
        "  west-redis: {type: basic, user: default, password_env: WEST_REDIS_PASSWORD}\n"
        "targets:\n"
        f"  - {{name: north-db, site: north, address: {SITE_DB_ADDRESS}, roles: [db], "
        f"services: [{{kind: redis, port: {SITE_DB_PORT}}}]}}\n"
        f"  - {{name: north-host, site: north, roles: [host], root: {trees / 'weak'}}}\n"
        f"  - {{name: south-db, site: south, address: {SITE_DB_ADDRESS}, roles: [db], "
        f"services: [{{kind: redis, port: {SITE_DB_PORT}, credential: south-redis}}]}}\n"
        f"  - {{name: south-host, site: south, roles: [host], root: {trees / 'hardened'}}}\n"
        f"  - {{name: here-host, roles: [host], root: {trees / 'weak'}}}\n" + west_target)


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return weak_and_hardened_trees(tmp_path_factory.mktemp("queue-trees"))


def _dispatched(directory: Path, inventory: str, broker: str, **request: object
                ) -> RunResults:
    directory.mkdir(parents=True, exist_ok=True)
    return run_audit(directory, PROFILE, inventory, broker=broker, timeout=10.0,
                     **request)  # type: ignore[arg-type]


def test_a_dispatched_run_gives_each_site_its_own_servers(
        trees: Path, broker: Broker, sites: dict[str, Site], tmp_path: Path) -> None:
    results = _dispatched(tmp_path / "dispatched", _inventory(trees), broker.url)
    found = statuses(results)
    # the same address answers differently at each site: each worker reached its own Redis
    assert found[("db.unauthenticated_access", "north-db")] is Status.FAIL
    assert found[("db.unauthenticated_access", "south-db")] is Status.PASS
    # the south worker logged in with the password from its own environment
    assert found[("db.audit_account_read_only", "south-db")] is Status.FAIL
    # the host trees give what a run on this machine gives
    (tmp_path / "local").mkdir()
    local = statuses(run_audit(tmp_path / "local", PROFILE, _inventory(trees)))
    for (check, target), status in found.items():
        if target.endswith("-host"):
            assert status is local[(check, target)], (check, target)
    # this machine cannot reach either site's Redis
    assert local[("db.unauthenticated_access", "north-db")] is not Status.FAIL
    assert [site.name for site in results.sites] == ["default", "north", "south"]
    assert len(results.results) == len(found), "every result once"


def test_a_site_without_a_scanner_ends_in_bounded_errors_and_no_secret_travels(
        trees: Path, broker: Broker, sites: dict[str, Site], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEST_REDIS_PASSWORD", WEST_SECRET)
    monkeypatch.setenv("SOUTH_REDIS_PASSWORD", SOUTH_SECRET)
    started = time.monotonic()
    results = _dispatched(tmp_path / "west", _inventory(trees, west=True), broker.url,
                          site_timeout=8.0)
    assert time.monotonic() - started < 60
    west = [r for r in results.results if r.target == "west-db"]
    assert west and all(r.status is Status.ERROR for r in west)
    assert all("site west: no scanner answered" in r.summary for r in west)
    assert statuses(results)[("db.unauthenticated_access", "north-db")] is Status.FAIL
    # the west task is still queued for a scanner that never came: what a broker holds
    [queued] = broker.queued("site.west")
    assert "west-redis" in str(queued["body"]) and "WEST_REDIS_PASSWORD" in str(queued["body"])
    held = broker.everything()            # the queue, the results, the bindings
    assert WEST_SECRET not in held and SOUTH_SECRET not in held


def test_a_worker_killed_mid_task_has_its_task_done_by_another(
        trees: Path, broker: Broker, tmp_path: Path) -> None:
    (tmp_path / "east").mkdir()
    east = Site("east", tmp_path / "east", broker.url, silent_port=7001)
    try:
        first = east.start_worker(visibility_timeout=6)
        inventory = (
            "organisation: Hospital group\nscope: {networks: [127.77.0.0/16]}\ntargets:\n"
            # a silent listener inside the site: the check waits for its timeout
            f"  - {{name: east-slow, site: east, address: {SITE_DB_ADDRESS}, roles: [db], "
            f"services: [{{kind: redis, port: 7001}}]}}\n")
        (tmp_path / "east" / "inventory.yaml").write_text(inventory)
        (tmp_path / "east" / "profile.yaml").write_text(profile_text(DB_CHECKS))
        run = subprocess.Popen(
            [sys.executable, "-m", "audit.cli", "run", "-p", str(tmp_path / "east/profile.yaml"),
             "-i", str(tmp_path / "east/inventory.yaml"), "-o", str(tmp_path / "out"),
             "--broker", broker.url, "--timeout", "24", "--site-timeout", "90",
             "--history", "off", "--quiet", "--format", "json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for_probe(first, run)
        assert broker.unacknowledged() > 0, "the task is held, not yet acknowledged"
        os.killpg(first.process.pid, signal.SIGKILL)
        second = east.start_worker(visibility_timeout=6)
        _, stderr = run.communicate(timeout=120)
        assert run.returncode in (0, 1), stderr
        record = RunResults.model_validate_json((tmp_path / "out/results.json").read_bytes())
        keys = [(r.control, r.check, r.target) for r in record.results]
        assert len(keys) == len(set(keys)) == 2, "every result exactly once"
        assert all("no scanner answered" not in r.summary for r in record.results)
        assert ACCEPTED in second.log.read_bytes(), "the task ran again, on the second worker"
    finally:
        east.stop()


# What the silent listener of a worker's namespace says, in the worker's log, when the
# worker's probe connects to it.
ACCEPTED = b"silent listener: accepted"


def _wait_for_probe(worker: ServerProcess, run: subprocess.Popen[str]) -> None:
    """Until the worker's probe holds a connection to its silent listener (each connection
    of a 24-second check waits three seconds for an answer)."""
    deadline = time.monotonic() + 60
    while ACCEPTED not in worker.log.read_bytes():
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, "no worker probed the target"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def signing(tmp_path_factory: pytest.TempPathFactory) -> dict[str, MessageSigning]:
    """The dispatcher's and the signed site's keys; each trusts only the other's certificate,
    and an intruder's key that nobody trusts."""
    directory = tmp_path_factory.mktemp("signing")
    made = {name: make_server_cert(directory / name, name, [name], rsa_bits=2048)
            for name in ("dispatcher", "scanner", "intruder")}

    def side(name: str, trusts: str) -> MessageSigning:
        return MessageSigning(made[name].key, made[name].cert, made[trusts].cert)
    return {"dispatcher": side("dispatcher", "scanner"), "scanner": side("scanner", "dispatcher"),
            "intruder": side("intruder", "scanner"),
            "dispatcher-trusting-intruder": side("dispatcher", "intruder")}


def _signed_site(broker: Broker, directory: Path, signing: MessageSigning) -> Site:
    return Site("signed", directory, broker.url, worker_args=[
        "--sign-key", str(signing.key), "--sign-cert", str(signing.certificate),
        "--trusted-certs", str(signing.trusted)])


def test_signed_messages_are_taken_and_unsigned_or_forged_ones_refused(
        broker: Broker, signing: dict[str, MessageSigning], tmp_path: Path) -> None:
    inventory = ("organisation: Hospital group\nscope: {networks: [127.77.0.0/16]}\ntargets:\n"
                 f"  - {{name: signed-db, site: signed, address: {SITE_DB_ADDRESS}, "
                 f"roles: [db], services: [{{kind: redis, port: {SITE_DB_PORT}}}]}}\n")
    site = _signed_site(broker, tmp_path, signing["scanner"])
    try:
        worker = site.start_worker()
        signed = _dispatched(tmp_path / "signed", inventory, broker.url,
                             signing=signing["dispatcher"], site_timeout=30.0)
        assert statuses(signed)[("db.unauthenticated_access", "signed-db")] is Status.FAIL
        # a task the site's scanner cannot verify is never run: the site does not answer
        for name, given in (("unsigned", None), ("forged", signing["intruder"])):
            refused = _dispatched(tmp_path / name, inventory, broker.url, signing=given,
                                  site_timeout=6.0)
            assert all("site signed: no scanner answered" in r.summary
                       for r in refused.results if r.target == "signed-db"), \
                [name, *(r.summary for r in refused.results)]
        log = worker.log.read_text(errors="replace")
        assert "untrusted content" in log or "Refusing" in log, log[-2000:]
        assert "Unknown certificate" in log, log[-2000:]
        # an answer signed by a scanner this side does not trust is refused, not believed
        doubted = _dispatched(tmp_path / "doubted", inventory, broker.url,
                              signing=signing["dispatcher-trusting-intruder"], site_timeout=30.0)
        [result] = [r for r in doubted.results if r.check == "db.unauthenticated_access"]
        assert result.status is Status.ERROR and "its answer was refused" in result.summary
    finally:
        site.stop()


def _worker_with(*options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "audit.cli", "worker", "--site", "x",
                           "--broker", "redis://127.77.0.99:1", *options], check=False,
                          capture_output=True, text=True, timeout=60)


def test_a_signing_key_that_does_not_load_is_a_clear_error(
        signing: dict[str, MessageSigning], tmp_path: Path) -> None:
    bad_key = tmp_path / "bad.key"
    bad_key.write_text("not a key\n")
    given = signing["dispatcher"]
    for key, certificate, trusted, expected in (
            (bad_key, given.certificate, given.trusted, "bad.key"),
            (given.key, given.certificate, tmp_path / "missing", "missing")):
        run = _worker_with("--sign-key", str(key), "--sign-cert", str(certificate),
                           "--trusted-certs", str(trusted))
        assert run.returncode == 2 and expected in run.stderr and "message signing" in run.stderr
        assert "Traceback" not in run.stderr
    half = _worker_with("--sign-key", str(given.key))
    assert half.returncode == 2 and "missing --sign-cert, --trusted-certs" in half.stderr


def _run_process(work: Path, broker: Broker | None, *args: str) -> subprocess.Popen[str]:
    """`mis-audit run` over work/inventory.yaml into work/out, in a process of its own."""
    command = [sys.executable, "-m", "audit.cli", "run", "-o", str(work / "out"),
               "--history", "off", "--quiet", "--format", "json", *args]
    if "--resume" not in args:
        command += ["-p", str(work / "profile.yaml"), "-i", str(work / "inventory.yaml")]
    if broker is not None:
        command += ["--broker", broker.url]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_dispatched_run_resumed_sends_its_sites_their_part_again(
        trees: Path, broker: Broker, tmp_path: Path) -> None:
    work = tmp_path / "late"
    work.mkdir()
    (work / "profile.yaml").write_text(PROFILE)
    (work / "inventory.yaml").write_text(
        "organisation: Hospital group\nscope: {networks: [127.77.0.0/16]}\ntargets:\n"
        f"  - {{name: late-db, site: late, address: {SITE_DB_ADDRESS}, roles: [db], "
        f"services: [{{kind: redis, port: {SITE_DB_PORT}}}]}}\n"
        f"  - {{name: here-host, roles: [host], root: {trees / 'weak'}}}\n")
    # the late site has no scanner yet: the run checkpoints this machine's part and waits
    first = _run_process(work, broker, "--site-timeout", "120")
    journal = work / "out" / JOURNAL_FILE
    deadline = time.monotonic() + 60
    while not (journal.exists() and len(journal.read_text().splitlines()) > len(HOST_CHECKS)):
        assert first.poll() is None and time.monotonic() < deadline, first.stderr
        time.sleep(0.1)
    first.kill()
    first.wait()
    assert broker.url in journal.read_text().splitlines()[0]
    late = Site("late", tmp_path, broker.url)
    try:
        late.start_worker()
        # no --broker: the journal names it, and the resumed run sends the late site its part
        resumed = _run_process(work, None, "--resume", str(work / "out"))
        _, stderr = resumed.communicate(timeout=120)
        assert resumed.returncode in (0, 1), stderr
    finally:
        late.stop()
    record = RunResults.model_validate_json((work / "out/results.json").read_bytes())
    assert statuses(record)[("db.unauthenticated_access", "late-db")] is Status.FAIL
    keys = [(r.control, r.check, r.target) for r in record.results]
    assert len(keys) == len(set(keys))


def test_a_broker_password_is_never_journaled_and_must_be_given_again() -> None:
    request = RecordedRequest(profiles=["p"], inventory=None, waivers=None, jobs=1, timeout=1,
                              broker="redis://scanner:***@broker.example:6379/0",
                              broker_password_masked=True, site_timeout=30)
    header = JournalHeader(started_at=datetime.now(UTC), request=request, inputs_sha256="0")
    with pytest.raises(InputError, match=r"scanner:\*\*\*@broker.example.*give --broker"):
        resumed_request(header, debug=False)
    again = resumed_request(header, debug=False, broker="redis://scanner:s3cret@broker.example")
    assert again.broker == "redis://scanner:s3cret@broker.example" and again.site_timeout == 30
    assert redact("amqp://mis:s3cret@rabbit:5672//") == "amqp://mis:***@rabbit:5672//"
    assert redact("redis+socket:///run/broker.sock") == "redis+socket:///run/broker.sock"


def _site_inventory(inventory: str, site: str | None) -> str:
    """The inventory of one site's own scanner: its targets only (`None`: those of none)."""
    document = yaml.safe_load(inventory)
    document["targets"] = [t for t in document["targets"] if t.get("site") == site]
    return yaml.safe_dump(document, sort_keys=False)


def test_per_site_runs_merged_equal_the_dispatched_run(
        trees: Path, broker: Broker, sites: dict[str, Site], tmp_path: Path) -> None:
    inventory = _inventory(trees)
    dispatched = _dispatched(tmp_path / "dispatched", inventory, broker.url)
    stored = []
    for name in ("north", "south"):
        work = tmp_path / name
        work.mkdir()
        (work / "profile.yaml").write_text(PROFILE)
        (work / "inventory.yaml").write_text(_site_inventory(inventory, name))
        ran = sites[name].run("run", "-p", str(work / "profile.yaml"), "-i",
                              str(work / "inventory.yaml"), "-o", str(work / "out"),
                              "--history", "off", "--quiet", "--format", "json")
        assert ran.returncode in (0, 1), ran.stdout.decode(errors="replace")[-3000:]
        stored.append(StoredRun(str(work / "out/results.json"), RunResults.model_validate_json(
            (work / "out/results.json").read_bytes())))
    # the targets of no site, audited here: their run's directory names their site
    (tmp_path / UNNAMED_SITE).mkdir()
    here = run_audit(tmp_path / UNNAMED_SITE, PROFILE, _site_inventory(inventory, None))
    stored.append(StoredRun(str(tmp_path / UNNAMED_SITE / "results.json"), here))
    merged = merge_runs(stored)
    assert statuses(merged) == statuses(dispatched)
    assert (merged.score, merged.verdict) == (dispatched.score, dispatched.verdict)
    assert [(s.name, s.targets, s.score, s.verdict) for s in merged.sites] == \
        [(s.name, s.targets, s.score, s.verdict) for s in dispatched.sites]


def test_a_broker_over_tls_is_verified_before_anything_runs(
        trees: Path, tmp_path: Path) -> None:
    ca, ca_cert, ca_key = make_ca(tmp_path / "ca")
    certificate = make_server_cert(tmp_path / "ca", "broker", [TLS_BROKER_ADDRESS],
                                   ca=(ca_cert, ca_key))
    broker = start_broker(tmp_path / "tls-broker", tls=certificate)
    assert broker.tls_url is not None
    # no ssl_cert_reqs: mis-audit requires the certificate to verify (kombu would not)
    verified = f"{broker.tls_url}?ssl_ca_certs={ca.cert}"
    # a worker on this machine's network: the broker's TLS port is on its loopback
    site = Site("tls", tmp_path, verified, own_network=False)
    inventory = ("organisation: Hospital group\ntargets:\n"
                 f"  - {{name: tls-host, site: tls, roles: [host], root: {trees / 'weak'}}}\n")
    try:
        site.start_worker()
        results = _dispatched(tmp_path / "verified", inventory, verified)
        assert results.results and not [r for r in results.results
                                         if r.status is Status.ERROR and "site tls" in r.summary]
        (tmp_path / "local").mkdir()
        assert statuses(results) == statuses(run_audit(tmp_path / "local", PROFILE,
                                                       inventory.replace("site: tls, ", "")))
        # a broker whose certificate no anchor here vouches for: refused before any target
        other, _, _ = make_ca(tmp_path / "other", name="another CA")
        with pytest.raises(InputError, match="cannot connect.*certificate verify failed"):
            _dispatched(tmp_path / "unverified", inventory, f"{broker.tls_url}?ssl_ca_certs="
                        f"{other.cert}")
    finally:
        site.stop()
        broker.stop()
    # a certificate the anchor vouches for, of another name
    misnamed = make_server_cert(tmp_path / "ca", "misnamed", ["127.77.0.21"], ca=(ca_cert, ca_key))
    broker = start_broker(tmp_path / "misnamed-broker", tls=misnamed)
    try:
        with pytest.raises(InputError, match="cannot connect.*(match|mismatch)"):
            _dispatched(tmp_path / "misnamed", inventory, verified)
    finally:
        broker.stop()
