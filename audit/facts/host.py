"""Host facts read through a transport: sshd configuration, login.defs, listening sockets."""

from __future__ import annotations

import fnmatch
import ipaddress
import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from audit.errors import FactUnavailable, Unavailable
from audit.facts.context import TargetContext
from audit.facts.host_batch import live_output, prefetch_host
from audit.messages import says
from audit.transports.base import Transport
from audit.transports.reads import HostCommand, HostReads
from audit.vocabulary import Reason

SSHD_CONFIG = "/etc/ssh/sshd_config"
SSHD_EFFECTIVE = HostCommand(("sshd", "-T"), "/usr/sbin/sshd", needs_root=True)
LISTEN_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
READS = HostReads(
    purpose="sshd options, password ageing defaults, listening sockets",
    files=(SSHD_CONFIG, "/etc/login.defs", *LISTEN_TABLES),
    config_dirs=("/etc/ssh/sshd_config.d",),
    commands=(SSHD_EFFECTIVE,),
)
MAX_INCLUDE_DEPTH = 8
# Keywords sshd accepts several times, accumulating values; for the rest the first one wins.
SSHD_ACCUMULATING = frozenset({"include", "hostkey", "listenaddress", "port", "acceptenv",
                               "subsystem", "hostcertificate", "setenv"})


@dataclass(frozen=True)
class SshdOption:
    """One keyword as sshd will use it, and where it was set (None: sshd's effective view)."""

    value: str
    location: str | None


@dataclass(frozen=True)
class MatchBlock:
    """A `Match` block: options that apply only to some connections."""

    criteria: str
    location: str
    options: dict[str, SshdOption]


@dataclass(frozen=True)
class SshdConfig:
    """The sshd configuration: global options (first value wins) and Match blocks."""

    source: str                                    # "sshd -T" or "files"
    options: dict[str, SshdOption]
    match_blocks: list[MatchBlock] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def value(self, keyword: str) -> str | None:
        """The global value of a keyword (lower-cased keyword), None when unset."""
        option = self.options.get(keyword.lower())
        return option.value if option else None

    def location(self, keyword: str) -> str | None:
        """Where the global value of a keyword was set."""
        option = self.options.get(keyword.lower())
        return option.location if option else None

    def overrides(self, keyword: str) -> list[tuple[MatchBlock, SshdOption]]:
        """Match blocks that set the keyword for some connections."""
        key = keyword.lower()
        return [(block, block.options[key]) for block in self.match_blocks if key in block.options]


def sshd_config(context: TargetContext) -> SshdConfig:
    """The effective configuration when `sshd -T` may run, else the parsed files.

    `sshd -T` shows the global options only, so Match blocks still come from the files
    when they can be read.
    """
    transport = prefetch_host(context)
    effective = live_output(transport, SSHD_EFFECTIVE.argv)
    if effective is None:
        return parse_sshd_files(transport)
    config = parse_sshd_effective(effective)
    try:
        files = parse_sshd_files(transport)
    except FactUnavailable:
        return config
    return SshdConfig(source=config.source, options=config.options,
                      match_blocks=files.match_blocks, files=files.files)


def parse_sshd_effective(text: str) -> SshdConfig:
    """Parse `sshd -T` output: one lower-case keyword and its value per line."""
    options: dict[str, SshdOption] = {}
    for line in text.splitlines():
        keyword, _, value = line.strip().partition(" ")
        if keyword and keyword not in options:
            options[keyword.lower()] = SshdOption(value.strip(), None)
    return SshdConfig(source="sshd -T", options=options)


@dataclass
class _SshdParse:
    options: dict[str, SshdOption] = field(default_factory=dict)
    blocks: list[MatchBlock] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    current: MatchBlock | None = None


def parse_sshd_files(transport: Transport, path: str = SSHD_CONFIG) -> SshdConfig:
    """Parse sshd_config and what it includes, as sshd reads them."""
    state = _SshdParse()
    _parse_sshd_file(transport, path, state, depth=0)
    return SshdConfig(source="files", options=state.options, match_blocks=state.blocks,
                      files=state.files)


