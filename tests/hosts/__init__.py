"""The weak and hardened host trees (weak/, hardened/) and what each must give, check by check."""

from __future__ import annotations

from audit.vocabulary import Status

HOST_CHECKS = (
    "host.ssh_root_login", "host.ssh_password_auth", "host.ssh_mfa", "host.ssh_idle_timeout",
    "host.password_max_age",
    "host.role_separation", "hostsys.disk_encryption", "hostsys.audit_rules",
    "hostsys.firewall", "hostsys.data_permissions", "hostsys.time_sync",
    "hostdb.pg_hba_trust", "hostdb.postgres_ssl", "hostdb.mysql_secure_transport",
    "hostdb.redis_auth",
)
# Live-only facts: not_applicable on an offline tree; over ssh, the test host's answers.
LIVE_CHECKS = ("host.db_listening", "hostsys.security_updates")
# Over ssh, the test host's own answer (a stand-in apt-get, tests/hosts/commands/).
LIVE_EXPECTED = {
    "weak": {"hostsys.security_updates": Status.FAIL},
    "hardened": {"hostsys.security_updates": Status.PASS},
}
# Listening sockets come from /proc/net/tcp, which a test host shares with this machine.
MACHINE_LIVE_CHECKS = ("host.db_listening",)

EXPECTED = {
    "weak": {check: Status.FAIL for check in HOST_CHECKS},
    "hardened": {check: Status.PASS for check in HOST_CHECKS},
}


def profile_text(checks: tuple[str, ...] = HOST_CHECKS + LIVE_CHECKS) -> str:
    """A profile with one control per check."""
    controls = "".join(f"  - id: c{index}\n    title: {check}\n    severity: high\n"
                       f"    checks: [{{check: {check}}}]\n"
                       for index, check in enumerate(checks))
    return f"id: host-test\ntitle: Host test\nversion: '1'\ncontrols:\n{controls}"
