"""The Kazakhstan baseline run end to end over a real (weak) Redis and generated evidence:
the report shows every control with its references and their kind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.servers.postgres import serving
from tests.servers.redis_server import RedisServer, start_redis
from typer.testing import CliRunner

from audit.cli import app

ADDRESS = "127.68.0.10"     # this file's own loopback address


@pytest.fixture(scope="module")
def redis_open() -> Iterator[RedisServer]:
    yield from serving(start_redis("weak", ADDRESS))


@pytest.mark.servers
def test_kz_baseline_over_a_weak_redis(redis_open: RedisServer, tmp_path: Path) -> None:
    (tmp_path / "irp.txt").write_text("Breach. Isolation. Forensics.", encoding="utf-8")
    (tmp_path / "inventory.yaml").write_text(f"""
organisation: Test Clinic
scope: {{networks: [{ADDRESS}/32]}}
targets:
  - name: cache
    address: {ADDRESS}
    roles: [db]
    services: [{{kind: redis, port: 6379}}]
evidence:
  incident_response_plan: {{file: irp.txt, date: 2026-01-15}}
""", encoding="utf-8")
    outcome = CliRunner().invoke(app, ["run", "-p", "kz-mis-baseline", "-i",
                                       str(tmp_path / "inventory.yaml"), "-o",
                                       str(tmp_path / "out"), "--quiet", "--history", "off",
                                       "--timeout", "10"])
    assert outcome.exit_code == 1, outcome.output          # not ready
    results = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    controls = {control["id"]: control for control in results["controls"]}
    assert len(controls) == 41
    assert all(control["references"] for control in controls.values())
    assert all(ref["kind"] in {"law", "proposal", "external", "verify", "incident"}
               for control in controls.values() for ref in control["references"])
    assert controls["net.db_unauth"]["status"] == "fail"
    assert controls["crypto.in_transit"]["status"] == "fail"
    assert controls["ir.plan"]["status"] == "pass"
    assert controls["assess.annual_audit"]["status"] == "manual"   # no report: never pass
    plan = next(r for r in results["results"] if r["control"] == "ir.plan")
    assert plan["evidence"]["details"]["sections_found"] == ["breach", "isolation", "forensics"]
    report = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    for reference in controls["net.db_unauth"]["references"]:
        assert reference["text"].split(",")[0] in report
