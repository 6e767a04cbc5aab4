"""What host probes read, fetched ahead in one batch so a remote host costs few round trips.

Every host probe first calls `prefetch_host(context)`: the first call per target asks the
transport for all the files, include directories and commands the host probes declare
(their `READS`, `audit.transports.reads`) at once (over SSH: one round trip); later reads are
served from the transport's cache.
"""

from __future__ import annotations

from audit.errors import FactUnavailable, Unavailable
from audit.facts.context import TargetContext
from audit.transports.base import Transport
from audit.transports.reads import declared_reads
from audit.vocabulary import Reason


def _prefetch(context: TargetContext) -> bool:
    context.transport.prefetch(declared_reads().prefetch())
    return True


def prefetch_host(context: TargetContext) -> Transport:
    """The target's transport, after the host's usual facts were fetched in one batch."""
    context.gather(_prefetch)
    return context.transport


def optional_text(transport: Transport, path: str) -> str | None:
    """A file's text, None when it does not exist (other failures are raised)."""
    try:
        return transport.read_text(path)
    except FactUnavailable as error:
        if error.reason is Reason.NOT_FOUND:
            return None
        raise


def present_texts(transport: Transport, paths: list[str]) -> dict[str, str]:
    """The texts of those of `paths` that exist, in order (other failures are raised)."""
    found = {}
    for path, content in transport.read_files(paths).items():
        if isinstance(content, Unavailable):
            if content.reason is Reason.NOT_FOUND:
                continue
            raise content.error()
        found[path] = content.decode("utf-8", errors="replace")
    return found


def dir_files(transport: Transport, directory: str) -> list[str]:
    """The regular files directly in a directory (none when it does not exist)."""
    try:
        entries = transport.list_dir(directory)
    except FactUnavailable as error:
        if error.reason is Reason.NOT_FOUND:
            return []
        raise
    return [f"{directory}/{entry.name}" for entry in entries if not entry.is_dir]


def live_output(transport: Transport, argv: tuple[str, ...]) -> str | None:
    """An allow-listed command's output when it ran and succeeded; None when it could not."""
    try:
        output = transport.run(argv)
    except FactUnavailable:
        return None
    return output.stdout if output.exit_code == 0 and output.stdout.strip() else None


def strip_comment(line: str, marker: str = "#") -> str:
    """A config line without its comment and surrounding blanks."""
    return line.split(marker, 1)[0].strip()
