"""Support of the capability and job tests: an API app on a real database with a token, the
CLI run in-process on the same files, fleet files as the JSON a client sends.

The fixtures ``api`` and ``settings`` are imported by the test modules that use them
(``from tests.api.support import api_fixture``); tests/api/conftest.py is the other tests'.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from corral.api.app import create_app
from corral.cli import context
from corral.cli.main import app as cli_app
from corral.config import Settings
from corral.inventory.service import Inventory
from corral.security.token_store import TokenStore
from corral.services.users import UserService

FLEETS = Path(__file__).resolve().parents[1] / "fixtures" / "fleets"
SPRAWL = Path(__file__).resolve().parents[1] / "fixtures" / "sprawl"


class Api:
    """A TestClient that sends the bearer token (every route but /healthz needs one)."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.auth = {"Authorization": f"Bearer {token}"}

    def post(self, path: str, body: dict[str, Any], *, token: bool = True) -> Any:
        return self.client.post(path, json=body, headers=self.auth if token else None)

    def get(self, path: str, *, token: bool = True, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.auth if token else None)

    def ok(self, path: str, body: dict[str, Any], *, token: bool = True) -> Any:
        r = self.post(path, body, token=token)
        assert r.status_code == 200, r.text
        return r.json()

    def job(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Submit a job (202) and wait until it is no longer queued or running."""
        r = self.post(path, body, token=True)
        assert r.status_code == 202, r.text
        assert r.headers["location"] == r.json()["href"]
        return self.wait(r.json()["id"])

    def wait(
        self, job_id: str, until: tuple[str, ...] = ("succeeded", "failed", "cancelled")
    ) -> dict[str, Any]:
        for _ in range(1200):
            job: dict[str, Any] = self.get(f"/api/v1/jobs/{job_id}", token=True).json()
            if job["state"] in until:
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} never reached {until}: {job}")


def document(path: Path) -> dict[str, Any]:
    """A YAML fleet file as the JSON a client sends (dates written as ISO 8601 strings)."""
    data = yaml.safe_load(path.read_text())
    doc: dict[str, Any] = json.loads(json.dumps(data, default=lambda d: d.isoformat()))
    return doc


def fleet_doc(name: str) -> dict[str, Any]:
    return document(FLEETS / name)


@pytest.fixture(name="settings")
def settings_fixture(tmp_path: Path, shared_data: Path) -> Settings:
    return Settings(home=tmp_path / "home", shared_data=shared_data)


@pytest.fixture(name="api")
def api_fixture(inventory: Inventory, settings: Settings) -> Iterator[Api]:
    UserService(inventory.db).add("tests", roles=["admin"])  # jobs record the user
    token = TokenStore(inventory.db).create("tests", "tests")
    app = create_app(inventory, settings=settings)
    yield Api(TestClient(app), token)
    app.state.jobs.shutdown(wait=True)


def cli_json(*args: str) -> Any:
    """``corral ARGS -o json`` through the real CLI, in this process."""
    context.settings.cache_clear()
    context.inventory.cache_clear()
    result = CliRunner().invoke(cli_app, [*args, "-o", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)
