"""The words every part of mis-audit shares: statuses, severities, roles, languages."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict


class Strict(BaseModel):
    """Base of every model: unknown keys are errors, instances never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Status(StrEnum):
    """Outcome of one check on one target."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"
    MANUAL = "manual"
    WAIVED = "waived"


class Severity(StrEnum):
    """How much a control weighs; the default weights are in `DEFAULT_WEIGHTS`."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


DEFAULT_WEIGHTS: dict[Severity, int] = {
    Severity.CRITICAL: 10,
    Severity.HIGH: 5,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
}


class Role(StrEnum):
    """What a target is; a check applies to targets of the roles it names."""

    HOST = "host"
    WEB = "web"
    DB = "db"
    PACS = "pacs"
    HL7 = "hl7"
    FHIR = "fhir"
    FILESHARE = "fileshare"
    # The organisation itself: documents, procedures. Every run has exactly one such target.
    ORGANISATION = "organisation"


class Lang(StrEnum):
    """Languages of fixed report text and of profile texts."""

    EN = "en"
    RU = "ru"
    KK = "kk"


class Verdict(StrEnum):
    """The system-wide conclusion."""

    READY = "ready"
    NOT_READY = "not_ready"


class Reason(StrEnum):
    """Why a fact could not be gathered: the engine turns it into an `error` result."""

    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    REFUSED = "refused"
    # The transport cannot observe this at all (live state of an offline image):
    # the result is `not_applicable`, not `error`.
    UNSUPPORTED = "unsupported"
    CHECK_FAILED = "check_failed"
    INTERRUPTED = "interrupted"


def _text_from_plain_string(value: Any) -> Any:
    return {"en": value} if isinstance(value, str) else value


def _require_english(value: dict[Lang, str]) -> dict[Lang, str]:
    if Lang.EN not in value:
        raise ValueError("an English text ('en') is required")
    return value


# A text given either as a plain (English) string or as {en: ..., ru: ..., kk: ...}.
LocalizedText = Annotated[
    dict[Lang, str],
    BeforeValidator(_text_from_plain_string, json_schema_input_type=str | dict[Lang, str]),
    AfterValidator(_require_english),
]


def localized(text: dict[Lang, str] | None, lang: Lang) -> str:
    """The text in `lang`, falling back to English."""
    if not text:
        return ""
    return text.get(lang) or text.get(Lang.EN, "")
