"""Inventories: what is audited, how it is reached, and what may never be touched."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from audit.vocabulary import Role, Strict

# A DICOM AE title: up to 16 printable ASCII characters, no backslash.
AE_TITLE_PATTERN = r"^[ -\[\]-~]{1,16}$"

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=128)]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _web_url(url: str) -> str:
    """An http(s) URL with a host and a valid port; anything else is an input error."""
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0     # .port raises when out of range
    except ValueError as error:
        raise ValueError(f"{url!r} is not a valid URL: {error}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or not port_ok:
        raise ValueError(f"{url!r} is not an http:// or https:// URL with a host")
    return url


WebUrl = Annotated[str, AfterValidator(_web_url)]


class SecretRef(Strict):
    """A secret given by reference: an environment variable or a file, never the value."""

    password_env: str | None = Field(default=None, description="Name of the environment "
                                     "variable that holds the password.")
    password_file: str | None = Field(default=None, description="File holding the password "
                                      "(relative to the inventory's directory).")


class SshCredential(Strict):
    """SSH access: a key file or the ssh-agent, host keys from known_hosts."""

    type: Literal["ssh"]
    user: str = Field(min_length=1, description="The read-only audit account.")
    key_file: str | None = Field(default=None, description="Private key file; without it the "
                                 "ssh-agent's keys are tried.")
    known_hosts: str | None = Field(default=None, description="known_hosts file with the hosts' "
                                    "keys (default: ~/.ssh/known_hosts).")
    accept_new_host_keys: bool = Field(default=False, description="Trust and record a host's "
                                       "first key; a changed key is always refused.")
    sudo: bool = Field(default=False, description="Use `sudo -n` for the read-only commands and "
                       "files that need root (see `mis-audit sudoers`).")
    port: int = Field(default=22, ge=1, le=65535, description="SSH port.")


class BasicCredential(SecretRef):
    """A user name and a password reference (HTTP basic, PACS, databases)."""

    type: Literal["basic"]
    user: str = Field(min_length=1, description="User name; give exactly one of password_env "
                      "and password_file.")

    @model_validator(mode="after")
    def _one_secret(self) -> BasicCredential:
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("give exactly one of password_env or password_file")
        return self


class TokenCredential(Strict):
    """A bearer token reference (FHIR, REST APIs)."""

    type: Literal["token"]
    token_env: str | None = Field(default=None, description="Name of the environment variable "
                                  "that holds the token.")
    token_file: str | None = Field(default=None, description="File holding the token; give "
                                   "exactly one of token_env and token_file.")

    @model_validator(mode="after")
    def _one_secret(self) -> TokenCredential:
        if (self.token_env is None) == (self.token_file is None):
            raise ValueError("give exactly one of token_env or token_file")
        return self


Credential = Annotated[SshCredential | BasicCredential | TokenCredential,
                       Field(discriminator="type")]


class Scope(Strict):
    """Nothing outside the scope is ever contacted or read."""

    networks: list[Network] = Field(default_factory=list, description="Networks (CIDR) the "
                                    "audit may contact.")
    hosts: list[str] = Field(default_factory=list, description="Host names the audit may "
                             "contact.")
    paths: list[str] = Field(default_factory=list, description="Directories whose files may be "
                             "read or scanned.")


class Trust(Strict):
    """Trust anchors for certificate validation (default: the system store)."""

    ca_file: str | None = Field(default=None, description="PEM file of the CAs a \"valid "
                                "certificate\" must chain to (default: the system store).")


class Service(Strict):
    """A network service on a target, when it is not on its standard port."""

    kind: str = Field(min_length=1, description="What answers there (see the service kinds).")
    port: int = Field(ge=1, le=65535, description="TCP port.")
    tls: bool | None = Field(default=None, description="Whether the service speaks TLS (unset: "
                             "the kind's usual way).")
    credential: str | None = Field(default=None, description="Name of a `basic` credential the "
                                   "database checks log in with: a read-only audit account, "
                                   "which the authenticated review (db.*) also uses.")
    app_roles: list[str] = Field(default_factory=list, description="Database accounts the "
                                 "application uses (PostgreSQL roles, MariaDB `user` or "
                                 "`user@host`, Redis ACL users); default: every ordinary "
                                 "login account besides the audit account.")
    # A DICOM service's own (called) AE title: 1-16 printable ASCII characters, no backslash.
    ae_title: str | None = Field(default=None, pattern=AE_TITLE_PATTERN,
                                 description="A DICOM service's own (called) AE title "
                                 "(default ORTHANC).")


class LoginProbe(Strict):
    """Opt-in brute-force probe with a designated test account, bounded in attempts."""

    url: WebUrl = Field(min_length=1, description="The login form's URL.")
    username: str = Field(min_length=1, description="The designated test account (never a "
                          "real user's).")
    password_field: str = Field(default="password", description="The form's password field.")
    username_field: str = Field(default="username", description="The form's user name field.")
    max_attempts: int = Field(default=8, ge=1, le=50, description="Wrong passwords tried, at "
                              "most.")


class Target(Strict):
    """One thing audited: a host, a service endpoint, a file share."""

    name: Name = Field(description="Unique name, shown in the report.")
    address: str | None = Field(default=None, description="IP address or host name (in scope).")
    roles: list[Role] = Field(min_length=1, description="Which checks apply.")
    site: Name | None = Field(default=None, description="The site (network segment) whose "
                              "scanner reaches this target (default: the inventory's `site`).")
    transport: Literal["local", "ssh", "offline"] | None = Field(
        default=None, description="How host files are read (default: ssh with `ssh`, offline "
        "with `root`).")
    ssh: str | None = Field(default=None, description="Name of the `ssh` credential.")
    root: str | None = Field(default=None, description="Offline review: the directory holding "
                             "a copy of the host's file system.")
    paths: list[str] = Field(default_factory=list, description="Directories scanned for "
                             "personal data (in scope).")
    services: list[Service] = Field(default_factory=list, description="Services on ports the "
                                    "scan does not find by itself.")
    urls: list[WebUrl] = Field(default_factory=list, description="Web or FHIR base URLs.")
    ae_title: str | None = Field(default=None, pattern=AE_TITLE_PATTERN,
                                 description="A PACS's own (called) AE title, for the DICOM "
                                 "ports the scan finds (a `dicom` service's own wins).")
    login: LoginProbe | None = Field(default=None, description="Opt-in brute-force probe.")
    vendor_defaults: bool = Field(default=False, description="Opt-in: try the PACS vendor's "
                                  "published default logins on its HTTP API (one attempt "
                                  "each; see pacs.vendor_default_credentials).")
    data_paths: list[Annotated[str, Field(pattern=r"^/")]] = Field(
        default_factory=list, description="Host: directories holding patient data, always "
        "judged (besides those found on the host) for encryption, audit watches and "
        "permissions.")
    admin_groups: list[str] = Field(default_factory=list, description="Host: groups of "
                                    "administrators, which may hold unrestricted sudo.")

    @model_validator(mode="after")
    def _consistent_transport(self) -> Target:
        if Role.ORGANISATION in self.roles:
            raise ValueError("the 'organisation' role is implicit; do not assign it to a target")
        if self.transport == "ssh" and not self.ssh:
            raise ValueError("transport 'ssh' needs an 'ssh' credential name")
        if self.transport == "offline" and not self.root:
            raise ValueError("transport 'offline' needs a 'root' directory")
        return self

    @property
    def credential_names(self) -> set[str]:
        """The inventory credentials this target names (its SSH one, its services')."""
        return {name for name in (self.ssh, *(s.credential for s in self.services)) if name}

    @property
    def host_transport(self) -> Literal["local", "ssh", "offline"] | None:
        """How this target's files are read, if they are read at all."""
        if self.transport:
            return self.transport
        if self.ssh:
            return "ssh"
        if self.root:
            return "offline"
        return None


class EvidenceDocument(Strict):
    """A document an assessor reviews, named by the inventory."""

    file: str = Field(min_length=1, description="The document (PDF, DOCX or text), relative "
                      "to the inventory's directory.")
    date: dt.date | None = Field(default=None, description="Its date (default: the file's "
                                 "modification time).")
    issued_by: str | None = Field(default=None, description="Who wrote or signed it.")


class Inventory(Strict):
    """An inventory file as written."""

    organisation: str = Field(min_length=1, description="Who is audited (names the history "
                              "series).")
    system: str | None = Field(default=None, description="The MIS audited, with its version.")
    site: Name | None = Field(default=None, description="The site (a building, a clinic, a "
                              "network segment) of every target that names none.")
    scope: Scope = Field(default_factory=Scope, description="Nothing outside it is contacted "
                         "or read.")
    credentials: dict[Name, Credential] = Field(default_factory=dict, description="Credentials "
                                                "by name; secrets by reference only.")
    trust: Trust = Field(default_factory=Trust, description="Trust anchors.")
    targets: list[Target] = Field(default_factory=list, description="What is audited.")
    evidence: dict[Name, EvidenceDocument] = Field(default_factory=dict, description="Evidence "
                                                   "documents by key (see `mis-audit init`).")
