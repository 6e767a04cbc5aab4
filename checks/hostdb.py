"""Database servers as configured on the host: PostgreSQL, MySQL/MariaDB, Redis."""

from __future__ import annotations

from pydantic import Field

from audit.facts.host_databases import DatabaseConfigs, database_configs
from audit.messages import says
from audit.registry import Finding, NoParams, Params, check, failed, not_applicable, passed
from audit.vocabulary import Role

TRUE_WORDS = frozenset({"on", "true", "yes", "1"})


def switched_off(facts: DatabaseConfigs, kind: str, name: str) -> Finding | None:
    """not_applicable when the server whose configuration this is neither runs nor is
    enabled: a file left behind says nothing about the host."""
    state = facts.servers.get(kind)
    if state is None or state.switched_on:
        return None
    return not_applicable(says("{name} is configured but neither enabled nor running, so its "
                               "configuration is not judged ({state})", name=name,
                               state=state.describe()))


class HbaParams(Params):
    """pg_hba.conf methods that let a client in without a real password check."""

    forbidden_methods: list[str] = Field(default_factory=lambda: ["trust", "password"])


@check(id="hostdb.pg_hba_trust", title="PostgreSQL asks every client for credentials",
       applies_to=Role.HOST, probe=database_configs, params=HbaParams)
def pg_hba_trust(facts: DatabaseConfigs, p: HbaParams) -> Finding:
    """`trust` lets anyone who reaches the server connect as any user, `password` sends
    the password in clear text. Use `scram-sha-256` (and `hostssl`) in pg_hba.conf."""
    if not facts.postgres:
        return not_applicable(says("no PostgreSQL configuration below /etc/postgresql"))
    if off := switched_off(facts, "postgresql", "PostgreSQL"):
        return off
    offending = [f"{line.location}: {line.text}" for cluster in facts.postgres
                 for line in cluster.hba if line.method in p.forbidden_methods]
    expected = f"no pg_hba.conf line with method {' or '.join(p.forbidden_methods)}"
    clusters = [cluster.directory for cluster in facts.postgres]
    if offending:
        return failed(says("{count} pg_hba.conf line(s) without a password check",
                           count=len(offending)), observed=offending, expected=expected,
                      clusters=clusters)
    return passed(says("every pg_hba.conf line checks credentials"), observed=[],
                  expected=expected, clusters=clusters)


@check(id="hostdb.postgres_ssl", title="PostgreSQL offers TLS", applies_to=Role.HOST,
       probe=database_configs, params=NoParams)
def postgres_ssl(facts: DatabaseConfigs, p: NoParams) -> Finding:
    """Without `ssl = on`, patient data and passwords cross the network in clear text.
    Set `ssl = on` with a certificate in postgresql.conf and use `hostssl` lines."""
    if not facts.postgres:
        return not_applicable(says("no PostgreSQL configuration below /etc/postgresql"))
    if stopped := switched_off(facts, "postgresql", "PostgreSQL"):
        return stopped
    off = [f"{cluster.directory}: ssl = {cluster.ssl.value if cluster.ssl else 'off (default)'}"
           + (f" ({cluster.ssl.location})" if cluster.ssl else "")
           for cluster in facts.postgres
           if cluster.ssl is None or cluster.ssl.value.lower() not in TRUE_WORDS]
    if off:
        return failed(says("ssl is off in {count} cluster(s)", count=len(off)), observed=off,
                      expected="ssl = on")
    return passed(says("ssl = on in {count} cluster(s)", count=len(facts.postgres)),
                  observed=[], expected="ssl = on")


@check(id="hostdb.mysql_secure_transport", title="MySQL/MariaDB refuses unencrypted clients",
       applies_to=Role.HOST, probe=database_configs, params=NoParams)
def mysql_secure_transport(facts: DatabaseConfigs, p: NoParams) -> Finding:
    """Set `require_secure_transport = ON` in the [mysqld] (or [mariadb]) section so that no
    client can read records over an unencrypted connection."""
    if not facts.mysql_files:
        return not_applicable(says("no MySQL/MariaDB configuration on this host"))
    if off := switched_off(facts, "mysql", "MySQL/MariaDB"):
        return off
    setting = facts.mysql_secure_transport
    value = setting.value if setting else "OFF (default)"
    if setting is None or setting.value.lower() not in TRUE_WORDS:
        summary = says("require_secure_transport is {value}", value=setting.value) if setting \
            else says("require_secure_transport is OFF (default)")
        return failed(summary, observed=value, expected="ON",
                      location=setting.location if setting else None, files=facts.mysql_files)
    return passed(says("require_secure_transport is ON"), observed=value, expected="ON",
                  location=setting.location)


@check(id="hostdb.redis_auth", title="Redis requires a password", applies_to=Role.HOST,
       probe=database_configs, params=NoParams)
def redis_auth(facts: DatabaseConfigs, p: NoParams) -> Finding:
    """A Redis without a password gives every client that reaches it the cached sessions and
    records, and can be turned into a foothold. Set `requirepass` (or ACL users with
    passwords) and keep `protected-mode yes`."""
    if facts.redis_file is None:
        return not_applicable(says("no Redis configuration on this host"))
    if off := switched_off(facts, "redis", "Redis"):
        return off
    protected = facts.redis_protected_mode.value if facts.redis_protected_mode else "yes (default)"
    observed = {"password_set": facts.redis_password_set, "protected_mode": protected,
                "bind": facts.redis_bind.value if facts.redis_bind else None}
    if not facts.redis_password_set:
        summary = says("Redis has no password and protected-mode is off") \
            if protected.lower() == "no" else says("Redis has no password")
        return failed(summary, observed=observed, expected="requirepass set",
                      file=facts.redis_file)
    return passed(says("Redis requires a password"), observed=observed,
                  expected="requirepass set",
                  file=facts.redis_file)
