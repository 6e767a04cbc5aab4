"""`mis-audit fix` proven by a re-audit: the weak SSH test host is audited, the playbook is
generated and run by ansible-playbook over SSH, and the host is audited again.

The test host's PostgreSQL configuration directory is a real server's (bind-mounted), so
the database fixes are proven on the running server too. The test host has no init system:
service reloads are switched off (`mis_audit_reload_services=false`) and the test reloads
PostgreSQL itself; `augenrules --load` is a stand-in that hands the rule files to the
stand-in `auditctl -l`, as the kernel would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import yaml
from hosts import HOST_CHECKS, profile_text
from runs import by_target, run_audit

from audit.model.results import Result, RunResults
from audit.vocabulary import Status
from tests.servers.pki import make_ca, make_server_cert
from tests.servers.postgres import HARDENED_PASSWORD, ConfiguredPostgres, start_configured_postgres
from tests.servers.sshd import ADMIN, HOSTS, SshHost, start_ssh_host

pytestmark = pytest.mark.servers
HOST_ADDRESS, DB_ADDRESS, DB_PORT = "127.74.0.10", "127.74.0.11", 5432
CHECKS = HOST_CHECKS + ("db.unauthenticated_access",)
CLAIMED = {"host.ssh_root_login", "host.ssh_password_auth", "host.ssh_idle_timeout",
           "host.password_max_age", "hostsys.audit_rules", "hostsys.data_permissions",
           "hostdb.pg_hba_trust", "hostdb.postgres_ssl", "hostdb.mysql_secure_transport",
           "hostdb.redis_auth"}
REDIS_PASSWORD = "fix-test-redis-secret-5150"
BIN = Path(sys.executable).parent


def _kernel_audit_scripts(state: Path) -> dict[str, str]:
    """augenrules --load puts the rule files' rules where auditctl -l lists them."""
    return {
        "/usr/sbin/augenrules": f"cat /etc/audit/rules.d/*.rules | grep -E '^-[wa] ' > {state}\n",
        "/usr/sbin/auditctl": (f"[ \"$(id -u)\" = 0 ] || exit 1\n"
                               f"if [ -s {state} ]; then cat {state}; else echo 'No rules'; fi\n"),
    }


@dataclass
class Lab:
    host: SshHost
    postgres: ConfiguredPostgres
    workdir: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    workdir = tmp_path_factory.mktemp("fix-lab")
    _, ca_cert, ca_key = make_ca(workdir, "fix test CA")
    cert = make_server_cert(workdir, "fix-db", [DB_ADDRESS], ca=(ca_cert, ca_key))
    hba = (HOSTS / "weak/etc/postgresql/15/main/pg_hba.conf").read_text()
    postgres = start_configured_postgres(DB_ADDRESS, DB_PORT, hba, cert)
    try:
        host = start_ssh_host("weak", workdir / "host", HOST_ADDRESS, admin=True,
                              scripts=_kernel_audit_scripts(workdir / "kernel-audit.rules"),
                              binds={"/etc/postgresql/15/main": postgres.config_dir})
    except BaseException:
        postgres.stop()
        raise
    yield Lab(host, postgres, workdir)
    host.stop()
    postgres.stop()


def _audit(lab: Lab, directory: Path) -> RunResults:
    directory.mkdir()
    host = lab.host
    inventory = (
        "organisation: Fix clinic\nscope: {networks: [127.74.0.0/16]}\n"
        f"credentials:\n  admin-less: {{type: ssh, user: auditor, key_file: {host.key_file}, "
        f"known_hosts: {host.known_hosts}, port: {host.port}, sudo: true}}\n"
        f"targets:\n  - {{name: clinic-host, address: {host.address}, roles: [host], "
        f"ssh: admin-less}}\n"
        f"  - {{name: clinic-db, address: {DB_ADDRESS}, roles: [db], "
        f"services: [{{kind: postgresql, port: {DB_PORT}}}]}}\n")
    results = run_audit(directory, profile_text(CHECKS), inventory)
    (directory / "results.json").write_text(results.model_dump_json())
    return results


def _fix(results: Path, playbook: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "mis-audit"), "fix", str(results), "-o", str(playbook),
                           *options], capture_output=True, text=True, timeout=60, check=False)


