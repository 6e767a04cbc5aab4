"""JUnit XML: one test case per control and target, parsed back with ElementTree."""

from __future__ import annotations

from xml.etree import ElementTree

from test_report_samples import sample_results

from audit.vocabulary import Lang
from reports.junit import render_junit


def _parsed() -> ElementTree.Element:
    return ElementTree.fromstring(render_junit(sample_results(), Lang.EN))


def test_one_testcase_per_control_and_target() -> None:
    root = _parsed()
    cases = {(case.get("classname"), case.get("name")) for case in root.iter("testcase")}
    expected = {(r.control, r.target) for r in sample_results().results}
    assert cases == expected
    assert len(list(root.iter("testcase"))) == len(expected)
    assert [suite.get("name") for suite in root.iter("testsuite")] == \
        ["NET-01", "AUTH-01", "AUTH-02", "ORG-01", "WEB-01"]


def test_failures_errors_and_skips_are_counted() -> None:
    root = _parsed()
    outcome = {}
    for case in root.iter("testcase"):
        children = [child.tag for child in case if child.tag != "system-out"]
        outcome[(case.get("classname"), case.get("name"))] = children[0] if children else "pass"
    assert outcome == {
        ("NET-01", "db-main"): "pass",           # waived
        ("NET-01", "web-front"): "pass",
        ("AUTH-01", "web-front"): "failure",
        ("AUTH-01", "db-main"): "error",
        ("AUTH-02", "web-front"): "error",
        ("ORG-01", "organisation"): "skipped",   # manual: not decided, not passed
        ("WEB-01", "web-front"): "skipped",      # not applicable
    }
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) \
        == ("7", "1", "2", "2")
    failure = next(root.iter("failure"))
    assert failure.get("message") == "sshd accepts passwords without a second factor"
    assert "observed" in (failure.text or "") and "PasswordAuthentication" in (failure.text or "")
    waived = next(case for case in root.iter("testcase") if case.get("name") == "db-main"
                  and case.get("classname") == "NET-01")
    assert "waived: Legacy link until migration" in (waived.findtext("system-out") or "")
