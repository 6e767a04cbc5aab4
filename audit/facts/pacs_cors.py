"""Cross-origin rules of the PACS's HTTP API: what a web page on another site may read.

Each path is asked once with an `Origin` no PACS can know; the answer's
Access-Control-Allow-Origin and -Credentials headers are kept, never its body.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.facts.context import TargetContext
from audit.facts.dicom import DICOMWEB_STUDIES, MAX_HTTP_BYTES, pacs_http_base
from audit.facts.net import access_probe_client

PROBE_ORIGIN = "https://mis-audit-probe.invalid"
CORS_PATHS = ("/system", DICOMWEB_STUDIES)


@dataclass(frozen=True)
class CorsAnswer:
    """What one path allows a foreign origin."""

    path: str
    status: int
    allow_origin: str | None
    allow_credentials: bool

    @property
    def any_origin(self) -> bool:
        """Whether any site may read it: `*`, or the probe's own origin echoed back."""
        return self.allow_origin in ("*", PROBE_ORIGIN)


@dataclass(frozen=True)
class PacsCorsFacts:
    """The PACS HTTP base and each path's cross-origin answer."""

    base_url: str
    answers: tuple[CorsAnswer, ...]


def pacs_cors(context: TargetContext) -> PacsCorsFacts:
    """Ask each API path as a page of a foreign site would."""
    base = pacs_http_base(context)
    with access_probe_client(context) as client:
        answers = []
        for path in CORS_PATHS:
            answer = client.get(base + path, MAX_HTTP_BYTES, accept="application/json",
                                headers={"Origin": PROBE_ORIGIN})
            origin = answer.headers.get("access-control-allow-origin")
            credentials = answer.headers.get("access-control-allow-credentials", "")
            answers.append(CorsAnswer(path, answer.status, origin[:200] if origin else None,
                                      credentials.strip().lower() == "true"))
    return PacsCorsFacts(base, tuple(answers))
