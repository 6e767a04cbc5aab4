"""Personal-data leak scanner: identifiers (IIN, SNILS, RNOKPP, phones, e-mail addresses)
found in files on a target or in downloaded content, proven by counts, masked samples and
SHA-256, never repeated.

`scan_bytes(name, data)` scans content already in memory (a download) and returns a
`FileScan`; `personal_data_files(context, bounds)` is the probe that walks a target's paths.
"""

from __future__ import annotations

from audit.facts.pii.detectors import DETECTORS, NATIONAL_IDS, NOT_PERSONAL, Detector, Kind
from audit.facts.pii.scan import FileScan, redact_name, scan_bytes, scan_stream
from audit.facts.pii.walk import PathProblem, PersonalDataFacts, personal_data_files, scan_paths

__all__ = ["DETECTORS", "NATIONAL_IDS", "NOT_PERSONAL", "Detector", "FileScan", "Kind",
           "PathProblem", "PersonalDataFacts", "personal_data_files", "redact_name",
           "scan_bytes", "scan_paths", "scan_stream"]
