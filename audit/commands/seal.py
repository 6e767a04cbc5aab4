"""`mis-audit seal` signs a finished run; `mis-audit verify` checks a sealed one.

seal: 0 sealed, 2 invalid input (run, certificate, key, password, changed evidence), 4 a file
could not be written. verify: 0 verified, 1 the signature, the chain or a digest does not hold
(the first file that differs is named), 2 invalid usage.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from audit.model.results import RunResults
from audit.outputs import OutputError, write_atomically
from audit.run import RESULTS_FILE, read_results
from audit.seal import (
    MANIFEST_FILE,
    SEAL_FILES,
    SIGNATURE_FILE,
    STATEMENT_HTML,
    STATEMENT_TEXT,
    SealError,
)
from audit.seal.cms import verify_signature
from audit.seal.manifest import build_manifest, check_subjects, run_subjects, unsealed_outputs
from audit.seal.signer import (
    PasswordSource,
    SigningIdentity,
    check_usable,
    load_identity,
    sign_detached,
)
from audit.seal.statement import SealFacts, statement_html, statement_text

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_WRITTEN = 0, 1, 2, 4
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def _fail(message: str, code: int) -> NoReturn:
    err.print(message, markup=False)
    raise typer.Exit(code)


def _password_source(env_name: str | None, what: Path) -> PasswordSource:
    def password() -> bytes:
        if env_name is not None:
            value = os.environ.get(env_name)
            if value is None:
                raise SealError(f"environment variable {env_name} is not set")
            return value.encode("utf-8")
        if not sys.stdin.isatty():
            raise SealError(f"{what} needs a password: give --password-env NAME")
        return getpass.getpass(f"password for {what}: ").encode("utf-8")
    return password


def _finished_run(run_dir: Path) -> RunResults:
    path = run_dir / RESULTS_FILE
    if not path.is_file():
        raise SealError(f"{run_dir}: no {RESULTS_FILE}: not a run directory")
    try:
        results = read_results(path)
    except (OSError, ValidationError, ValueError) as error:
        raise SealError(f"{path}: not a mis-audit results.json "
                        f"({str(error).splitlines()[0]})") from None
    if not results.complete:
        raise SealError(f"{run_dir}: the run is incomplete; finish it with mis-audit run "
                        f"--resume {run_dir} before sealing")
    present = sorted(name for name in SEAL_FILES if (run_dir / name).exists())
    if present:
        raise SealError(f"{run_dir}: already sealed ({', '.join(present)} present); a seal "
                        "never replaces another")
    return results


def _ask(value: str | None, prompt: str, option: str, default: str | None = None) -> str:
    if value:
        return value
    if sys.stdin.isatty():
        return str(typer.prompt(prompt, default=default))
    if default:
        return default
    raise SealError(f"give {option} (no terminal to ask on)")


def _check_before_writing(manifest: bytes, signature: bytes, ca: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="mis-audit-seal-") as scratch:
        (Path(scratch) / MANIFEST_FILE).write_bytes(manifest)
        (Path(scratch) / SIGNATURE_FILE).write_bytes(signature)
        verify_signature(Path(scratch) / SIGNATURE_FILE, Path(scratch) / MANIFEST_FILE, ca)


def _write_seal(run_dir: Path, files: dict[str, str | bytes]) -> None:
    written: list[Path] = []
    try:
        for name, content in files.items():
            written.append(write_atomically(run_dir / name, content))
    except OutputError:
        for path in written:     # a half seal would read as "already sealed": take it back
            path.unlink(missing_ok=True)
        raise


def seal_run(run_dir: Path, identity: SigningIdentity, assessor: str, licence: str,
             ca: Path | None = None) -> SealFacts:
    """Write the manifest, its signature and the statement into `run_dir`."""
    results = _finished_run(run_dir)
    sealed_at = datetime.now(UTC).replace(microsecond=0)
    check_usable(identity, sealed_at)
    subjects = run_subjects(run_dir, results)
    manifest = build_manifest(results, subjects, sealed_at,
                              {"name": assessor, "licence": licence}, identity.summary())
    signature = sign_detached(identity, manifest)
    if ca is not None:
        _check_before_writing(manifest, signature, ca)
    summary = identity.summary()
    facts = SealFacts(results.organisation, results.system, results.started_at.isoformat(),
                      results.finished_at.isoformat(), assessor, licence, summary["subject"],
                      summary["issuer"], sealed_at.isoformat(), len(subjects), MANIFEST_FILE,
                      SIGNATURE_FILE, hashlib.sha256(manifest).hexdigest())
    _write_seal(run_dir, {MANIFEST_FILE: manifest, SIGNATURE_FILE: signature,
                          STATEMENT_TEXT: statement_text(facts),
                          STATEMENT_HTML: statement_html(facts)})
    return facts


def _verify(run_dir: Path, ca: Path | None) -> list[str]:
    """The lines saying what was verified; SealError on the first thing that does not hold."""
    manifest, signature = run_dir / MANIFEST_FILE, run_dir / SIGNATURE_FILE
    for path in (manifest, signature):
        if not path.is_file():
            raise SealError(f"not sealed: {path} is missing")
    verified = verify_signature(signature, manifest, ca)
    statement: dict[str, Any] = json.loads(manifest.read_bytes())
    predicate = statement.get("predicate", {})
    count, mismatch = check_subjects(run_dir, statement)
    if mismatch is not None:
        raise SealError(f"{mismatch.name} {mismatch.reason}")
    signer = verified.signer
    assessor = predicate.get("assessor", {})
    lines = [(f"signature: valid, by {signer.subject.rfc4514_string()} (issued by "
             f"{signer.issuer.rfc4514_string()}), made {verified.signed_at.isoformat()}; the "
             f"chain to {ca or 'the system trust store'} held then"),
             f"assessor: {assessor.get('name')}, licence {assessor.get('licence')}",
             (f"files: all {count} digests match (manifest SHA-256 "
             f"{hashlib.sha256(manifest.read_bytes()).hexdigest()})")]
    if signer.not_valid_after_utc < datetime.now(UTC):
        lines.append(f"warning: the signer's certificate expired on "
                     f"{signer.not_valid_after_utc.isoformat()}, after the run was sealed: "
                     "the seal stays valid")
    lines += [f"warning: {name} was added after sealing and is not covered by the seal"
              for name in unsealed_outputs(run_dir, statement)]
    return lines


def register(app: typer.Typer) -> None:
    """Add `seal` and `verify` to the CLI."""

    @app.command("seal")
    def seal(
        run_dir: Annotated[Path, typer.Argument(help="A finished run directory.")],
        cert: Annotated[Path, typer.Option("--cert", help="The assessor's PKCS#12 file, or PEM certificate (with --key).")],
        key: Annotated[Path | None, typer.Option("--key", help="PEM private key of a PEM --cert.")] = None,
        password_env: Annotated[str | None, typer.Option("--password-env", help="Environment variable holding the PKCS#12 or key password (default: ask).")] = None,
        assessor: Annotated[str | None, typer.Option("--assessor", help="The assessor's name (default: ask, else the certificate's name).")] = None,
        licence: Annotated[str | None, typer.Option("--licence", help="The assessor's licence number (default: ask).")] = None,
        ca: Annotated[Path | None, typer.Option("--ca", help="Check the certificate chains to these trust anchors before sealing.")] = None,
    ) -> None:
        """Sign a finished run: add a manifest, its CMS signature and a seal statement."""
        if not run_dir.is_dir():
            _fail(f"error: {run_dir}: no such run directory", EXIT_USAGE)
        try:
            identity = load_identity(cert, key, _password_source(password_env, key or cert))
            name = _ask(assessor, "Assessor's name", "--assessor", identity.common_name)
            number = _ask(licence, "Licence number", "--licence")
            facts = seal_run(run_dir, identity, name, number, ca)
        except SealError as error:
            _fail(f"error: {error}", EXIT_USAGE)
        except OutputError as error:
            _fail(f"error: {error}", EXIT_NOT_WRITTEN)
        out.print(f"sealed {run_dir}: {facts.files} files, by {facts.assessor} (licence "
                  f"{facts.licence}); manifest SHA-256 {facts.manifest_sha256}", markup=False)

    @app.command("verify")
    def verify(
        run_dir: Annotated[Path, typer.Argument(help="A sealed run directory.")],
        ca: Annotated[Path | None, typer.Option("--ca", help="Trust anchors (PEM); default: the system store.")] = None,
    ) -> None:
        """Check a sealed run: signature, certificate chain at the signing time, every digest."""
        if not run_dir.is_dir():
            _fail(f"error: {run_dir}: no such run directory", EXIT_USAGE)
        if ca is not None and not ca.is_file():
            _fail(f"error: {ca}: no such file", EXIT_USAGE)
        try:
            lines = _verify(run_dir, ca)
        except (SealError, ValueError) as error:
            _fail(f"FAILED: {error}", EXIT_FAILED)
        for line in lines:
            (err if line.startswith("warning:") else out).print(line, markup=False)
        out.print(f"verified: {run_dir}", markup=False)
