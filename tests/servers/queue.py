"""A task-queue broker and per-site scanners for the many-sites tests.

The broker is Debian's redis-server on a unix socket in a temporary directory: filesystem
sockets cross network namespaces, TCP on loopback does not. Each site runs in a network
namespace of its own (`unshare --net`, its own loopback only): a Redis of the site's own on
SITE_DB_ADDRESS (the same address in every site, each reaching only its own) and the site's
`mis-audit worker`s, joined to the broker through the socket. Stopped by PID (process group).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.servers.base import ServerProcess, require_binary
from tests.servers.pki import CertFiles

SITE_DB_ADDRESS = "127.77.0.10"
SITE_DB_PORT = 6379
TLS_BROKER_ADDRESS = "127.77.0.20"
TLS_BROKER_PORT = 6380
PROGRAM = Path(sys.executable).with_name("mis-audit")
# Accepts connections and holds them without a word: a hung server. Says each on stdout.
SILENT_LISTENER = """
import socket, sys, time
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
held = []
while True:
    held.append(server.accept()[0])
    print("silent listener: accepted", flush=True)
"""

# Until the address accepts a connection (ten seconds at most).
WAIT_FOR_PORT = """
import socket, sys, time
for _ in range(200):
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
        break
    except OSError:
        time.sleep(0.05)
"""


@dataclass
class Broker:
    """A running broker and the URL workers and the dispatcher use."""

    process: subprocess.Popen[bytes]
    socket: Path
    tls_url: str | None = None          # a broker that also listens on TLS

    @property
    def url(self) -> str:
        """The Celery broker URL."""
        return f"redis+socket://{self.socket}"

    def client(self) -> redis.Redis:
        """A Redis client on the broker's socket."""
        return redis.Redis(unix_socket_path=str(self.socket))

    def queued(self, queue: str) -> list[dict[str, object]]:
        """The messages waiting in a queue, their bodies decoded (kombu base64-encodes them)."""
        messages = []
        for raw in self.client().lrange(queue, 0, -1):
            message = json.loads(raw)
            message["body"] = base64.b64decode(message["body"]).decode()
            messages.append(message)
        return messages

    def everything(self) -> str:
        """Every value the broker holds, as text, message bodies decoded too."""
        client, parts = self.client(), []
        for key in client.scan_iter():
            kind = client.type(key).decode()
            values = (client.lrange(key, 0, -1) if kind == "list" else
                      list(client.hgetall(key).values()) if kind == "hash" else
                      [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
                      if kind == "zset" else list(client.smembers(key)) if kind == "set"
                      else [client.get(key) or b""])
            for value in values:
                text = value.decode(errors="replace")
                parts.append(text)
                parts += [base64.b64decode(body).decode(errors="replace")
                          for body in re.findall(r'"body": "([A-Za-z0-9+/=]+)"', text)]
        return "\n".join(parts)

    def unacknowledged(self) -> int:
        """Messages a worker has taken and not yet acknowledged (kombu's `unacked` hash)."""
        return int(self.client().hlen("unacked"))

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_broker(directory: Path, tls: CertFiles | None = None) -> Broker:
    """redis-server on directory/broker.sock, no TCP port, nothing saved; with `tls`, also
    on TLS_BROKER_ADDRESS with that certificate (clients are not asked for one)."""
    binary = require_binary("redis-server")
    directory.mkdir(parents=True, exist_ok=True)
    socket = directory / "broker.sock"
    listen = [] if tls is None else [
        "--bind", TLS_BROKER_ADDRESS, "--tls-port", str(TLS_BROKER_PORT), "--tls-cert-file",
        str(tls.cert), "--tls-key-file", str(tls.key), "--tls-auth-clients", "no"]
    with open(directory / "broker.log", "wb") as output:
        process = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700",
             "--dir", str(directory), "--save", "", "--appendonly", "no", *listen],
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 20
    while not socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"broker did not start: {(directory / 'broker.log').read_text()}")
        time.sleep(0.05)
    return Broker(process, socket, None if tls is None else
                  f"rediss://{TLS_BROKER_ADDRESS}:{TLS_BROKER_PORT}/0")


