"""A tiny login form backend for the nginx fixtures: run as a script, stdlib only.

    python login_backend.py --bind 127.61.0.10 --port 8081 [--lockout-after N] [--delay S]

Every POST to /login is a failed login (no account has a password here). Without
`--lockout-after` it answers 401 forever, the weakness the brute-force check looks for; with it,
the Nth failure of a user name and those after it get HTTP 429. `--delay` makes every failure
sleep S seconds longer than the previous one (the "growing delay" defence).
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs

FORM = (b"<!doctype html><title>Clinic login</title><form method=post action=/login>"
        b"<input name=username><input name=password type=password><button>Sign in</button>"
        b"</form>")
MAX_BODY = 4096


class LoginHandler(BaseHTTPRequestHandler):
    """GET shows the form; POST counts a failure and answers 401 or, once locked out, 429."""

    lockout_after: ClassVar[int | None] = None
    delay_step: ClassVar[float] = 0.0
    failures: ClassVar[Counter[str]] = Counter()
    lock: ClassVar[threading.Lock] = threading.Lock()

    def do_GET(self) -> None:
        """The login form."""
        self._answer(200, FORM, "text/html")

    def do_POST(self) -> None:
        """A failed login attempt."""
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
        form = parse_qs(self.rfile.read(length).decode("utf-8", errors="replace"))
        username = (form.get("username") or [""])[0]
        with self.lock:
            self.failures[username] += 1
            count = self.failures[username]
        if self.lockout_after is not None and count >= self.lockout_after:
            self._answer(429, b"Too many failed attempts: try again later", "text/plain")
            return
        time.sleep(self.delay_step * (count - 1))
        self._answer(401, b"Invalid user name or password", "text/plain")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the fixture's log is for errors."""


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lockout-after", type=int, default=None)
    parser.add_argument("--delay", type=float, default=0.0)
    arguments = parser.parse_args()
    LoginHandler.lockout_after = arguments.lockout_after
    LoginHandler.delay_step = arguments.delay
    ThreadingHTTPServer((arguments.bind, arguments.port), LoginHandler).serve_forever()


if __name__ == "__main__":
    main()
