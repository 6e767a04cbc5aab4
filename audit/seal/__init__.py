"""A sealed run: a signed manifest of every file a finished run wrote and read.

`mis-audit seal` adds the manifest (an in-toto Statement v1), its detached CMS signature and a
one-page seal statement to a run directory, and changes no file that was there; `mis-audit
verify` checks the signature, the signer's chain at the signing time and every digest.
"""

from __future__ import annotations

MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.json.p7s"
STATEMENT_HTML = "seal.html"
STATEMENT_TEXT = "seal.txt"
SEAL_FILES = frozenset({MANIFEST_FILE, SIGNATURE_FILE, STATEMENT_HTML, STATEMENT_TEXT})


class SealError(Exception):
    """Sealing or verifying cannot go on: one line for the user, no traceback."""
