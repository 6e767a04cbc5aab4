"""Host configuration: remote access, passwords, services exposed by the host itself."""

from __future__ import annotations

from pydantic import Field

from audit.facts.host import ListeningSocket, LoginDefs, SshdConfig, listening_sockets, login_defs, sshd_config
from audit.registry import Finding, Params, check, failed, passed
from audit.vocabulary import Role


class RootLoginParams(Params):
    """Which PermitRootLogin values are acceptable."""

    allowed: list[str] = Field(default_factory=lambda: ["no"])


def _overridden_in_match(config: SshdConfig, keyword: str, allowed: list[str]) -> list[str]:
    return [f"{option.location} (Match {block.criteria}): {option.value}"
            for block, option in config.overrides(keyword) if option.value.lower() not in allowed]


@check(id="host.ssh_root_login", title="SSH does not accept root logins", applies_to=Role.HOST,
       probe=sshd_config, params=RootLoginParams)
def ssh_root_login(config: SshdConfig, p: RootLoginParams) -> Finding:
    """Direct root logins leave no trace of who administered the host and give an attacker
    who guesses or steals one credential the whole machine. Set `PermitRootLogin no` and
    administer through named accounts with sudo."""
    value = (config.value("PermitRootLogin") or "prohibit-password").lower()
    allowed = [item.lower() for item in p.allowed]
    where = config.location("PermitRootLogin") or config.source
    exceptions = _overridden_in_match(config, "PermitRootLogin", allowed)
    if value not in allowed or exceptions:
        return failed(f"PermitRootLogin is {value}" + (" in a Match block" if exceptions else ""),
                      observed=value, expected=allowed, location=where, match_blocks=exceptions)
    return passed(f"PermitRootLogin is {value}", observed=value, expected=allowed, location=where)


@check(id="host.ssh_password_auth", title="SSH does not accept passwords alone",
       applies_to=Role.HOST, probe=sshd_config)
def ssh_password_auth(config: SshdConfig, p: Params) -> Finding:
    """Passwords can be guessed or phished; keys (with a second factor) cannot be guessed.
    Set `PasswordAuthentication no` (and `KbdInteractiveAuthentication` only for an OTP)."""
    value = (config.value("PasswordAuthentication") or "yes").lower()
    where = config.location("PasswordAuthentication") or config.source
    exceptions = _overridden_in_match(config, "PasswordAuthentication", ["no"])
    if value != "no" or exceptions:
        return failed(f"PasswordAuthentication is {value}" + (" in a Match block" if exceptions else ""),
                      observed=value, expected="no", location=where, match_blocks=exceptions)
    return passed("PasswordAuthentication is no", observed=value, expected="no", location=where)


class PasswordAgeParams(Params):
    """The longest a password may live."""

    max_days: int = Field(default=90, ge=1, le=99999)


@check(id="host.password_max_age", title="Passwords expire", applies_to=Role.HOST,
       probe=login_defs, params=PasswordAgeParams)
def password_max_age(defs: LoginDefs, p: PasswordAgeParams) -> Finding:
    """A password that never expires stays valid long after it has leaked. Set
    `PASS_MAX_DAYS` in /etc/login.defs to the policy's maximum (and `chage -M` for
    existing accounts)."""
    days = defs.integer("PASS_MAX_DAYS")
    where = defs.locations.get("PASS_MAX_DAYS", "/etc/login.defs")
    if days is None or days > p.max_days:
        return failed(f"PASS_MAX_DAYS is {days if days is not None else 'not set'}",
                      observed=days, expected=f"<= {p.max_days}", location=where)
    return passed(f"PASS_MAX_DAYS is {days}", observed=days, expected=f"<= {p.max_days}",
                  location=where)


DATABASE_PORTS: dict[int, str] = {
    1433: "mssql", 1521: "oracle", 3306: "mysql", 5432: "postgresql", 5984: "couchdb",
    6379: "redis", 8123: "clickhouse", 9042: "cassandra", 9200: "elasticsearch",
    11211: "memcached", 27017: "mongodb",
}


class ListeningDatabaseParams(Params):
    """Database and cache ports that must listen on loopback only."""

    ports: dict[int, str] = Field(default_factory=lambda: dict(DATABASE_PORTS))


@check(id="host.db_listening", title="Databases and caches listen on loopback only",
       applies_to=Role.HOST, probe=listening_sockets, params=ListeningDatabaseParams)
def db_listening(sockets: list[ListeningSocket], p: ListeningDatabaseParams) -> Finding:
    """A database listening on every interface is one firewall mistake away from the
    internet, where anyone can read and edit records. Bind databases and caches to
    127.0.0.1 or a private interface reached only by the application servers."""
    exposed = [{"port": s.port, "address": s.address, "service": p.ports[s.port]}
               for s in sockets if s.port in p.ports and not s.loopback_only]
    services = sorted({item["service"] for item in exposed})
    if exposed:
        return failed(f"{', '.join(services)} listening beyond loopback",
                      observed=exposed, expected="loopback only", exposed=exposed)
    local = sorted({p.ports[s.port] for s in sockets if s.port in p.ports})
    summary = ("no database port is listening" if not local
               else f"{', '.join(local)} listening on loopback only")
    return passed(summary, observed=[], expected="loopback only", loopback_services=local)
