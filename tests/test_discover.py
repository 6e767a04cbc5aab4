"""`mis-audit discover` over real database servers: a draft inventory that validates, one
target per address where services answer, each service named by its own answer."""

from __future__ import annotations

import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from tests.servers.hostile import silent_listeners
from tests.servers.postgres import HARDENED_DB_HOST, WEAK_DB_HOST

if TYPE_CHECKING:  # imported for real by pytest_plugins, so that pytest rewrites their asserts
    from tests.servers.mariadb import MariaDBServer
    from tests.servers.memcached import MemcachedServer
    from tests.servers.postgres import PostgresServer
    from tests.servers.redis_server import RedisServer

pytest_plugins = ["tests.servers.postgres", "tests.servers.mariadb", "tests.servers.redis_server",
                  "tests.servers.memcached"]
pytestmark = pytest.mark.servers
SWEPT = "127.60.0.8/29"      # .10 weak, .11 hardened; the rest of the /29 answers nothing


def mis_audit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "audit.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=180, check=False)


def test_discover_writes_a_draft_that_validates(
        postgres_weak: PostgresServer, mariadb_weak: MariaDBServer, redis_weak: RedisServer,
        memcached_weak: MemcachedServer, postgres_hardened: PostgresServer,
        mariadb_hardened: MariaDBServer, redis_hardened: RedisServer,
        tmp_path: Path) -> None:
    done = mis_audit("discover", SWEPT, "-o", "draft.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    draft = (tmp_path / "draft.yaml").read_text()
    assert mis_audit("validate", "draft.yaml", cwd=tmp_path).returncode == 0, draft
    targets = {target["address"]: target for target in yaml.safe_load(draft)["targets"]}
    assert sorted(targets) == [WEAK_DB_HOST, HARDENED_DB_HOST]
    services = {address: {(s["kind"], s["port"], s.get("tls", False))
                          for s in target["services"]} for address, target in targets.items()}
    assert services[WEAK_DB_HOST] == {("postgresql", 5432, False), ("mysql", 3306, False),
                                      ("redis", 6379, False), ("memcached", 11211, False)}
    assert services[HARDENED_DB_HOST] == {("postgresql", 5432, False), ("mysql", 3306, False),
                                          ("redis", 6379, True)}
    assert {tuple(target["roles"]) for target in targets.values()} == {("db",)}
    assert "answered an SSLRequest with S" in draft and "credentials" in draft


def test_a_port_open_on_every_address_is_the_network_s_not_a_target(tmp_path: Path) -> None:
    with ExitStack() as stack:      # as a wildcard listener on loopback answers everywhere
        for last in range(4, 8):
            stack.enter_context(silent_listeners(f"127.60.0.{last}", [11211]))
        everywhere = mis_audit("discover", "127.60.0.4/30", cwd=tmp_path)
        one = mis_audit("discover", "127.60.0.4", cwd=tmp_path)
    assert everywhere.returncode == 0, everywhere.stderr
    assert yaml.safe_load(everywhere.stdout)["targets"] == []
    assert "on every address of 127.60.0.4/30 (a wildcard listener, left out): ports 11211" \
        in everywhere.stdout
    # a single address is no wildcard: the silent port is its own, unconfirmed
    [target] = yaml.safe_load(one.stdout)["targets"]
    assert target["services"] == [{"kind": "memcached", "port": 11211}]
    assert "unconfirmed" in one.stdout


def test_bad_networks_are_refused_with_exit_2(tmp_path: Path) -> None:
    for network in ("10.0.0.0/8", "not-a-network"):
        done = mis_audit("discover", network, cwd=tmp_path)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.startswith("error: ")
