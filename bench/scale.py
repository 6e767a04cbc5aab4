"""N loopback web targets from one asyncio process, audited by one `mis-audit run`.

    python bench/scale.py 100 [250 1000 ...]

Each target (127.80.x.y) redirects 80 -> 443, speaks TLS 1.2+ with its own CA-signed certificate,
sends HSTS and the browser protections, has a login page and answers 404 to the export
paths. The run uses the web and TLS checks of kz-mis-baseline and gdpr-health on every
target; printed: wall time, CPU time (mis-audit and its children, such as nmap), peak RSS of
the mis-audit process, and the CPU time of the targets' servers, which share the machine's
cores with it.
"""

from __future__ import annotations

import asyncio
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from tests.servers.pki import make_ca, make_server_cert

CHECKS = ("web.https_redirect", "web.hsts", "web.version_disclosure", "web.public_exports",
          "web.security_headers", "tls.protocol_versions", "tls.certificate")
HEADERS = ("Strict-Transport-Security: max-age=31536000\r\nX-Content-Type-Options: nosniff\r\n"
           "X-Frame-Options: DENY\r\n")
LOGIN = b"<html><form method=post action=/login><input name=username></form></html>"


def address(index: int) -> str:
    """The loopback address of target `index` (127.80.0.1 onwards)."""
    return f"127.80.{index // 250}.{index % 250 + 1}"


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  secure: bool) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode("ascii", "replace") if b" " in head else "/"
            host = writer.get_extra_info("sockname")[0]
            if not secure:
                response = (f"HTTP/1.1 301 Moved Permanently\r\nLocation: https://{host}{path}"
                            "\r\nContent-Length: 0\r\n\r\n").encode()
            elif path in ("/", "/login"):
                response = (f"HTTP/1.1 200 OK\r\n{HEADERS}Content-Type: text/html\r\n"
                            f"Content-Length: {len(LOGIN)}\r\n\r\n").encode() + LOGIN
            else:
                response = (f"HTTP/1.1 404 Not Found\r\n{HEADERS}Content-Length: 0\r\n\r\n"
                            ).encode()
            writer.write(response)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def _serve(contexts: list[ssl.SSLContext], ready: threading.Event,
                 stop: asyncio.Event) -> None:
    servers = []
    for index, context in enumerate(contexts):
        host = address(index)
        servers.append(await asyncio.start_server(
            lambda r, w: _answer(r, w, False), host, 80, backlog=256))
        servers.append(await asyncio.start_server(
            lambda r, w: _answer(r, w, True), host, 443, ssl=context, backlog=256))
    ready.set()
    await stop.wait()
    for server in servers:
        server.close()


def start_targets(count: int, work: Path) -> tuple[threading.Thread, asyncio.AbstractEventLoop,
                                                   asyncio.Event, Path]:
    """Serve `count` targets from a thread's event loop; returns what stops it and the CA.
    Each target has its own certificate naming its address, as real hosts do (one shared
    certificate naming every address would make each target's evidence grow with N)."""
    ca, ca_cert, ca_key = make_ca(work / "pki")
    contexts = []
    for index in range(count):
        cert = make_server_cert(work / "pki", f"target-{index}", [address(index)],
                                (ca_cert, ca_key))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert.cert, cert.key)
        contexts.append(context)
    loop = asyncio.new_event_loop()
    ready, stop = threading.Event(), asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete,
                              args=(_serve(contexts, ready, stop),), daemon=True)
    thread.start()
    if not ready.wait(120):
        raise RuntimeError("the targets did not start")
    return thread, loop, stop, ca.cert


def write_inputs(count: int, work: Path, ca_file: Path) -> tuple[Path, Path]:
    """The profile (the web and TLS checks) and the inventory of `count` targets."""
    profile = work / "profile.yaml"
    profile.write_text("id: scale\ntitle: Scale\nversion: '1'\ncontrols:\n" + "".join(
        f"  - {{id: s{i}, title: {check}, severity: high, checks: [{{check: {check}}}]}}\n"
        for i, check in enumerate(CHECKS)))
    inventory = work / "inventory.yaml"
    inventory.write_text(
        f"organisation: Scale clinic\nscope: {{networks: [127.80.0.0/16]}}\n"
        f"trust: {{ca_file: {ca_file}}}\ntargets:\n" + "".join(
            f"  - {{name: web-{i:04d}, address: {address(i)}, roles: [web], "
            f"urls: ['https://{address(i)}/']}}\n" for i in range(count)))
    return profile, inventory


def measure(count: int, jobs: int) -> None:
    """One run over `count` targets; prints its figures."""
    with tempfile.TemporaryDirectory(prefix="mis-audit-scale-") as directory:
        work = Path(directory)
        thread, loop, stop, ca_file = start_targets(count, work)
        try:
            profile, inventory = write_inputs(count, work, ca_file)
            command = [sys.executable, "-m", "audit.cli", "run", "-p", str(profile), "-i",
                       str(inventory), "-o", str(work / "out"), "--format", "json",
                       "--history", "off", "--quiet", "--jobs", str(jobs), "--timeout", "30"]
            started = time.perf_counter()
            serving = time.process_time()
            process = subprocess.Popen(command, cwd=REPOSITORY, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
            servers = time.process_time() - serving
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            stderr = process.stderr.read() if process.stderr else ""
            code = os.waitstatus_to_exitcode(status)
            cpu = usage.ru_utime + usage.ru_stime
            print(f"{count:5d} targets, --jobs {jobs}: wall {wall:6.1f} s, CPU {cpu:6.1f} s "
                  f"({cpu / count * 1000:5.0f} ms per target), peak RSS "
                  f"{usage.ru_maxrss / 1024:6.0f} MiB, exit {code}"
                  f" (all children so far: CPU {children.ru_utime + children.ru_stime:.1f} s;"
                  f" the targets' servers: CPU {servers:.1f} s)")
            if code not in (0, 1):
                print(stderr[-2000:])
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(30)


if __name__ == "__main__":
    for argument in sys.argv[1:] or ["100"]:
        measure(int(argument), jobs=int(os.environ.get("MIS_AUDIT_BENCH_JOBS", "32")))
