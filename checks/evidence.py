"""Documents an assessor reviews: penetration tests, plans, training records."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from audit.facts.evidence import EvidenceFacts, evidence_document, normalise_text
from audit.messages import says
from audit.registry import Finding, Params, check, failed, manual, passed
from audit.vocabulary import Role

Term = Annotated[str, Field(min_length=1, max_length=200)]
# A section is found when any one of its terms occurs: at least one term each.
Terms = Annotated[list[Term], Field(min_length=1)]


def _sections_as_mapping(value: Any) -> Any:
    """`[isolation, forensics]` is short for `{isolation: [isolation], forensics: [forensics]}`;
    a single term may be given as a string instead of a list."""
    if isinstance(value, list):
        return {item: [item] for item in value} if all(isinstance(i, str) for i in value) \
            else value
    if isinstance(value, dict):
        return {name: [terms] if isinstance(terms, str) else terms
                for name, terms in value.items()}
    return value


class DocumentParams(Params):
    """Which inventory evidence entry to look at, how old it may be, and which sections it
    must contain: each section is found when any one of its terms occurs in the text
    (case-insensitive; give terms in every language the documents are written in)."""

    document: str = Field(min_length=1)
    max_age_days: int = Field(default=365, ge=1)
    sections: Annotated[dict[Term, Terms], BeforeValidator(_sections_as_mapping)] = \
        Field(default_factory=dict)


def sections_found(text: str, sections: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """The names of the sections whose terms occur in the (normalised) text, and the rest."""
    found = [name for name, terms in sections.items()
             if any(normalise_text(term) in text for term in terms)]
    return found, [name for name in sections if name not in found]


@check(id="evidence.document", title="A current evidence document is on file",
       applies_to=Role.ORGANISATION, probe=evidence_document, params=DocumentParams)
def document(facts: EvidenceFacts, p: DocumentParams) -> Finding:
    """Organisational measures are proven by documents: the inventory names the file and
    its date; the file must exist, be recent and, where the control names sections, contain
    them. Its SHA-256 and size are recorded so that the report pins the exact document the
    assessor reviewed. A document that is missing is `manual`, never `pass`."""
    expected = f"{p.document}, at most {p.max_age_days} days old" + (
        f", with sections {', '.join(p.sections)}" if p.sections else "")
    if facts.file is None:
        return manual(says("no '{document}' document named in the inventory",
                           document=p.document), expected=expected)
    if not facts.exists:
        return manual(says("'{document}' document not found: {file}", document=p.document,
                           file=facts.file), expected=expected, file=facts.file)
    record: dict[str, Any] = {
        "file": facts.file, "sha256": facts.sha256, "size": facts.size,
        "date": facts.dated.isoformat() if facts.dated else None,
        "date_source": facts.date_source, "issued_by": facts.issued_by}
    age = facts.age_days
    if age is not None and age < 0:
        return manual(says("'{document}' is dated after the audit ({days} days ahead): "
                           "check the date", document=p.document, days=-age),
                      observed=record["date"], expected=expected, **record)
    if age is not None and age > p.max_age_days:
        return failed(says("'{document}' is {days} days old", document=p.document, days=age),
                      observed=f"{age} days", expected=expected, **record)
    if not p.sections:
        return passed(says("'{document}' on file, {days} days old", document=p.document,
                           days=str(age)), observed=f"{age} days", expected=expected, **record)
    return _judge_sections(facts, p, expected, record)


def _judge_sections(facts: EvidenceFacts, p: DocumentParams, expected: str,
                    record: dict[str, Any]) -> Finding:
    if facts.text is None:
        return manual(says("'{document}' is on file but its text could not be read ({why}): "
                           "an assessor must confirm its sections", document=p.document,
                           why=facts.text_unavailable_message or str(facts.text_unavailable)),
                      expected=expected, **record)
    found, missing = sections_found(facts.text, p.sections)
    record = {**record, "sections_found": found, "sections_missing": missing}
    if missing:
        return failed(says("'{document}' does not cover: {sections}", document=p.document,
                           sections=", ".join(missing)),
                      observed=f"{facts.age_days} days, sections found: "
                               f"{', '.join(found) or 'none'}",
                      expected=expected, **record)
    return passed(says("'{document}' on file, {days} days old, covers {sections}",
                       document=p.document, days=str(facts.age_days), sections=", ".join(found)),
                  observed=f"{facts.age_days} days",
                  expected=expected, **record)
