"""JUnit XML: one test case per control and target, for CI dashboards."""

from __future__ import annotations

from collections import Counter
from xml.etree import ElementTree

from audit.model.results import Result, RunResults
from audit.scoring import control_status
from audit.vocabulary import Lang, Status, localized
from reports.text import as_text, attestation_note, clean

# A test case is what CI counts: each status of the worst result becomes one JUnit outcome.
_OUTCOME: dict[Status, str | None] = {
    Status.PASS: None,
    Status.WAIVED: None,
    Status.FAIL: "failure",
    Status.ERROR: "error",
    Status.MANUAL: "skipped",
    Status.NOT_APPLICABLE: "skipped",
}


def _group(results: RunResults) -> dict[tuple[str, str], list[Result]]:
    grouped: dict[tuple[str, str], list[Result]] = {}
    for result in results.results:
        grouped.setdefault((result.control, result.target), []).append(result)
    return grouped


def _body(results: list[Result]) -> str:
    lines = []
    for result in results:
        lines.append(f"[{result.status.value}] {result.check}: {clean(result.summary)}")
        if result.evidence.observed is not None:
            lines.append(f"  observed: {as_text(result.evidence.observed)}")
        if result.evidence.expected is not None:
            lines.append(f"  expected: {as_text(result.evidence.expected)}")
        if result.error:
            lines.append(f"  {clean(result.error.type, 100)}: {clean(result.error.message)}")
        if result.waiver:
            lines.append(f"  waived: {clean(result.waiver.reason)} (approved by "
                         f"{clean(result.waiver.approved_by, 200)}, expires "
                         f"{result.waiver.expires.isoformat()})")
        if result.attestation:
            lines.append(f"  {attestation_note(result)}")
    return "\n".join(lines)


def _testcase(suite: ElementTree.Element, control: str, target: str,
              results: list[Result]) -> Status:
    # The worst result decides; a case whose checks are all not_applicable is skipped.
    status = control_status([result.status for result in results])
    seconds = sum(result.duration_ms for result in results) / 1000
    case = ElementTree.SubElement(suite, "testcase", classname=control,
                                  name=clean(target, 200), time=f"{seconds:.3f}")
    outcome = _OUTCOME[status]
    decisive = [result for result in results if result.status is status] or results
    if outcome is not None:
        element = ElementTree.SubElement(case, outcome, message=clean(decisive[0].summary, 500),
                                         type=status.value)
        element.text = _body(results)
    else:
        ElementTree.SubElement(case, "system-out").text = _body(results)
    return status


def render_junit(results: RunResults, lang: Lang = Lang.EN) -> str:
    """The run as JUnit XML (one test suite per control)."""
    root = ElementTree.Element("testsuites", name=f"{results.tool.name} "
                               f"{clean(results.organisation, 200)}")
    titles = {control.id: localized(control.title, lang) for control in results.controls}
    grouped = _group(results)
    totals: Counter[str] = Counter()
    for control in dict.fromkeys(control for control, _ in grouped):
        suite = ElementTree.SubElement(root, "testsuite", name=control,
                                       timestamp=results.started_at.strftime("%Y-%m-%dT%H:%M:%S"))
        ElementTree.SubElement(ElementTree.SubElement(suite, "properties"), "property",
                               name="title", value=clean(titles.get(control, ""), 500))
        counts: Counter[str] = Counter()
        for (case_control, target), case_results in grouped.items():
            if case_control == control:
                status = _testcase(suite, control, target, case_results)
                counts["tests"] += 1
                counts[_OUTCOME[status] or "passed"] += 1
        _set_counts(suite, counts)
        totals.update(counts)
    _set_counts(root, totals)
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + \
        ElementTree.tostring(root, encoding="unicode") + "\n"


def _set_counts(element: ElementTree.Element, counts: Counter[str]) -> None:
    for name, key in (("tests", "tests"), ("failures", "failure"), ("errors", "error"),
                      ("skipped", "skipped")):
        element.set(name, str(counts[key]))