def _parse_sshd_file(transport: Transport, path: str, state: _SshdParse, depth: int) -> None:
    if depth > MAX_INCLUDE_DEPTH:
        raise FactUnavailable(Reason.REFUSED, says("{path}: Include nested deeper than {depth}",
                                                   path=path, depth=MAX_INCLUDE_DEPTH))
    text = transport.read_text(path)
    state.files.append(path)
    for number, raw in enumerate(text.splitlines(), start=1):
        words = _sshd_words(raw)
        if not words:
            continue
        keyword, values = words[0].lower(), words[1:]
        location = f"{path}:{number}"
        if keyword == "include":
            for pattern in values:
                for included in _expand_include(transport, pattern):
                    _parse_sshd_file(transport, included, state, depth + 1)
            continue
        if keyword == "match":
            state.current = MatchBlock(" ".join(values), location, {})
            state.blocks.append(state.current)
            continue
        option = SshdOption(" ".join(values), location)
        target = state.current.options if state.current else state.options
        if keyword not in target or keyword in SSHD_ACCUMULATING:
            target.setdefault(keyword, option)


def _sshd_words(line: str) -> list[str]:
    stripped = line.split("#", 1)[0].strip()
    if not stripped:
        return []
    if "=" in stripped.split()[0]:          # "Keyword=value" is accepted by sshd too
        keyword, _, rest = stripped.partition("=")
        stripped = f"{keyword} {rest}"
    try:
        return shlex.split(stripped)
    except ValueError:
        return stripped.split()


def _expand_include(transport: Transport, pattern: str) -> list[str]:
    full = PurePosixPath(pattern if pattern.startswith("/") else f"/etc/ssh/{pattern}")
    if not any(char in full.name for char in "*?["):
        return [str(full)]
    try:
        entries = transport.list_dir(str(full.parent))
    except FactUnavailable as error:
        if error.reason is Reason.NOT_FOUND:
            return []
        raise
    return [str(full.parent / entry.name) for entry in entries
            if not entry.is_dir and fnmatch.fnmatchcase(entry.name, full.name)]


@dataclass(frozen=True)
class LoginDefs:
    """Settings of /etc/login.defs."""

    values: dict[str, str]
    locations: dict[str, str]

    def integer(self, key: str) -> int | None:
        """A numeric setting, None when absent or not a number."""
        try:
            return int(self.values[key])
        except (KeyError, ValueError):
            return None


def login_defs(context: TargetContext) -> LoginDefs:
    """Parse /etc/login.defs."""
    path = "/etc/login.defs"
    text = prefetch_host(context).read_text(path)
    values: dict[str, str] = {}
    locations: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if len(words) >= 2:
            values[words[0]] = words[1]
            locations[words[0]] = f"{path}:{number}"
    return LoginDefs(values, locations)


@dataclass(frozen=True, order=True)
class ListeningSocket:
    """A TCP socket in LISTEN state."""

    port: int
    address: str

    @property
    def loopback_only(self) -> bool:
        """Whether only this machine can connect to it."""
        return ipaddress.ip_address(self.address).is_loopback


def listening_sockets(context: TargetContext) -> list[ListeningSocket]:
    """TCP sockets in LISTEN state, from the kernel's tables (no command needed)."""
    tables = prefetch_host(context).read_files(list(LISTEN_TABLES))
    sockets: set[ListeningSocket] = set()
    readable = 0
    for content in tables.values():
        if isinstance(content, Unavailable):
            continue
        readable += 1
        sockets.update(parse_proc_net_tcp(content.decode("ascii", errors="replace")))
    if readable == 0:
        raise FactUnavailable(Reason.UNSUPPORTED, says(
            "no kernel socket tables (/proc/net/tcp): live listening state cannot be observed "
            "on this transport"))
    return sorted(sockets)


LISTEN_STATE = "0A"


def parse_proc_net_tcp(text: str) -> list[ListeningSocket]:
    """Listening sockets from the text of /proc/net/tcp or /proc/net/tcp6."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != LISTEN_STATE:
            continue
        address_hex, _, port_hex = fields[1].partition(":")
        found.append(ListeningSocket(port=int(port_hex, 16), address=_kernel_address(address_hex)))
    return found


def _kernel_address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    # The kernel prints each 32-bit word in host (little-endian) byte order.
    swapped = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(swapped)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)
