"""``corral jobs list|show|cancel`` read and change the same table the API's job runner uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corral.cli import context
from corral.cli.main import app as cli_app
from corral.services.jobs import JobService, JobState
from corral.store import models as m
from corral.store.db import Database

SQLITE_ONLY = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def _corral(*args: str) -> tuple[int, str]:
    context.settings.cache_clear()
    context.inventory.cache_clear()
    result = CliRunner().invoke(cli_app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def home(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    monkeypatch.setenv("CORRAL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CORRAL_DATABASE_URL", db.url.render_as_string(hide_password=False))
    with db.session() as s:
        for i, state in enumerate((JobState.queued, JobState.failed)):
            s.add(
                m.Job(
                    id=f"job-{i}",
                    kind="plan.consolidate",
                    state=state.value,
                    progress=0.0,
                    params={},
                    error={"code": "job-interrupted", "status": 500, "title": "x", "detail": "y"}
                    if state is JobState.failed
                    else None,
                    submitted_by="ops",
                    cancel_requested=False,
                    created_at=datetime(2026, 5, 1, i, tzinfo=UTC),
                )
            )
    return db


@SQLITE_ONLY
def test_list_show_and_cancel_from_the_shell(home: Database) -> None:
    code, out = _corral("jobs", "list", "-o", "json")
    assert code == 0
    assert [(j["id"], j["state"]) for j in json.loads(out)] == [
        ("job-1", "failed"),
        ("job-0", "queued"),
    ]
    code, out = _corral("jobs", "list", "--state", "failed", "-o", "json")
    assert [j["id"] for j in json.loads(out)] == ["job-1"]
    code, out = _corral("jobs", "show", "job-1", "-o", "json")
    assert code == 0 and json.loads(out)["error"]["code"] == "job-interrupted"
    code, out = _corral("jobs", "cancel", "job-0")
    assert code == 0 and "cancelled" in out
    assert JobService(home).get("job-0").state is JobState.cancelled


@SQLITE_ONLY
def test_unknown_or_finished_job_is_one_clear_sentence(home: Database) -> None:
    """Through the real entry point (a process), where errors become one sentence."""
    for args, sentence in (
        (("show", "nope"), "no job 'nope'"),
        (("cancel", "job-1"), "already failed"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "corral", "jobs", *args],
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode not in (0, 1), done.stderr  # 1 is a bug
        assert sentence in done.stderr and "Traceback" not in done.stderr
