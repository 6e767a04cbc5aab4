"""Timing one `mis-audit run` as its own process: the figure a user waits for."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def time_mis_audit_run(profile: str, inventory: Path, out: Path, *options: str,
                       environment: dict[str, str] | None = None,
                       ) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall time of `mis-audit run` (JSON only, no history, quiet) and how it ended."""
    command = [sys.executable, "-m", "audit.cli", "run", "-p", profile, "-i", str(inventory),
               "-o", str(out), "--format", "json", "--history", "off", "--quiet", *options]
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, cwd=REPOSITORY,
                              env={**os.environ, **(environment or {})}, check=False,
                              timeout=900)
    seconds = time.perf_counter() - started
    if finished.returncode not in (0, 1):     # 1 is "not ready", expected over weak servers
        print(finished.stdout[-2000:], finished.stderr[-2000:], sep="\n")
    return seconds, finished
