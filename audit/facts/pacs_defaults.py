"""The PACS vendor's published default logins, tried on its HTTP API only where the inventory
opts in (`vendor_defaults: true` on the target).

One attempt per published default, on `/system` (metadata about the server, no patient
data), after an anonymous request that must be refused for the answer to mean anything.
Nothing else is ever tried: this is not a password-guessing probe.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from audit.facts.context import TargetContext
from audit.facts.dicom import MAX_HTTP_BYTES, pacs_http_base
from audit.facts.net import access_probe_client

# (vendor, user, password) as the vendors document them: Orthanc's sample configuration
# ships `"orthanc": "orthanc"` in RegisteredUsers.
PUBLISHED_DEFAULTS = (("Orthanc", "orthanc", "orthanc"),)
PROBED_PATH = "/system"


@dataclass(frozen=True)
class DefaultLoginAttempt:
    """One published default and the status the API answered it with."""

    vendor: str
    user: str
    status: int


@dataclass(frozen=True)
class VendorDefaultsFacts:
    """The anonymous status of the probed path, and each default's (None: not opted in)."""

    base_url: str
    anonymous_status: int | None
    attempts: tuple[DefaultLoginAttempt, ...] | None


def vendor_default_logins(context: TargetContext) -> VendorDefaultsFacts:
    """Try each published default once, where the target opts in."""
    base = pacs_http_base(context)
    if not context.target.vendor_defaults:
        return VendorDefaultsFacts(base, None, None)
    with access_probe_client(context) as client:
        anonymous = client.get(base + PROBED_PATH, MAX_HTTP_BYTES, accept="application/json")
        attempts = tuple(
            DefaultLoginAttempt(vendor, user, client.get(
                base + PROBED_PATH, MAX_HTTP_BYTES, accept="application/json",
                headers={"Authorization": _basic(user, password)}).status)
            for vendor, user, password in PUBLISHED_DEFAULTS)
    return VendorDefaultsFacts(base, anonymous.status, attempts)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
