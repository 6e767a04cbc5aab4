"""Small host file systems (weak and hardened) for offline-transport tests."""

from __future__ import annotations

import os
from pathlib import Path

WEAK = {
    "etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n"
                           "PasswordAuthentication yes\n",
    "etc/ssh/sshd_config.d/10-root.conf": "PermitRootLogin yes\n",
    "etc/login.defs": "MAIL_DIR /var/mail\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS 0\n",
}

HARDENED = {
    # the real file lives elsewhere, reached by an absolute symlink inside the image
    "usr/share/ssh/sshd_config": "Include sshd_config.d/*.conf\n"
                                 "PermitRootLogin no\nPasswordAuthentication no\n"
                                 "Match Group auditors\n    PermitRootLogin no\n",
    "etc/ssh/sshd_config.d/50-cloud.conf": "# nothing here\n",
    "etc/login.defs": "# policy\nPASS_MAX_DAYS   60\n",
}


def make_host(root: Path, files: dict[str, str]) -> Path:
    """Write a host tree under `root`."""
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if "usr/share/ssh/sshd_config" in files:
        os.symlink("/usr/share/ssh/sshd_config", root / "etc/ssh/sshd_config")
    return root
