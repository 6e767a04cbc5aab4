"""Session-wide guards: no test writes to the real user's history store."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def private_history_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point the default history store (and XDG data) at a session temp dir."""
    home = tmp_path_factory.mktemp("user-data")
    saved = {key: os.environ.get(key) for key in ("MIS_AUDIT_HISTORY", "XDG_DATA_HOME")}
    os.environ["MIS_AUDIT_HISTORY"] = str(home / "history.sqlite")
    os.environ["XDG_DATA_HOME"] = str(home)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
