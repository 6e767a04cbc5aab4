"""Inventories: what is audited, how it is reached, and what may never be touched."""

from __future__ import annotations

import ipaddress
import datetime as dt
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from audit.vocabulary import Role, Strict

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

    password_env: str | None = None
    password_file: str | None = None


class SshCredential(Strict):
    """SSH access: a key file or the ssh-agent, host keys from known_hosts."""

    type: Literal["ssh"]
    user: str = Field(min_length=1)
    key_file: str | None = None
    known_hosts: str | None = None
    accept_new_host_keys: bool = False
    sudo: bool = False
    port: int = Field(default=22, ge=1, le=65535)


class BasicCredential(SecretRef):
    """A user name and a password reference (HTTP basic, PACS, databases)."""

    type: Literal["basic"]
    user: str = Field(min_length=1)

    @model_validator(mode="after")
    def _one_secret(self) -> BasicCredential:
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("give exactly one of password_env or password_file")
        return self


class TokenCredential(Strict):
    """A bearer token reference (FHIR, REST APIs)."""

    type: Literal["token"]
    token_env: str | None = None
    token_file: str | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> TokenCredential:
        if (self.token_env is None) == (self.token_file is None):
            raise ValueError("give exactly one of token_env or token_file")
        return self


Credential = Annotated[SshCredential | BasicCredential | TokenCredential,
                       Field(discriminator="type")]


class Scope(Strict):
    """Nothing outside the scope is ever contacted or read."""

    networks: list[Network] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list)


class Trust(Strict):
    """Trust anchors for certificate validation (default: the system store)."""

    ca_file: str | None = None


class Service(Strict):
    """A network service on a target, when it is not on its standard port."""

    kind: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    tls: bool | None = None
    credential: str | None = None
    # A DICOM service's own (called) AE title: 1-16 printable ASCII characters, no backslash.
    ae_title: str | None = Field(default=None, pattern=r"^[ -\[\]-~]{1,16}$")


class LoginProbe(Strict):
    """Opt-in brute-force probe with a designated test account, bounded in attempts."""

    url: WebUrl = Field(min_length=1)
    username: str = Field(min_length=1)
    password_field: str = "password"
    username_field: str = "username"
    max_attempts: int = Field(default=8, ge=1, le=50)


class Target(Strict):
    """One thing audited: a host, a service endpoint, a file share."""

    name: Name
    address: str | None = None
    roles: list[Role] = Field(min_length=1)
    transport: Literal["local", "ssh", "offline"] | None = None
    ssh: str | None = None
    root: str | None = None
    paths: list[str] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    urls: list[WebUrl] = Field(default_factory=list)
    login: LoginProbe | None = None

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

    file: str = Field(min_length=1)
    date: dt.date | None = None
    issued_by: str | None = None


class Inventory(Strict):
    """An inventory file as written."""

    organisation: str = Field(min_length=1)
    system: str | None = None
    scope: Scope = Field(default_factory=Scope)
    credentials: dict[Name, Credential] = Field(default_factory=dict)
    trust: Trust = Field(default_factory=Trust)
    targets: list[Target] = Field(default_factory=list)
    evidence: dict[Name, EvidenceDocument] = Field(default_factory=dict)
