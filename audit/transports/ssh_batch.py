"""The remote half of an SSH batch: a generated POSIX sh script, and its record format.

Every record is one line "KIND BASE64(KEY) STATUS [BASE64(PAYLOAD)]", so nothing a host's
files contain can pass for a record.
"""

from __future__ import annotations

import base64
import shlex

from audit.messages import Text, says
from audit.transports.base import DirEntry
from audit.transports.reads import Prefetch

# POSIX sh and coreutils only: f reads a file (sudo -n cat when allowed and needed), d lists
# a directory (and reads its files when $2 is 1), g expands a glob, c runs a command.
SCRIPT_FUNCTIONS = r"""
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; export PATH
LC_ALL=C; export LC_ALL
b() { printf '%s' "$1" | base64 -w0; }
# why a path that cannot be seen is not there: missing, or hidden when the nearest ancestor
# that can be seen may not be searched (then its absence cannot be told)
w() {
  a="${1%/*}"
  while [ -n "$a" ] && ! [ -e "$a" ]; do a="${a%/*}"; done
  if [ -n "$a" ] && ! [ -x "$a" ]; then echo hidden; else echo missing; fi
}
f() {
  k=$(b "$1")
  if [ -d "$1" ]; then echo "F $k notfile"; return; fi
  if [ -f "$1" ] && [ -r "$1" ]; then
    printf 'F %s ok ' "$k"; head -c "$M" -- "$1" 2>/dev/null | base64 -w0; echo; return
  fi
  if [ -e "$1" ] || [ -L "$1" ]; then st=denied; else st=$(w "$1"); fi
  if [ "$st" != missing ] && [ "$S" = 1 ]; then
    e=$(sudo -n cat -- "$1" 2>&1 >/dev/null </dev/null)
    if [ $? = 0 ]; then
      printf 'F %s ok ' "$k"; sudo -n cat -- "$1" 2>/dev/null </dev/null | head -c "$M" | base64 -w0
      echo; return
    fi
    case "$e" in *"No such file"*) st=missing;; esac
  fi
  echo "F $k $st"
}
d() {
  k=$(b "$1")
  if [ -d "$1" ] && [ -r "$1" ] && [ -x "$1" ]; then
    printf 'D %s ok ' "$k"
    find "$1" -mindepth 1 -maxdepth 1 -printf '%y %m %s %f\0' 2>/dev/null | head -c "$M" | base64 -w0
    echo
    if [ "$2" = 1 ]; then
      for e in "$1"/* "$1"/.[!.]*; do [ -f "$e" ] && f "$e"; done | head -n 400
    fi
  elif [ "$S" = 1 ] && { [ -d "$1" ] || [ "$(w "$1")" = hidden ]; } \
       && sudo -n ls -1A -- "$1" >/dev/null 2>&1 </dev/null; then
    printf 'D %s ok ' "$k"
    sudo -n ls -1A -- "$1" 2>/dev/null </dev/null | head -n 400 \
      | while IFS= read -r n; do printf '? 0 0 %s\0' "$n"; done | base64 -w0
    echo
    if [ "$2" = 1 ]; then
      sudo -n ls -1A -- "$1" 2>/dev/null </dev/null | head -n 400 \
        | while IFS= read -r n; do f "$1/$n"; done
    fi
  elif [ -e "$1" ] && ! [ -d "$1" ]; then echo "D $k notfile"
  elif [ -e "$1" ]; then echo "D $k denied"
  elif [ "$S" = 1 ] && [ "$(w "$1")" = hidden ]; then
    # sudo could not list it: say missing only when it said so
    case "$(sudo -n ls -1A -- "$1" 2>&1 >/dev/null </dev/null)" in
      *"No such file"*) echo "D $k missing";; *) echo "D $k hidden";; esac
  else echo "D $k $(w "$1")"; fi
}
g() {
  k=$(b "$1"); shift
  printf 'G %s ok ' "$k"
  for e in "$@"; do if [ -e "$e" ] || [ -L "$e" ]; then printf '%s\0' "$e"; fi; done | base64 -w0
  echo
  for e in "$@"; do if [ -f "$e" ]; then f "$e"; fi; done
}
c() {
  k=$1; s=$2; shift 2
  if [ "$s" = 1 ]; then o=$(timeout "$T" sudo -n "$@" 2>/dev/null </dev/null); r=$?
  else o=$(timeout "$T" "$@" 2>/dev/null </dev/null); r=$?; fi
  printf 'C %s %s ' "$k" "$r"; printf '%s' "$o" | base64 -w0; echo
}
"""


def batch_script(request: Prefetch, sudo_files: bool, sudo_commands: set[tuple[str, ...]],
                 max_bytes: int, command_timeout: int) -> str:
    """The sh script that prints one record per requested item (and per file read)."""
    lines = [f"M={max_bytes}; S={1 if sudo_files else 0}; T={command_timeout}",
             SCRIPT_FUNCTIONS]
    lines += [f"f {shlex.quote(path)}" for path in request.files]
    lines += [f"d {shlex.quote(path)} 0" for path in request.dirs]
    lines += [f"d {shlex.quote(path)} 1" for path in request.config_dirs]
    lines += [f"g {shlex.quote(pattern)} {_glob_word(pattern)}" for pattern in request.globs]
    for argv in request.commands:
        key = base64.b64encode("\0".join(argv).encode()).decode()
        lines.append(f"c {key} {1 if argv in sudo_commands else 0} "
                     + " ".join(shlex.quote(word) for word in argv))
    return "\n".join(lines) + "\n"


def _glob_word(pattern: str) -> str:
    # Only * and ? stay wildcards; everything else (from a host's own Include lines,
    # untrusted) is quoted so it cannot become shell syntax.
    word, literal = "", ""
    for char in pattern:
        if char in "*?":
            word += (shlex.quote(literal) if literal else "") + char
            literal = ""
        else:
            literal += char
    return word + (shlex.quote(literal) if literal else "")


def b64_text(text: str) -> str:
    """Decode a base64 field into text."""
    return b64_bytes(text).decode("utf-8", errors="replace")


def b64_bytes(text: str) -> bytes:
    """Decode a base64 field; garbage decodes to nothing."""
    try:
        return base64.b64decode(text, validate=False)
    except ValueError:
        return b""


def describe_status(status: str) -> Text:
    """A file record's status in words (an unknown status as the host sent it)."""
    if status == "missing":
        return says("no such file")
    if status == "denied":
        return says("permission denied")
    if status == "hidden":
        return says("could not read: its directory is not readable to the audit account "
                    "(and sudo did not read it), so whether it exists cannot be told")
    if status == "notfile":
        return says("not a regular file")
    return status


def dir_entries(listing: bytes) -> list[DirEntry]:
    """Directory entries from a NUL-separated `find -printf '%y %m %s %f\\0'` listing."""
    entries = []
    for record in listing.split(b"\0"):
        kind, _, rest = record.decode("utf-8", "replace").partition(" ")
        mode, _, rest = rest.partition(" ")
        size, _, name = rest.partition(" ")
        if not name or name in (".", ".."):
            continue
        entries.append(DirEntry(name=name, is_dir=kind == "d", is_symlink=kind == "l",
                                mode=int(mode, 8) if mode.isdigit() else 0,
                                size=int(size) if size.isdigit() else 0, known=kind != "?"))
    return sorted(entries, key=lambda entry: entry.name)
