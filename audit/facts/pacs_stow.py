"""Whether DICOMweb takes uploads (STOW-RS) from an anonymous caller, asked without storing
anything: the upload request's multipart body holds no part, so there is no dataset to store,
and the answer says whether the PACS took the request for processing or asked who calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from audit.facts.context import TargetContext
from audit.facts.dicom import DICOMWEB_STUDIES, MAX_HTTP_BYTES, pacs_http_base
from audit.facts.net import access_probe_client

BOUNDARY = "mis-audit-probe"
# A multipart/related body that closes before its first part: an upload of nothing.
EMPTY_UPLOAD = f"--{BOUNDARY}--\r\n".encode()
UPLOAD_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


@dataclass(frozen=True)
class PacsStowFacts:
    """The PACS HTTP base, the path asked, and the status it answered."""

    base_url: str
    path: str
    status: int


def pacs_stow(context: TargetContext) -> PacsStowFacts:
    """POST an upload with no dataset to the DICOMweb studies path, without credentials."""
    base = pacs_http_base(context)
    with access_probe_client(context) as client:
        answer = client.request("POST", base + DICOMWEB_STUDIES, MAX_HTTP_BYTES,
                                accept="application/dicom+json",
                                headers={"Content-Type": UPLOAD_TYPE}, content=EMPTY_UPLOAD)
    return PacsStowFacts(base, DICOMWEB_STUDIES, answer.status)
