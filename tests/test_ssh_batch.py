"""The SSH batch script run by this machine's own sh (no sshd needed): statuses, framing, and
hostile names that must stay data."""

from __future__ import annotations

import subprocess
from pathlib import Path

from audit.errors import Unavailable
from audit.model.inventory import SshCredential
from audit.transports.base import Prefetch
from audit.transports.ssh import SshTransport
from audit.transports.ssh_batch import batch_script
from audit.vocabulary import Reason


def fetched(request: Prefetch) -> SshTransport:
    """A transport whose cache holds what the script printed for `request`, run locally."""
    script = batch_script(request, sudo_files=False, sudo_commands=set(), max_bytes=1 << 20,
                          command_timeout=5)
    output = subprocess.run(["/bin/sh", "-c", script], capture_output=True, check=True,
                            timeout=30).stdout
    transport = SshTransport("local-sh", SshCredential(type="ssh", user="nobody"), None,
                             Path("/nonexistent"), 5.0)
    transport._store(output, request)
    return transport


def test_files_dirs_globs_and_commands_come_back_framed(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a b.conf").write_bytes(b"line\nF fake record\n\x00binary")
    (tmp_path / "conf.d" / "new\nline").write_text("odd name")
    request = Prefetch(files=(str(tmp_path / "missing"), str(tmp_path / "conf.d")),
                       config_dirs=(str(tmp_path / "conf.d"),),
                       globs=(f"{tmp_path}/conf.d/*.conf",),
                       commands=(("sshd", "-T"), ("no-such-command-here",)))
    transport = fetched(request)
    conf = transport.read_file(f"{tmp_path}/conf.d/a b.conf")
    assert conf == b"line\nF fake record\n\x00binary"
    assert sorted(e.name for e in transport.list_dir(str(tmp_path / "conf.d"))) == \
        ["a b.conf", "new\nline"]
    assert transport.glob(f"{tmp_path}/conf.d/*.conf") == [f"{tmp_path}/conf.d/a b.conf"]
    missing = transport.read_files([str(tmp_path / "missing")])[str(tmp_path / "missing")]
    assert isinstance(missing, Unavailable) and missing.reason is Reason.NOT_FOUND
    directory = transport.read_files([str(tmp_path / "conf.d")])[str(tmp_path / "conf.d")]
    assert isinstance(directory, Unavailable)
    assert transport._commands[("no-such-command-here",)].reason is Reason.NOT_FOUND  # type: ignore[union-attr]


def test_a_hostile_include_pattern_stays_a_pattern(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    pattern = f"{tmp_path}/x'; touch {marker}; echo '*$(touch {marker})`touch {marker}`"
    transport = fetched(Prefetch(globs=(pattern,)))
    assert transport.glob(pattern) == []
    assert not marker.exists()
