"""Valid profiles, inventories and waivers, damaged at random: flipped bytes, inserted control
characters, deleted and duplicated lines, values of the wrong type, truncation. Whatever comes
out, mis-audit answers exit 0 or exit 2 naming the file, never a traceback, never a hang.

Hypothesis is derandomized and keeps no database, so CI sees the same examples every time and
nothing is written into the repository. Failures found here are kept as fixed cases in
tests/test_inputs_malformed.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from typer.testing import CliRunner

from audit.cli import app
from audit.errors import InputError
from audit.yamlfile import parse_bytes

# Even without a database Hypothesis caches what it reads of the source in ./.hypothesis:
# keep the work tree clean.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "mis-audit-hypothesis")

PROFILE_SEEDS = [
    files("profiles").joinpath("examples/clinic-tailored.yaml").read_bytes(),
    files("profiles").joinpath("kz-mis-baseline.yaml").read_bytes(),
    textwrap.dedent("""\
        id: small
        title: {en: A small profile, ru: Небольшой профиль}
        version: "1"
        threshold: 75
        weights: {critical: 12, low: 1}
        controls:
          - use: auth.mfa
            severity: critical
            references: [{text: Some Act art. 5, kind: law, source: Gazette 2026}]
          - id: local.password_age
            title: Passwords expire
            severity: high
            checks:
              - check: host.password_max_age
                with: {max_days: 60}
                timeout: 20
        """).encode(),
]

# After the README's inventory, with the offline root made to exist.
INVENTORY_SEEDS = [
    textwrap.dedent("""\
        organisation: City Clinic No. 5
        system: MedInfo MIS 4.2
        scope:
          networks: [10.20.0.0/24]
          paths: [/srv/share]
        credentials:
          ops-ssh: {type: ssh, user: auditor, key_file: ~/.ssh/audit_ed25519,
                    known_hosts: ~/.ssh/known_hosts, sudo: true}
          mariadb-root: {type: basic, user: root, password_env: MIS_DB_PASSWORD}
        trust:
          ca_file: pki/clinic-ca.pem          # "valid certificate" means chains to this
        targets:
          - {name: app-host, address: 10.20.0.40, roles: [host], ssh: ops-ssh}
          - name: db
            address: 10.20.0.20
            roles: [db]
            services:
              - {kind: postgresql, port: 5432}
              - {kind: mariadb, port: 3306, credential: mariadb-root}
              - {kind: redis, port: 6380, tls: true}
          - name: portal
            address: 10.20.0.10
            roles: [web]
            urls: ["https://10.20.0.10/"]
            login: {url: "https://10.20.0.10/login", username: audit.probe, max_attempts: 8}
          - name: pacs
            address: 10.20.0.30
            roles: [pacs]
            services: [{kind: dicom, port: 104, ae_title: CLINICPACS},
                       {kind: pacs-http, port: 8042}]
          - {name: share, roles: [fileshare], paths: [/srv/share]}
          - {name: image, roles: [host], root: ./image}
        evidence:
          pentest_report: {file: evidence/pentest-2026.pdf, date: 2026-03-01, issued_by: X LLP}
          incident_response_plan: {file: evidence/irp.docx, date: 2026-05-10}
        """).encode(),
    textwrap.dedent("""\
        organisation: Rural clinic
        scope: {hosts: [mis.example.org], paths: [/srv]}
        credentials:
          fhir-token: {type: token, token_env: FHIR_TOKEN}
        targets:
          - name: mis
            address: mis.example.org
            roles: [web, fhir]
            urls: ['https://mis.example.org/', 'https://mis.example.org/fhir/']
            services: [{kind: fhir, port: 443, credential: fhir-token}]
          - {name: localhost, roles: [host], transport: local, paths: [/srv/data]}
        """).encode(),
]

WAIVER_SEEDS = [
    textwrap.dedent("""\
        - {control: auth.password_policy, target: "app-*", reason: "legacy OTP rollout",
           approved_by: "CISO J. Doe", expires: 2099-01-31, risk: medium}
        - control: net.tls
          reason: vendor appliance, replaced in Q4
          approved_by: Head of IT
          expires: 2099-12-31
        """).encode(),
    textwrap.dedent("""\
        waivers:
          - control: auth.mfa
            target: lab-*
            reason: "the lab's analysers cannot do 2FA"
            approved_by: Medical director
            expires: 2099-06-30
            risk: high
        """).encode(),
]

# What a damaged file may hold: controls of every kind, bidi overrides, a byte order mark,
# a non-character, bytes that are not UTF-8, an encoded surrogate.
INSERTIONS = [b"\x00", b"\x01", b"\x07", b"\x08", b"\x0b", b"\x0c", b"\x1b", b"\x7f", b"\t",
              b"\r", b"\xff", b"\xed\xa0\x80", *(char.encode() for char in
              ("\x85", "\x9b", "\u202e", "\u2066", "\ufeff", "\ufffe", "\u2028"))]
# Values of the wrong type, or no value at all, for any key.
VALUES = ["[]", "{}", "~", "yes", "-1", "0", "1e999", ".nan", "2026-13-45", "0000-01-01",
          '"\\ud800"', '"\\u202e"', '"\\0"', '"\\e[2J"', "*nowhere", "&a x", "!!binary AA==",
          "!!python/name:os.system", "!!bool maybe", "!!int ''", "[[[[[[", "'unterminated",
          "9" * 30, "x" * 300, ": :", "- a", "|", "{a: [}", "[" * 200 + "]" * 200,
          "{a: 1, a: 2}", "? [a]\n  : b", "'[/x]'", "[*a, *a]"]

Mutation = Callable[[st.DrawFn, bytes], bytes]


def flip_byte(draw: st.DrawFn, text: bytes) -> bytes:
    """One byte replaced by any other."""
    if not text:
        return text
    index = draw(st.integers(0, len(text) - 1))
    return text[:index] + bytes([draw(st.integers(0, 255))]) + text[index + 1:]


def insert_character(draw: st.DrawFn, text: bytes) -> bytes:
    """A control character, bidi override or broken byte inserted anywhere."""
    index = draw(st.integers(0, len(text)))
    return text[:index] + draw(st.sampled_from(INSERTIONS)) + text[index:]


def delete_line(draw: st.DrawFn, text: bytes) -> bytes:
    """One line removed."""
    lines = text.splitlines(keepends=True)
    if not lines:
        return text
    del lines[draw(st.integers(0, len(lines) - 1))]
    return b"".join(lines)


def duplicate_line(draw: st.DrawFn, text: bytes) -> bytes:
    """One line written twice (a duplicate key, a repeated list item)."""
    lines = text.splitlines(keepends=True)
    if not lines:
        return text
    index = draw(st.integers(0, len(lines) - 1))
    return b"".join([*lines[:index + 1], lines[index], *lines[index + 1:]])


def swap_value(draw: st.DrawFn, text: bytes) -> bytes:
    """The value of one `key: value` replaced by a value of another type."""
    lines = text.splitlines(keepends=True)
    keyed = [index for index, line in enumerate(lines) if b": " in line]
    if not keyed:
        return text
    index = draw(st.sampled_from(keyed))
    key = lines[index].split(b": ", 1)[0]
    lines[index] = key + b": " + draw(st.sampled_from(VALUES)).encode() + b"\n"
    return b"".join(lines)


def truncate(draw: st.DrawFn, text: bytes) -> bytes:
    """The file cut anywhere, as by a full disk or an interrupted copy."""
    return text[:draw(st.integers(0, len(text)))]


MUTATIONS: list[Mutation] = [flip_byte, insert_character, delete_line, duplicate_line,
                             swap_value, truncate]


@st.composite
def damaged(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with one to three mutations applied."""
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 3))):
        text = draw(st.sampled_from(MUTATIONS))(draw, text)
    return text