def _ansible(lab: Lab, playbook: Path, *options: str) -> subprocess.CompletedProcess[str]:
    host = lab.host
    inventory = lab.workdir / "inventory.ini"
    inventory.write_text(
        f"clinic-host ansible_host={host.address} ansible_port={host.port} "
        f"ansible_user={ADMIN} ansible_ssh_private_key_file={host.admin_key_file} "
        f"ansible_python_interpreter=/usr/bin/python3 "
        f"ansible_ssh_common_args='-o UserKnownHostsFile={host.known_hosts} "
        f"-o StrictHostKeyChecking=yes'\n")
    home = lab.workdir / "ansible-home"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "LC_ALL": "C.UTF-8",
           "ANSIBLE_STDOUT_CALLBACK": "default", "ANSIBLE_RETRY_FILES_ENABLED": "0"}
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook),
         "-e", "mis_audit_reload_services=false",
         "-e", f"mis_audit_redis_password={REDIS_PASSWORD}",
         *options], capture_output=True, text=True, timeout=300, env=env, check=False)


def _recap(output: str) -> dict[str, int]:
    line = next(line for line in output.splitlines() if line.startswith("clinic-host "))
    return {key: int(value) for key, value in
            (item.split("=") for item in line.split(":", 1)[1].split())}


def _statuses(results: RunResults) -> dict[tuple[str, str], Result]:
    return by_target(results)


def _handler_outcome(output: str, name: str) -> str | None:
    """ok, changed, skipping or failed: how the handler ended on the host, None if it never ran."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(f"RUNNING HANDLER [{name}]"):
            outcome = next(item for item in lines[index + 1:] if item.strip())
            return outcome.split(":", 1)[0].strip()
    return None


def _postgres_asks_for_a_password_over_tls() -> None:
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(host=DB_ADDRESS, port=DB_PORT, user="postgres", dbname="postgres",
                        connect_timeout=5).close()
    with psycopg.connect(host=DB_ADDRESS, port=DB_PORT, user="postgres", dbname="postgres",
                         password=HARDENED_PASSWORD, sslmode="require",
                         connect_timeout=5) as connection:
        assert connection.pgconn.ssl_in_use


def test_the_playbook_fixes_what_it_claims_and_a_second_run_changes_nothing(
        lab: Lab, tmp_path: Path) -> None:
    before = _audit(lab, tmp_path / "before")
    old = _statuses(before)
    assert {check for (target, check), r in old.items()
            if target == "clinic-host" and r.status is Status.FAIL} >= CLAIMED
    assert old[("clinic-db", "db.unauthenticated_access")].status is Status.FAIL

    playbook = tmp_path / "playbook.yml"
    generated = _fix(tmp_path / "before/results.json", playbook)
    assert generated.returncode == 0, generated.stderr
    plays = yaml.safe_load(playbook.read_text())
    assert [play["hosts"] for play in plays] == ["clinic-host"]
    claimed = {tag for task in plays[0]["tasks"] for tag in task["tags"] if "." in tag}
    assert claimed >= CLAIMED
    assert REDIS_PASSWORD not in playbook.read_text()

    preview = _ansible(lab, playbook, "--check", "--diff")
    assert preview.returncode == 0, preview.stdout + preview.stderr
    assert "+PermitRootLogin no" in preview.stdout and "trust" in preview.stdout
    (tmp_path / "check-diff.txt").write_text(preview.stdout)
    assert _statuses(_audit(lab, tmp_path / "after-check"))[
        ("clinic-host", "host.ssh_root_login")].status is Status.FAIL, "--check changes nothing"

    applied = _ansible(lab, playbook)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert _recap(applied.stdout)["changed"] > 0
    for validation in ("check the sshd configuration (sshd -t)",
                       "check PostgreSQL 15/main configuration (postgres -C)"):
        assert _handler_outcome(applied.stdout, validation) == "ok", validation
    assert _handler_outcome(applied.stdout, "reload sshd") == "skipping", "switched off"
    assert REDIS_PASSWORD not in applied.stdout + applied.stderr
    lab.postgres.reload()                      # the handler pg_ctlcluster, switched off here
    _postgres_asks_for_a_password_over_tls()

    after = _statuses(_audit(lab, tmp_path / "after"))
    for (target, check), result in after.items():
        if target == "clinic-host" and check in CLAIMED:
            assert result.status is Status.PASS, (check, result.summary)
        elif check == "db.unauthenticated_access":
            assert result.status is Status.PASS, result.summary
        else:
            assert result.status is old[(target, check)].status, (check, result.summary)

    again = _ansible(lab, playbook)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _recap(again.stdout)["changed"] == 0, again.stdout

