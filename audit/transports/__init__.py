"""Transports: how a host's files and read-only commands are reached."""

from __future__ import annotations

from typing import TYPE_CHECKING

from audit.errors import FactUnavailable
from audit.messages import says
from audit.transports.base import (
    CommandOutput,
    CommandRefused,
    DirEntry,
    Transport,
)
from audit.transports.filesystem import FilesystemTransport, LocalTransport
from audit.vocabulary import Reason

if TYPE_CHECKING:
    from audit.facts.context import Environment
    from audit.model.inventory import Target

__all__ = ["CommandOutput", "CommandRefused", "DirEntry",
           "FilesystemTransport", "LocalTransport", "Transport", "open_transport"]


def open_transport(target: Target, environment: Environment) -> Transport:
    """The transport that reads `target`'s host, by the inventory's choice."""
    kind = target.host_transport
    if kind == "local":
        return LocalTransport()
    if kind == "offline":
        assert target.root is not None
        return FilesystemTransport(environment.resolve(target.root))
    if kind == "ssh":
        from audit.transports.ssh import open_ssh_transport
        return open_ssh_transport(target, environment)
    raise FactUnavailable(Reason.UNSUPPORTED, says(
        "target {target} names no way to read its host (transport, ssh or root)",
        target=repr(target.name)))