class Hang(Exception):
    """An input took longer than any input may."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Turn a hang into a failure instead of a stuck test run."""
    def expire(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no answer after {seconds} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# A slow machine may take a second where a laptop takes 50 ms; a hang never answers.
PER_EXAMPLE_SECONDS = 15
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where damaged files are written; the README inventory's offline root exists there."""
    directory = tmp_path_factory.mktemp("fuzz")
    (directory / "image").mkdir()
    return directory


def assert_validate_answers(directory: Path, name: str, content: bytes) -> None:
    """`mis-audit validate` in process: exit 0, or exit 2 with every error naming the file."""
    path = directory / name
    path.write_bytes(content)
    with time_limit(PER_EXAMPLE_SECONDS):
        outcome = CliRunner().invoke(app, ["validate", str(path)])
    output = outcome.output
    assert outcome.exit_code in (0, 2), f"{outcome.exception!r}\n{output}"
    assert outcome.exception is None or isinstance(outcome.exception, SystemExit), output
    assert "Traceback" not in output, output
    if outcome.exit_code == 0:
        assert f"ok: {path}" in output, output
        return
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert errors, output
    assert all(line.startswith(f"error: {path}") for line in errors), output


def test_the_seeds_are_valid(workdir: Path) -> None:
    for kind, seeds in (("p", PROFILE_SEEDS), ("i", INVENTORY_SEEDS), ("w", WAIVER_SEEDS)):
        for index, seed in enumerate(seeds):
            path = workdir / f"seed-{kind}{index}.yaml"
            path.write_bytes(seed)
            outcome = CliRunner().invoke(app, ["validate", str(path)])
            assert outcome.exit_code == 0, outcome.output


@FUZZ
@given(content=damaged(PROFILE_SEEDS))
def test_a_damaged_profile_is_valid_or_exit_2(workdir: Path, content: bytes) -> None:
    assert_validate_answers(workdir, "profile.yaml", content)


@FUZZ
@given(content=damaged(INVENTORY_SEEDS))
def test_a_damaged_inventory_is_valid_or_exit_2(workdir: Path, content: bytes) -> None:
    assert_validate_answers(workdir, "inventory.yaml", content)


@FUZZ
@given(content=damaged(WAIVER_SEEDS))
def test_damaged_waivers_are_valid_or_exit_2(workdir: Path, content: bytes) -> None:
    assert_validate_answers(workdir, "waivers.yaml", content)


@settings(FUZZ, max_examples=1000)
@given(content=damaged(PROFILE_SEEDS + INVENTORY_SEEDS + WAIVER_SEEDS))
def test_what_the_loader_accepts_can_be_written_out(content: bytes) -> None:
    # The loader alone, so many more examples fit: an InputError, or data that JSON and UTF-8
    # can hold (a lone surrogate accepted here used to fail only when results were written).
    with time_limit(PER_EXAMPLE_SECONDS):
        try:
            document = parse_bytes(content, "fuzz.yaml")
        except InputError as error:
            assert all(problem.file == "fuzz.yaml" for problem in error.problems)
            return
    json.dumps(document.data, default=str, ensure_ascii=False).encode("utf-8")


@settings(FUZZ, max_examples=4)
@given(profile=damaged(PROFILE_SEEDS), inventory=damaged(INVENTORY_SEEDS),
       waivers=damaged(WAIVER_SEEDS))
def test_damaged_files_through_the_real_command(workdir: Path, profile: bytes, inventory: bytes,
                                                waivers: bytes) -> None:
    # The installed entry point, in its own process: what cron and CI see.
    paths = []
    for name, content in (("sp.yaml", profile), ("si.yaml", inventory), ("sw.yaml", waivers)):
        (workdir / name).write_bytes(content)
        paths.append(str(workdir / name))
    done = subprocess.run([sys.executable, "-m", "audit.cli", "validate", *paths],
                          capture_output=True, encoding="utf-8", errors="replace", timeout=120,
                          cwd=workdir,
                          stdin=subprocess.DEVNULL, check=False)
    output = done.stdout + done.stderr
    assert done.returncode in (0, 2), output
    assert "Traceback" not in output, output
    for path in paths:
        assert f"ok: {path}" in output or f"error: {path}" in output, output
