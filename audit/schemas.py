"""The JSON Schema of every file a user writes or mis-audit produces, generated from the
models. The committed copies under `profiles/` are what editors and CI validate against;
a test fails when they are stale.

    python -m audit.schemas            # rewrite the committed schemas
    python -m audit.schemas --check    # exit 1 if any is stale
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from audit.model.attestation import AttestationFile
from audit.model.inventory import Inventory
from audit.model.profile import ControlLibrary, Profile
from audit.model.results import RunResults
from audit.model.waiver import WaiverFile

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_DIRECTORY = Path(__file__).resolve().parent.parent / "profiles"


def _input_schema(model: type[BaseModel]) -> Callable[[], dict[str, Any]]:
    # Files users write are described as they are *read* (aliases like `with`, plain-string
    # texts); results.json as it is *written*.
    return lambda: model.model_json_schema(by_alias=True, mode="validation")


def _output_schema(model: type[BaseModel]) -> Callable[[], dict[str, Any]]:
    return lambda: model.model_json_schema(by_alias=True, mode="serialization")


# File name -> (title, generator).
SCHEMAS: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "profile.schema.json": ("mis-audit profile", _input_schema(Profile)),
    "control-library.schema.json": ("mis-audit control library file",
                                    _input_schema(ControlLibrary)),
    "inventory.schema.json": ("mis-audit inventory", _input_schema(Inventory)),
    "waivers.schema.json": ("mis-audit waivers", _input_schema(WaiverFile)),
    "attestations.schema.json": ("mis-audit attestations", _input_schema(AttestationFile)),
    "results.schema.json": ("mis-audit results.json", _output_schema(RunResults)),
}


def schema_text(name: str) -> str:
    """The canonical text of one schema file."""
    title, generate = SCHEMAS[name]
    schema = {"$schema": SCHEMA_DIALECT, **generate(), "title": title}
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale_schemas(directory: Path = SCHEMA_DIRECTORY) -> list[str]:
    """The schema files that are missing or differ from what the models generate."""
    stale = []
    for name in SCHEMAS:
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != schema_text(name):
            stale.append(name)
    return stale


def write_schemas(directory: Path = SCHEMA_DIRECTORY) -> list[Path]:
    """Write every schema file; returns the paths written."""
    written = []
    for name in SCHEMAS:
        path = directory / name
        path.write_text(schema_text(name), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    """`--check`: 1 when a committed schema is stale; otherwise rewrite them all."""
    if argv == ["--check"]:
        stale = stale_schemas()
        for name in stale:
            print(f"stale: profiles/{name} (run: python -m audit.schemas)", file=sys.stderr)
        return 1 if stale else 0
    if argv:
        print("usage: python -m audit.schemas [--check]", file=sys.stderr)
        return 2
    for path in write_schemas():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