@dataclass
class Site:
    """A site: its namespace's own Redis and the workers started for it."""

    name: str
    directory: Path
    broker_url: str                     # the broker's URL as this site's workers use it
    redis_password: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    silent_port: int | None = None      # a port on SITE_DB_ADDRESS that accepts and never answers
    worker_args: list[str] = field(default_factory=list)
    own_network: bool = True            # False: on this machine's network, with no Redis
    workers: list[ServerProcess] = field(default_factory=list)
    _count: int = 0

    def start_worker(self, visibility_timeout: float = 3600.0) -> ServerProcess:
        """One more worker of this site, in a namespace of its own with the site's Redis (a
        namespace per worker: killing one leaves the others and their Redis)."""
        worker = [str(PROGRAM), "worker", "--site", self.name, "--broker", self.broker_url,
                  "--concurrency", "4", "--base-dir", str(self.directory),
                  "--visibility-timeout", f"{visibility_timeout:g}", *self.worker_args]
        server = self._in_site(worker)
        self.workers.append(server)
        self._wait_until_consuming(server)
        return server

    def run(self, *arguments: str, timeout: float = 180) -> subprocess.CompletedProcess[bytes]:
        """`mis-audit ARGUMENTS` inside the site, as a scanner there on its own schedule
        would run it: once its Redis answers, to the end."""
        started = self._in_site([str(PROGRAM), *arguments], wait_for_redis=True)
        try:
            started.process.wait(timeout=timeout)
        finally:
            started.stop()              # and the site's Redis, which outlives the run
        return subprocess.CompletedProcess(started.process.args, started.process.returncode,
                                           started.log.read_bytes())

    def _in_site(self, command: list[str], wait_for_redis: bool = False) -> ServerProcess:
        """COMMAND in a namespace of its own with the site's Redis (a namespace per worker:
        killing one leaves the others and their Redis); without `own_network`, COMMAND
        alone, on this machine's network."""
        self._count += 1
        name = f"{self.name}-{self._count}"
        redis = [require_binary("redis-server"), "--bind", SITE_DB_ADDRESS, "--port",
                 str(SITE_DB_PORT), "--protected-mode", "no", "--save", "", "--dir",
                 str(self.directory)] + (["--requirepass", self.redis_password]
                                         if self.redis_password else [])
        silent = "" if self.silent_port is None else shlex.join([
            sys.executable, "-c", SILENT_LISTENER, SITE_DB_ADDRESS, str(self.silent_port)]) + " & "
        ready = shlex.join([sys.executable, "-c", WAIT_FOR_PORT, SITE_DB_ADDRESS,
                            str(SITE_DB_PORT)]) + " && " if wait_for_redis else ""
        script = (f"ip link set lo up && {shlex.join(redis)} > {self.directory}/{name}-redis.log "
                  f"2>&1 & {silent}{ready}exec {shlex.join(command)}")
        log = self.directory / f"{name}.log"
        with open(log, "wb") as output:
            process = subprocess.Popen(["unshare", "--net", "sh", "-c", script]
                                       if self.own_network else command, stdout=output,
                                       stderr=subprocess.STDOUT, start_new_session=True,
                                       env={**os.environ, **self.env})
        return ServerProcess(name, process, SITE_DB_ADDRESS, SITE_DB_PORT, self.directory, log)

    def _wait_until_consuming(self, server: ServerProcess) -> None:
        deadline = time.monotonic() + 60
        while f"consuming site.{self.name}".encode() not in server.log.read_bytes():
            if server.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {server.name} did not start:\n"
                                   f"{server.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Every worker of the site (and so its Redis)."""
        for worker in self.workers:
            worker.stop()
