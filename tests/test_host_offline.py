"""The weak and hardened host trees read through the offline transport, via a whole run."""

from __future__ import annotations

from pathlib import Path

from hosts import EXPECTED, HOST_CHECKS, LIVE_CHECKS, profile_text
from runs import by_target, run_audit

from audit.model.results import Result
from audit.vocabulary import Status
from tests.servers.sshd import host_tree


def _run(tmp_path: Path) -> dict[tuple[str, str], Result]:
    for variant in ("weak", "hardened"):
        host_tree(variant, tmp_path / variant)
    return by_target(run_audit(tmp_path, profile_text(),
                               "organisation: Offline clinic\ntargets:\n"
                               "  - {name: weak, roles: [host], root: weak}\n"
                               "  - {name: hardened, roles: [host], root: hardened}\n"))


def test_weak_tree_fails_and_hardened_tree_passes_every_host_check(tmp_path: Path) -> None:
    results = _run(tmp_path)
    for variant, expected in EXPECTED.items():
        observed = {check: results[(variant, check)].status for check in expected}
        assert observed == expected, {c: results[(variant, c)].summary for c in expected
                                      if observed[c] != expected[c]}
        for check in LIVE_CHECKS:
            assert results[(variant, check)].status is Status.NOT_APPLICABLE


def test_weak_tree_evidence_names_the_lines(tmp_path: Path) -> None:
    results = _run(tmp_path)
    sudo = results[("weak", "host.role_separation")].evidence.details["problems"]
    assert any("/etc/sudoers.d/clinic:4" in problem and "dr_ivanova" in problem
               for problem in sudo)
    assert any("group clinicians" in problem for problem in sudo)
    assert any("admin dr_ivanova (group sudo) is also an ordinary user" in p for p in sudo)
    mfa = results[("weak", "host.ssh_mfa")].evidence.details["problems"]
    assert any("Match User nurse_k" in problem for problem in mfa)
    assert any("bypassable" in problem and "nullok" in problem for problem in mfa)
    accounts = results[("weak", "host.password_max_age")].evidence.details["accounts"]
    assert accounts == ["dr_ivanova: 99999 (/etc/shadow:3)", "nurse_k: never (/etc/shadow:4)"]
    hba = results[("weak", "hostdb.pg_hba_trust")].evidence.observed
    assert [line.split(": ")[0].rsplit("/", 1)[1] for line in hba] == ["pg_hba.conf:2",
                                                                      "pg_hba.conf:3"]
    data = results[("weak", "hostsys.data_permissions")].evidence.observed
    assert any(item.startswith("/srv/mis/data ") for item in data)


def test_hardened_tree_evidence(tmp_path: Path) -> None:
    results = _run(tmp_path)
    firewall = results[("hardened", "hostsys.firewall")].evidence.observed
    assert firewall["allowed"] == ["tcp dport 22", "tcp dport { 443, 2575 }"]
    assert firewall["source"] == "/etc/nftables.conf"
    encryption = results[("hardened", "hostsys.disk_encryption")].evidence.observed
    assert [mount["encryption"] for mount in encryption] == [["/etc/crypttab:1"]]
    assert encryption[0]["location"] == "/srv/mis (conventional location)"
    assert results[("hardened", "hostdb.postgres_ssl")].summary == "ssl = on in 1 cluster(s)"


def test_no_secret_from_a_host_reaches_the_results(tmp_path: Path) -> None:
    results = _run(tmp_path)
    dumped = "".join(result.model_dump_json() for result in results.values())
    assert "fixture-redis-secret-4711" not in dumped
    assert "notarealhash" not in dumped


def test_this_machine_over_the_local_transport_gives_verdicts(tmp_path: Path) -> None:
    results = run_audit(tmp_path, profile_text(HOST_CHECKS)).results       # no inventory
    assert len(results) == len(HOST_CHECKS)
    crashed = [(r.check, r.error.message) for r in results
               if r.error is not None and r.error.type == "check_failed"]
    assert crashed == []
    assert all(r.status in (Status.PASS, Status.FAIL, Status.NOT_APPLICABLE) for r in results
               if r.error is None)


def test_a_server_configured_but_neither_enabled_nor_running_is_not_judged(
        tmp_path: Path) -> None:
    tree = host_tree("weak", tmp_path / "leftover")
    for link in (tree / "etc/systemd/system/multi-user.target.wants").iterdir():
        link.unlink()            # the configs stay: a Redis, MariaDB, PostgreSQL long gone
    checks = ("hostdb.pg_hba_trust", "hostdb.postgres_ssl", "hostdb.mysql_secure_transport",
              "hostdb.redis_auth")
    results = by_target(run_audit(tmp_path, profile_text(checks),
                                  "organisation: Offline clinic\ntargets:\n"
                                  "  - {name: leftover, roles: [host], root: leftover}\n"))
    for check in checks:
        result = results[("leftover", check)]
        assert result.status is Status.NOT_APPLICABLE, (check, result.summary)
        assert "neither enabled nor running" in result.summary
