"""`mis-audit worker --site NAME --broker URL`: a site's scanner. It consumes only that site's
queue, audits each target it is sent (facts gathered once, checks concurrently) and answers
with the results; credentials are the ones this machine's environment and files hold."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from audit.commands import SignCert, SignKey, TrustedCerts, fail, message_signing
from audit.errors import InputError

SITE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def worker(
    site: Annotated[str, typer.Option("--site", help="The site whose queue (site.NAME) this scanner consumes.")],
    broker: Annotated[str, typer.Option("--broker", envvar="MIS_AUDIT_BROKER", show_envvar=True, help="The broker URL: redis://, rediss:// (TLS), redis+socket://PATH, amqp://.")],
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, max=256, help="Targets audited at once.")] = 4,
    base_dir: Annotated[Path, typer.Option("--base-dir", help="Where relative key and secret files named by the tasks' credentials are.")] = Path(),
    ca_file: Annotated[Path | None, typer.Option("--ca-file", help="PEM file a valid certificate must chain to (default: the system store).")] = None,
    visibility_timeout: Annotated[float | None, typer.Option("--visibility-timeout", min=1, help="Redis: seconds before a task a dead worker held is given to another; longer than any target's audit (default: one hour).")] = None,
    sign_key: SignKey = None,
    sign_cert: SignCert = None,
    trusted_certs: TrustedCerts = None,
) -> None:
    """Run a site's scanner: audit the targets the dispatcher sends to this site."""
    from audit.queue import DEFAULT_VISIBILITY_TIMEOUT, WorkerSettings, load_signing, run_worker

    if not re.fullmatch(SITE_NAME, site):
        fail(f"--site {site!r}: letters, digits, '.', '_' and '-' only")
    signing = message_signing(sign_key, sign_cert, trusted_certs)
    if signing is not None:
        try:
            load_signing(signing)
        except InputError as error:
            fail(str(error))
    def ready() -> None:
        Console(stderr=True).print(f"mis-audit worker: consuming site.{site}", highlight=False,
                                   markup=False)

    run_worker(site, broker, concurrency, WorkerSettings(base_dir.resolve(), ca_file, signing),
               ready, visibility_timeout or DEFAULT_VISIBILITY_TIMEOUT)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the CLI."""
    app.command("worker")(worker)
