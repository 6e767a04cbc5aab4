"""Debian's RabbitMQ as a task-queue broker: a node of its own in a temporary directory, on a
loopback address, with its own epmd (the Erlang port mapper) on a port of its own, so it
neither meets nor leaves behind the machine's. Stopped by PID (process group)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.servers.base import ServerProcess, require_binary, wait_for_port

RABBIT_ADDRESS = "127.77.0.30"
RABBIT_PORT = 5673
EPMD_PORT = 4370
DIST_PORT = 25673
SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def start_rabbitmq(directory: Path) -> ServerProcess:
    """A RabbitMQ node; its guest account takes loopback connections (amqp_url)."""
    server, epmd = require_binary(SERVER), require_binary("epmd")
    directory.mkdir(parents=True, exist_ok=True)
    mapper_log = directory / "epmd.log"
    with open(mapper_log, "wb") as output:
        mapper = subprocess.Popen([epmd, "-address", RABBIT_ADDRESS, "-port", str(EPMD_PORT)],
                                  stdout=output, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    wait_for_port(RABBIT_ADDRESS, EPMD_PORT, 20, mapper, mapper_log)
    address = "{" + RABBIT_ADDRESS.replace(".", ",") + "}"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(directory),
           "LANG": "C.UTF-8", "RABBITMQ_NODENAME": "mis-audit-test@localhost",
           "RABBITMQ_NODE_IP_ADDRESS": RABBIT_ADDRESS, "RABBITMQ_NODE_PORT": str(RABBIT_PORT),
           "RABBITMQ_DIST_PORT": str(DIST_PORT), "ERL_EPMD_PORT": str(EPMD_PORT),
           "ERL_EPMD_ADDRESS": RABBIT_ADDRESS,
           "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
           "RABBITMQ_LOG_BASE": str(directory / "log"), "RABBITMQ_LOGS": "-",
           "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
           "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq"),
           "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
           "RABBITMQ_PID_FILE": str(directory / "rabbitmq.pid"),
           # its own epmd, and the node's distribution port on the loopback address only
           "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
               f"-start_epmd false -kernel inet_dist_use_interface {address}"}
    log = directory / "rabbitmq.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([server], stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True, env=env)
    mapper_process = ServerProcess("epmd", mapper, RABBIT_ADDRESS, EPMD_PORT, directory,
                                   mapper_log)
    started = ServerProcess("rabbitmq", process, RABBIT_ADDRESS, RABBIT_PORT, directory, log,
                            companions=[mapper_process])
    try:
        wait_for_port(RABBIT_ADDRESS, RABBIT_PORT, 90, process, log)
    except RuntimeError:
        started.stop()
        raise
    return started


def amqp_url() -> str:
    """The node's URL for Celery (guest may connect from loopback only, as here)."""
    return f"amqp://guest:guest@{RABBIT_ADDRESS}:{RABBIT_PORT}//"
