"""Sub-commands that live beside their area; `audit.cli` registers each module listed here."""

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from audit.model.results import RunResults
from audit.run import MessageSigning, read_results

COMMAND_MODULES: tuple[str, ...] = (
    "audit.commands.scan",
    "audit.commands.history",
    "audit.commands.profiles",
    "audit.commands.grants",
    "audit.commands.init",
    "audit.commands.schedule",
    "audit.commands.plan",
    "audit.commands.seal",
    "audit.commands.discover",
    "audit.commands.fix",
    "audit.commands.worker",
)


def fail(message: str, code: int = 2) -> NoReturn:
    """`error: MESSAGE` on stderr (plain text: it may quote the user's input), then exit."""
    Console(stderr=True).print(f"error: {message}", highlight=False, markup=False,
                               soft_wrap=True)
    raise typer.Exit(code)


def stored_results(path: Path) -> RunResults:
    """A stored results.json, or exit 2 saying why it cannot be read."""
    try:
        return read_results(path)
    except FileNotFoundError:
        fail(f"{path}: file not found")
    except OSError as error:
        fail(f"{path}: cannot read: {error.strerror or error}")
    except (ValidationError, ValueError) as error:
        fail(f"{path}: not a mis-audit results.json ({str(error).splitlines()[0]})")


# Message signing, the same three options for the dispatcher and for a site's scanner.
SignKey = Annotated[Path | None, typer.Option("--sign-key", envvar="MIS_AUDIT_SIGN_KEY", help="Sign every task-queue message with this RSA key (PEM; a passphrase in $MIS_AUDIT_SIGN_KEY_PASSWORD).")]
SignCert = Annotated[Path | None, typer.Option("--sign-cert", envvar="MIS_AUDIT_SIGN_CERT", help="The certificate of --sign-key, which the other side trusts.")]
TrustedCerts = Annotated[Path | None, typer.Option("--trusted-certs", envvar="MIS_AUDIT_TRUSTED_CERTS", help="Take only messages signed by a certificate here (a directory of PEM files, or one).")]


def message_signing(key: Path | None, certificate: Path | None,
                    trusted: Path | None) -> MessageSigning | None:
    """The signing the three options give: all three or none (exit 2 otherwise)."""
    given = {"--sign-key": key, "--sign-cert": certificate, "--trusted-certs": trusted}
    if not any(given.values()):
        return None
    if key is None or certificate is None or trusted is None:
        missing = [name for name, value in given.items() if value is None]
        fail(f"message signing needs --sign-key, --sign-cert and --trusted-certs; missing "
             f"{', '.join(missing)}")
    return MessageSigning(key.resolve(), certificate.resolve(), trusted.resolve())
