"""Redis ACL users as a read-only audit user sees them.

The minimal ACL for the audit user: `+acl|whoami +acl|list +acl|dryrun +info +config|get`,
no keys and no channels (`resetchannels -@all` first). `ACL LIST` names the users and their
rules (password hashes are dropped here, never kept); `ACL DRYRUN` asks the server whether a
user may run a command, without running it, so renamed, disabled and category-denied
commands are judged exactly as the server would. With less, what `ACL WHOAMI` shows is
reported and the rest is marked not visible.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from audit.facts.databases import redis_client, untrusted_text
from audit.facts.db_review import (
    Answer,
    Question,
    ReviewTarget,
    ServiceReview,
    answer,
    application_accounts,
    reviewer,
)
from audit.messages import Text, says

# Commands an application must not be able to run: wipe the data, reconfigure the server
# (CONFIG SET dir + dbfilename writes files), or debug it.
DANGEROUS = (("FLUSHALL",), ("FLUSHDB",), ("CONFIG", "SET", "dir", "/tmp"),
             ("DEBUG", "SLEEP", "0"))
SUBCOMMANDED = ("CONFIG", "ACL")
DRYRUN_DENIED = says("ACL DRYRUN is not permitted to the audit user (+acl|dryrun)")
# What a read-only audit user must not be able to run.
WRITES = (("SET", "mis-audit:probe", "x"), ("DEL", "mis-audit:probe"), ("FLUSHALL",),
          ("CONFIG", "SET", "dir", "/tmp"), ("ACL", "SETUSER", "mis-audit-probe"))


@dataclass(frozen=True)
class AclUser:
    """One user of ACL LIST, without its password hashes."""

    name: str
    enabled: bool
    nopass: bool
    rules: str

    @classmethod
    def parse(cls, line: str) -> AclUser:
        """`user NAME on|off [nopass] [#hash ...] rules...`."""
        words = line.split()
        name = words[1] if len(words) > 1 else ""
        kept = [w for w in words[2:] if not w.startswith(("#", ">", "<", "!"))]
        return cls(name, "on" in kept, "nopass" in kept,
                   " ".join(w for w in kept if w not in ("on", "off", "nopass")))


def _client(target: ReviewTarget, tls: bool) -> redis.Redis:
    return redis_client(target.address, target.port, target.timeout, tls, target.login)


def _connected(target: ReviewTarget) -> tuple[redis.Redis, str]:
    """A logged-in client and who it is (ACL WHOAMI, the one command the audit user surely
    has): over TLS when the service says so, else in clear, then over TLS when the clear
    connection is closed on us (a TLS-only port)."""
    if not target.tls:
        client = _client(target, False)
        try:
            return client, _text(client.acl_whoami())
        except redis.ConnectionError:
            client.close()
            if target.tls is False:
                raise
    client = _client(target, True)
    return client, _text(client.acl_whoami())


def _label(command: tuple[str, ...]) -> str:
    """A command as the evidence names it: with its subcommand where it has one."""
    return " ".join(command[:2] if command[0] in SUBCOMMANDED else command[:1])


def _permitted(client: redis.Redis, user: str, command: tuple[str, ...]) -> bool | None:
    """Whether `user` may run `command` (ACL DRYRUN); None when the audit user may not ask."""
    try:
        return _text(client.acl_dryrun(user, *command)) == "OK"
    except redis.ResponseError as error:
        if "NOPERM" in str(error) or "no permissions" in str(error):
            return None
        return False                     # unknown command: renamed or disabled


@reviewer("redis")
def review_redis(target: ReviewTarget) -> ServiceReview:
    """The audit user's review: who it is, the users, and what each may run."""
    client, me = _connected(target)
    me = untrusted_text(me)
    try:
        users = _users(client)
        own = [_permitted(client, me, command) for command in WRITES]
        named = target.app_accounts
        inferred = [u.name for u in users or [] if u.enabled and u.name != me]
        apps = application_accounts(named, inferred)
        dangerous = {app: [_label(command) for command in DANGEROUS
                           if _permitted(client, app, command)] for app in apps}
        dryrun_denied = any(allowed is None for allowed in own)
    finally:
        client.close()
    unlisted = Answer(unseen_text=says("ACL LIST is not permitted to the audit user "
                                       "(+acl|list)"))
    answers = {
        Question.OWN_PRIVILEGES: _own_privileges(me, own),
        Question.LOGINS: _logins(users) if users is not None else unlisted,
        # Named application users need no listing: DRYRUN asks about them by name.
        Question.ADMIN_PRIVILEGES: _admin_privileges(dangerous, named, dryrun_denied)
        if users is not None or named else unlisted,
    }
    return ServiceReview("redis", target.port, me, answers)


def _users(client: redis.Redis) -> list[AclUser] | None:
    try:
        lines = client.acl_list()
    except redis.ResponseError:
        return None
    return [AclUser.parse(_text(line)) for line in lines]


def _text(value: object) -> str:
    """A reply as text (the client is synchronous: never an awaitable here)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _own_privileges(me: str, own: list[bool | None]) -> Answer:
    if any(allowed is None for allowed in own):
        return Answer(unseen_text=DRYRUN_DENIED)
    return answer([says("the audit user {user} may run {command}", user=me,
                        command=_label(command))
                   for command, allowed in zip(WRITES, own) if allowed],
                  [f"write and administration commands for {me}"])


def _admin_privileges(dangerous: dict[str, list[str]], named: tuple[str, ...],
                      dryrun_denied: bool) -> Answer:
    if dryrun_denied:
        return Answer(unseen_text=DRYRUN_DENIED)
    source = "named in the inventory" if named else "every enabled user but the audit user"
    return answer([says("application user {user} may run {command}", user=user,
                        command=command)
                   for user, commands in dangerous.items() for command in commands],
                  [f"application users ({source}): {', '.join(dangerous) or 'none'}"])


def _logins(users: list[AclUser]) -> Answer:
    findings: list[Text] = [says("user {user} is enabled without a password (nopass)",
                                 user=u.name) for u in users if u.enabled and u.nopass]
    return answer(findings, [f"user {u.name}: {'on' if u.enabled else 'off'}, "
                             f"{u.rules}" for u in users])
