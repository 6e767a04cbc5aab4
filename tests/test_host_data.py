"""Data locations found on the host, not assumed: a vendor's host keeps its PostgreSQL
cluster and its DICOM storage on a LUKS volume at /var/lib/medsoft, watched by a rule in
rules.d only, and has no /srv/mis. Read offline and over a real sshd."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from hosts import HOST_CHECKS, profile_text
from runs import by_target, run_audit

from audit.facts.context import Environment, TargetContext
from audit.facts.host_data import DataLocationParams, _orthanc_settings, server_data_directories
from audit.facts.host_databases import DatabaseConfigs, PostgresCluster, Setting
from audit.model.inventory import Scope, SshCredential, Target
from audit.model.results import Result
from audit.registry import default_registry
from audit.transports.ssh import SshTransport
from audit.vocabulary import Role, Status
from tests.servers.sshd import SshHost, host_tree, start_ssh_host

DATA_CHECKS = ("hostsys.disk_encryption", "hostsys.audit_rules", "hostsys.data_permissions")
VENDOR_ADDRESS = "127.63.0.14"
FOUND = [("/var/lib/medsoft/pgsql (PostgreSQL data_directory "
         "(/etc/postgresql/15/main/postgresql.conf:2))"),
         ("/var/lib/medsoft/dicom (Orthanc StorageDirectory (/etc/orthanc/orthanc.json); "
         "Orthanc IndexDirectory (/etc/orthanc/orthanc.json))")]


def _offline(tmp_path: Path, target: str = "", checks: tuple[str, ...] = HOST_CHECKS
             ) -> dict[tuple[str, str], Result]:
    host_tree("vendor", tmp_path / "vendor")
    return by_target(run_audit(tmp_path, profile_text(checks),
                               "organisation: Vendor clinic\ntargets:\n"
                               "  - {name: vendor, roles: [host], root: vendor"
                               f"{target}}}\n"))


def test_data_outside_srv_is_found_from_the_servers_configuration(tmp_path: Path) -> None:
    results = _offline(tmp_path, ", admin_groups: [his-ops]")
    for check in HOST_CHECKS:
        assert results[("vendor", check)].status is Status.PASS, \
            (check, results[("vendor", check)].summary)
    for check in DATA_CHECKS:
        assert results[("vendor", check)].evidence.details["data_locations"] == FOUND, check
    encryption = results[("vendor", "hostsys.disk_encryption")]
    assert [mount["mountpoint"] for mount in encryption.evidence.observed] == \
        ["/var/lib/medsoft", "/var/lib/medsoft"]
    assert encryption.evidence.observed[0]["encryption"] == ["/etc/crypttab:1"]
    audit = results[("vendor", "hostsys.audit_rules")]
    assert audit.evidence.details["files"] == ["/etc/audit/rules.d/medsoft.rules"]
    assert "rule files" in audit.summary


def test_an_admin_group_is_one_by_the_targets_declaration(tmp_path: Path) -> None:
    undeclared = _offline(tmp_path, checks=("host.role_separation",))[
        ("vendor", "host.role_separation")]
    assert undeclared.status is Status.FAIL
    assert "group his-ops is not an admin group" in undeclared.summary
    assert "the target's admin_groups (inventory)" in undeclared.summary


def test_each_location_is_judged_and_a_declared_absent_one_is_named(tmp_path: Path) -> None:
    tree = host_tree("vendor", tmp_path / "vendor")
    (tree / "var/lib/exports").mkdir()           # on the root file system, not encrypted
    (tree / "var/lib/exports/list.csv").write_text("patient list\n")
    results = by_target(run_audit(
        tmp_path, profile_text(DATA_CHECKS),
        "organisation: Vendor clinic\ntargets:\n"
        "  - {name: vendor, roles: [host], root: vendor, "
        "data_paths: [/var/lib/exports, /srv/old-mis]}\n"))
    encryption = results[("vendor", "hostsys.disk_encryption")]
    assert encryption.status is Status.FAIL
    assert encryption.summary == "/var/lib/exports is on /dev/sda1 mounted at /, not encrypted"
    details = encryption.evidence.details
    assert details["data_locations"][0] == "/var/lib/exports (inventory data_paths)"
    assert details["absent"] == ["/srv/old-mis (inventory data_paths)"]
    audit = results[("vendor", "hostsys.audit_rules")]
    assert audit.status is Status.FAIL and audit.summary == "no audit watch covers /var/lib/exports"
    permissions = results[("vendor", "hostsys.data_permissions")]
    assert permissions.status is Status.FAIL
    assert permissions.evidence.observed[0].startswith("/var/lib/exports ")


def test_a_host_without_data_is_not_judged_and_says_where_it_looked(tmp_path: Path) -> None:
    tree = host_tree("vendor", tmp_path / "vendor")
    for config in ("etc/orthanc/orthanc.json", "etc/postgresql/15/main/postgresql.conf"):
        (tree / config).unlink()
    results = by_target(run_audit(tmp_path, profile_text(DATA_CHECKS),
                                  "organisation: Vendor clinic\ntargets:\n"
                                  "  - {name: vendor, roles: [host], root: vendor}\n"))
    for check in DATA_CHECKS:
        result = results[("vendor", check)]
        assert result.status is Status.NOT_APPLICABLE, (check, result.summary)
        assert "/srv/mis" in result.summary and "data_paths" in result.summary


def test_the_servers_own_settings_name_their_data_directories() -> None:
    configs = DatabaseConfigs(
        postgres=[PostgresCluster("/etc/postgresql/16/reports", None, [])],
        mysql_files=["/etc/mysql/my.cnf"], mysql_secure_transport=None, redis_file=None,
        redis_password_set=False, redis_protected_mode=None, redis_bind=None,
        redis_dir=Setting("./", "/etc/redis/redis.conf:9"))
    assert list(server_data_directories(configs)) == [
        ("/var/lib/postgresql/16/reports",
         "PostgreSQL cluster 16/reports (no data_directory in /etc/postgresql/16/reports)",
         False),
        ("/var/lib/mysql", "MySQL/MariaDB default datadir (none configured)", False),
        ("./", "Redis dir (/etc/redis/redis.conf:9)", True)]
    text = '{ /* c */ "StorageDirectory": "/data//x", // y\n "Url": "http://a/*b*/" }'
    assert _orthanc_settings(text, "o.json") == {"StorageDirectory": "/data//x",
                                                 "Url": "http://a/*b*/"}
    assert DataLocationParams().conventional_paths[0] == "/srv/mis"


@pytest.fixture(scope="module")
def vendor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHost]:
    host = start_ssh_host("vendor", tmp_path_factory.mktemp("ssh-vendor"), VENDOR_ADDRESS)
    yield host
    host.stop()


@pytest.mark.servers
def test_over_ssh_the_running_system_decides_and_agrees(tmp_path: Path, vendor: SshHost) -> None:
    inventory = (
        "organisation: Vendor clinic\nscope: {networks: [127.63.0.0/16]}\ncredentials:\n"
        f"  key: {{type: ssh, user: auditor, key_file: {vendor.key_file}, "
        f"known_hosts: {vendor.known_hosts}, port: {vendor.port}, sudo: true}}\n"
        f"targets:\n  - {{name: vendor, address: {vendor.address}, roles: [host], ssh: key, "
        "admin_groups: [his-ops]}\n")
    run = run_audit(tmp_path, profile_text(HOST_CHECKS), inventory)
    assert run.targets[0].account == "auditor over SSH, sudo -n for the allow-listed reads"
    assert run.targets[0].source_address == "127.0.0.1"
    results = by_target(run)
    for check in HOST_CHECKS:
        assert results[("vendor", check)].status is Status.PASS, \
            (check, results[("vendor", check)].summary)
    encryption = results[("vendor", "hostsys.disk_encryption")].evidence.observed
    assert [(m["source"], m["encryption"]) for m in encryption] == \
        [("lsblk", ["medsoft (crypt)"])] * 2
    audit = results[("vendor", "hostsys.audit_rules")]
    assert audit.evidence.details["source"] == "auditctl -l" and "kernel" in audit.summary
    assert results[("vendor", "hostsys.data_permissions")].evidence.details[
        "data_locations"] == FOUND
    assert "his-ops" in json.dumps(results[("vendor", "host.role_separation")].evidence.observed)


@pytest.mark.servers
def test_a_whole_host_review_takes_three_round_trips(vendor: SshHost) -> None:
    credential = SshCredential(type="ssh", user="auditor", sudo=True, port=vendor.port)
    transport = SshTransport(vendor.address, credential, vendor.key_file, vendor.known_hosts,
                             20.0)
    target = Target(name="vendor", address=vendor.address, roles=[Role.HOST], ssh="key",
                    admin_groups=["his-ops"])
    environment = Environment(base_dir=Path("."), today=date.today(), scope=Scope())
    context = TargetContext(target, environment, lambda _target, _environment: transport)
    registry = default_registry()
    try:
        for check in HOST_CHECKS:        # every probe, as the engine asks them
            spec = registry.get(check)
            if spec.probe_takes_params:
                context.gather(spec.probe, spec.params())
            else:
                context.gather(spec.probe)
        assert transport.round_trips == 3        # connect, the batch, the data locations
    finally:
        context.close()
