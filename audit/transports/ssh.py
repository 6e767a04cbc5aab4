"""The SSH transport (paramiko). Not built yet: an ssh target gives `error` results."""

from __future__ import annotations

from typing import TYPE_CHECKING

from audit.errors import FactUnavailable
from audit.vocabulary import Reason

if TYPE_CHECKING:
    from audit.facts.context import Environment
    from audit.model.inventory import Target
    from audit.transports.base import Transport


def open_ssh_transport(target: Target, environment: Environment) -> Transport:
    """Connect to the target's host over SSH."""
    raise FactUnavailable(Reason.UNREACHABLE, "the ssh transport is not available yet")
