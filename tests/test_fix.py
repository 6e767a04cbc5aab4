"""The fix playbook from a stored run: which results get tasks, how they are tagged, what is
left to people, and that nothing a target sent can become Ansible template code.
(`test_fix_playbooks.py` runs the playbooks against a real host.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hosts import HOST_CHECKS
from runs import offline_host_run

from audit.fix import FIXERS, Safety, load_fixers, plan_fixes, render_playbook
from audit.model.results import Evidence, Result, RunResults
from audit.registry import default_registry
from audit.vocabulary import Status

NOT_FIXED = {"host.ssh_mfa", "host.role_separation", "hostsys.disk_encryption",
             "hostsys.firewall", "hostsys.time_sync"}


@pytest.fixture(scope="module")
def weak_run(tmp_path_factory: pytest.TempPathFactory) -> RunResults:
    """The weak host tree audited offline: every host check fails on it."""
    return offline_host_run(tmp_path_factory.mktemp("weak_run"))


def over_ssh(results: RunResults) -> RunResults:
    targets = [t.model_copy(update={"transport": "ssh", "address": "192.0.2.7"})
               for t in results.targets]
    return results.model_copy(update={"targets": targets})


def with_result(results: RunResults, check: str, **evidence: Any) -> RunResults:
    """`results` with the failed result of `check` given other evidence."""
    changed = [r.model_copy(update={"evidence": Evidence(**evidence)}) if r.check == check
               else r for r in results.results]
    return results.model_copy(update={"results": changed})


class UnsafeLoader(yaml.SafeLoader):
    """Reads `!unsafe` scalars as ("unsafe", text), as Ansible reads them: never templated."""


UnsafeLoader.add_constructor("!unsafe", lambda loader, node: ("unsafe", loader.construct_scalar(
    node)))


def test_an_offline_copy_gets_no_tasks_and_says_why(weak_run: RunResults) -> None:
    plan = plan_fixes(weak_run)
    assert plan.plays == []
    reasons = {item.result.check: item.reason for item in plan.unfixed}
    assert reasons["host.ssh_root_login"] == "an offline copy of the host: fix the host itself"
    assert reasons["host.ssh_mfa"] == "no generated fix for this check"


def test_every_fixable_failure_gets_tagged_tasks_and_the_rest_is_listed(
        weak_run: RunResults) -> None:
    results = over_ssh(weak_run)
    plan = plan_fixes(results)
    [play] = plan.plays
    fixed = {r.check for r in play.fixed}
    assert fixed == set(HOST_CHECKS) - NOT_FIXED
    assert {item.result.check for item in plan.unfixed} == NOT_FIXED
    for planned in play.tasks:
        assert planned.task.safety in (Safety.SAFE, Safety.REVIEW)
        assert (planned.task.reason is not None) == (planned.task.safety is Safety.REVIEW)
    review = {check for p in play.tasks if p.task.safety is Safety.REVIEW for check in p.checks}
    assert {"host.ssh_password_auth", "host.ssh_root_login", "hostdb.pg_hba_trust",
            "hostdb.mysql_secure_transport"} <= review
    assert "host.ssh_idle_timeout" not in review and "hostsys.audit_rules" not in review
    text = render_playbook(plan, results)
    [rendered] = yaml.load(text, Loader=UnsafeLoader)
    assert rendered["hosts"] == "weak" and rendered["become"] is True
    for task in rendered["tasks"]:
        assert task["tags"][-1] in ("safe", "review") and task["tags"][0].startswith("c")
    names = [h["name"] for h in rendered["handlers"]]
    assert names.index("check the sshd configuration (sshd -t)") < names.index("reload sshd")
    assert "# review: accounts without an SSH key" in text
    assert "# Not fixed by this playbook" in text and "(host.ssh_mfa)" in text


def test_a_setting_a_match_block_overrides_is_left_to_a_person(weak_run: RunResults) -> None:
    results = with_result(over_ssh(weak_run), "host.ssh_root_login", observed="yes",
                          expected=["no"], details={"location": "sshd -T", "match_blocks": [
                              "/etc/ssh/sshd_config:12 (Match User x): yes"]})
    plan = plan_fixes(results)
    [item] = [u for u in plan.unfixed if u.result.check == "host.ssh_root_login"]
    assert item.reason.startswith("a Match block sets it")


def test_filters_choose_targets_and_controls(weak_run: RunResults) -> None:
    results = over_ssh(weak_run)
    control = next(r.control for r in results.results if r.check == "hostsys.audit_rules")
    plan = plan_fixes(results, controls=[control])
    assert [r.check for play in plan.plays for r in play.fixed] == ["hostsys.audit_rules"]
    assert plan.unfixed == []
    assert plan_fixes(results, targets=["elsewhere"]).plays == []


HOSTILE = "/srv/{{ lookup('pipe', 'touch /tmp/owned') }}"


def test_nothing_a_target_sent_is_templated_or_breaks_out_of_a_comment(
        weak_run: RunResults) -> None:
    results = with_result(over_ssh(weak_run), "hostsys.data_permissions",
                          observed=[f"{HOSTILE} (0o755: other r-x)"], expected="x")
    results = with_result(results, "host.ssh_root_login", observed="yes", expected=["no"],
                          details={"match_blocks": ["x:1 (Match User a\n- hosts: all\n)"]})
    plan = plan_fixes(results)
    text = render_playbook(plan, results)
    [play] = yaml.load(text, Loader=UnsafeLoader)
    files = [task for task in play["tasks"] if "ansible.builtin.file" in task]
    assert [task["ansible.builtin.file"]["path"] for task in files] == [("unsafe", HOSTILE)]
    assert all(task["name"][0] == "unsafe" for task in files)
    tail = text.split("# Not fixed by this playbook", 1)[1]
    assert "- hosts: all" in tail
    assert all(line.startswith("#") for line in tail.splitlines()[1:])


def test_a_flagged_file_is_closed_to_others_but_still_listed(weak_run: RunResults) -> None:
    result = Result(control="leaks", check="data.personal_data_files", target="weak",
                    status=Status.FAIL, summary="1 clear-text file(s) hold 3 identifiers",
                    evidence=Evidence(details={"leaking": [
                        {"file": "/srv/share/patients.xlsx"},
                        {"file": "/srv/share/list-******0013.csv"}]}))
    results = over_ssh(weak_run).model_copy(update={"results": [result]})
    plan = plan_fixes(results)
    [play] = plan.plays
    assert [p.task.args["path"] for p in play.tasks] == ["/srv/share/patients.xlsx"]
    assert play.fixed == [] and plan.unfixed[0].reason.startswith("access closed")


def test_every_fixer_has_a_check_of_the_registry() -> None:
    assert set(load_fixers()) <= set(default_registry().ids()) and FIXERS


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "audit.cli", "fix", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_command_writes_the_playbook_and_refuses_unknown_names(
        weak_run: RunResults, tmp_path: Path) -> None:
    stored = tmp_path / "results.json"
    stored.write_text(over_ssh(weak_run).model_dump_json())
    written = _cli(str(stored), "-o", str(tmp_path / "playbook.yml"))
    assert written.returncode == 0, written.stderr
    assert "weak: " in written.stdout and "not fixed by a playbook" in written.stdout
    assert yaml.load((tmp_path / "playbook.yml").read_text(), Loader=UnsafeLoader)
    printed = _cli(str(stored), "--target", "weak")
    assert printed.stdout.startswith("# Generated by mis-audit fix")
    for args, message in (((str(stored), "--target", "nobody"), "no target named nobody"),
                          ((str(stored), "--control", "c999"), "no control named c999"),
                          ((str(tmp_path / "missing.json"),), "file not found")):
        refused = _cli(*args)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr


def test_evidence_of_another_shape_is_left_to_a_person_not_a_traceback(
        weak_run: RunResults) -> None:
    results = with_result(over_ssh(weak_run), "host.password_max_age", observed=1,
                          expected="<= 90", details={"accounts": None})
    results = with_result(results, "hostdb.pg_hba_trust", observed=["not a line"],
                          expected="no pg_hba.conf line with method trust")
    results = with_result(results, "hostdb.postgres_ssl", observed=[{"x": 1}], expected="")
    plan = plan_fixes(results)
    reasons = {item.result.check: item.reason for item in plan.unfixed}
    assert reasons["hostdb.pg_hba_trust"].startswith("the pg_hba.conf line is not known")
    assert reasons["hostdb.postgres_ssl"].startswith("the setting's place is not known")
    assert "host.password_max_age" not in reasons, "PASS_MAX_DAYS alone is still fixed"
