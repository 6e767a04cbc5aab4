"""An HL7 v2 MLLP listener for the tests: plain (weak) or behind TLS (hardened).

Run as a module (`python -m tests.servers.mllp ADDRESS PORT [--cert C --key K]`) by
`start_mllp`, so the fixture can stop it by PID. Like a real interface engine, it stays
silent until a complete MLLP frame (0x0B ... 0x1C 0x0D) arrives, then answers an ACK.
"""

from __future__ import annotations

import argparse
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from audit.model.inventory import Target
from audit.model.results import Result
from audit.registry import default_registry
from tests.servers.base import ServerProcess, start_server
from tests.servers.hostile import silent_listener  # noqa: F401 (bench/pacs_checks.py)
from tests.servers.nginx import run_check
from tests.servers.pki import CertFiles, make_ca, make_server_cert

REPOSITORY = Path(__file__).resolve().parents[2]

START_BLOCK, END_BLOCK = b"\x0b", b"\x1c\x0d"
MAX_FRAME = 1024 * 1024
ACK = (START_BLOCK + b"MSH|^~\\&|TEST-MLLP|TEST|||20260101000000||ACK|1|P|2.5\r"
       b"MSA|AA|1\r" + END_BLOCK)


class MllpHandler(socketserver.BaseRequestHandler):
    """Reads frames and acknowledges each; anything unframed is ignored, never answered."""

    def handle(self) -> None:
        """Serve one connection until the peer leaves."""
        connection = self.request
        context: ssl.SSLContext | None = getattr(self.server, "tls_context", None)
        connection.settimeout(30)
        try:
            if context is not None:
                connection = context.wrap_socket(connection, server_side=True)
            buffer = b""
            while len(buffer) < MAX_FRAME:
                chunk = connection.recv(4096)
                if not chunk:
                    return
                buffer += chunk
                while START_BLOCK in buffer and END_BLOCK in buffer:
                    buffer = buffer[buffer.index(END_BLOCK) + len(END_BLOCK):]
                    connection.sendall(ACK)
        except (OSError, ssl.SSLError):
            return


class MllpServer(socketserver.ThreadingTCPServer):
    """A threaded MLLP listener, optionally behind TLS."""

    daemon_threads = True
    allow_reuse_address = True
    tls_context: ssl.SSLContext | None = None


def start_mllp(name: str, address: str, port: int, workdir: Path,
               cert: Path | None = None, key: Path | None = None) -> ServerProcess:
    """Start the listener as its own process; TLS when a certificate is given."""
    argv = [sys.executable, "-m", "tests.servers.mllp", address, str(port)]
    if cert is not None and key is not None:
        argv += ["--cert", str(cert), "--key", str(key)]
    workdir.mkdir(parents=True, exist_ok=True)
    return start_server(name, argv, address, port, workdir,
                        env={"PYTHONPATH": str(REPOSITORY)})


def listener_arguments(description: str | None) -> argparse.ArgumentParser:
    """The command line every stand-in listener takes: address, port, optional TLS files."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("address")
    parser.add_argument("port", type=int)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    return parser


def server_tls_context(arguments: argparse.Namespace) -> ssl.SSLContext | None:
    """A server TLS context from --cert/--key, None for a plain listener."""
    if not arguments.cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(arguments.cert, arguments.key)
    return context


@contextmanager
def running(**starters: Callable[[], ServerProcess]) -> Iterator[dict[str, ServerProcess]]:
    """Test servers started in order, by name; all stopped by PID, together, whatever happens."""
    servers: dict[str, ServerProcess] = {}
    try:
        for name, start in starters.items():
            servers[name] = start()
        yield servers
    finally:
        # Some servers take seconds to stop (Orthanc): stop them side by side.
        stoppers = [threading.Thread(target=server.stop) for server in servers.values()]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()


def ca_signed_cert(directory: Path, stem: str, address: str) -> CertFiles:
    """A server certificate for `address` from a fresh test CA."""
    _, ca_cert, ca_key = make_ca(directory)
    return make_server_cert(directory, stem, [address], ca=(ca_cert, ca_key))


def run_check_within(check_id: str, target: Target, timeout: float) -> Result:
    """Run a check and assert it took no longer than its timeout."""
    default_registry()  # loaded once per process: not part of what the check costs
    started = time.monotonic()
    result = run_check(check_id, target, timeout=timeout)
    assert time.monotonic() - started < timeout, f"{check_id} outlived its {timeout} s timeout"
    return result


def main() -> None:
    """Serve until killed."""
    arguments = listener_arguments(__doc__).parse_args()
    server = MllpServer((arguments.address, arguments.port), MllpHandler)
    server.tls_context = server_tls_context(arguments)
    server.serve_forever()


if __name__ == "__main__":
    main()
