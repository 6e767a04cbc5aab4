"""The one-page seal statement (text and HTML): who sealed which run, when, and the digest of
the manifest a reader checks with `mis-audit verify` or openssl."""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment, StrictUndefined

from reports.text import clean

_HTML = Environment(autoescape=True, undefined=StrictUndefined, finalize=lambda v: clean(str(v)))
_PAGE = _HTML.from_string("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Seal of the audit of {{ s.organisation }}</title>
<style>body{font-family:sans-serif;max-width:44em;margin:2em auto;line-height:1.4}
th{text-align:left;padding-right:1em;vertical-align:top}code{word-break:break-all}</style>
</head><body>
<h1>Seal statement</h1>
<p>The run of mis-audit described below was sealed by the assessor named here. Its manifest
lists every file the run wrote and every evidence file it read, with their SHA-256 digests,
and is signed with the assessor's certificate.</p>
<table>
{% for label, value in rows %}<tr><th>{{ label }}</th><td>{{ value }}</td></tr>
{% endfor %}<tr><th>Manifest SHA-256</th><td><code>{{ s.manifest_sha256 }}</code></td></tr>
</table>
<h2>How to check it</h2>
<p><code>mis-audit verify RUN_DIR --ca CA.pem</code>, or without mis-audit:
<code>openssl cms -verify -binary -inform DER -in {{ s.signature_file }} -content
{{ s.manifest_file }} -CAfile CA.pem -purpose any -out /dev/null</code>, then each digest of
the manifest with <code>sha256sum -c</code>.</p>
</body></html>
""")


@dataclass(frozen=True)
class SealFacts:
    """What the statement says."""

    organisation: str
    system: str | None
    run_started: str
    run_finished: str
    assessor: str
    licence: str
    certificate_subject: str
    certificate_issuer: str
    sealed_at: str
    files: int
    manifest_file: str
    signature_file: str
    manifest_sha256: str

    def rows(self) -> list[tuple[str, str]]:
        """Label and value of each line, in reading order."""
        return [("Organisation", self.organisation), ("System", self.system or "-"),
                ("Run", f"{self.run_started} to {self.run_finished}"),
                ("Assessor", self.assessor), ("Licence number", self.licence),
                ("Certificate", self.certificate_subject),
                ("Issued by", self.certificate_issuer), ("Sealed at", self.sealed_at),
                ("Files sealed", str(self.files)), ("Manifest", self.manifest_file),
                ("Signature", f"{self.signature_file} (detached CMS, DER)")]


def statement_text(facts: SealFacts) -> str:
    """The plain-text statement."""
    width = max(len(label) for label, _ in [*facts.rows(), ("Manifest SHA-256", "")]) + 2
    lines = ["SEAL STATEMENT", ""]
    lines += [f"{label + ':':<{width}}{clean(value)}" for label, value in facts.rows()]
    lines += [f"{'Manifest SHA-256:':<{width}}{facts.manifest_sha256}", "",
              "Check: mis-audit verify RUN_DIR --ca CA.pem",
              (f"   or: openssl cms -verify -binary -inform DER -in {facts.signature_file} "
              f"-content {facts.manifest_file} -CAfile CA.pem -purpose any -out /dev/null"),
              "       then sha256sum -c over the manifest's digests (see the README)."]
    return "\n".join(lines) + "\n"


def statement_html(facts: SealFacts) -> str:
    """The HTML statement: one page, no script, no external asset."""
    return _PAGE.render(s=facts, rows=facts.rows())
