"""The signed IDS webhook without hypervisors: the signature check, the replay window, and
the route on a real database (a good delivery naming an unknown VM makes a job that fails with
not-found; every refused one makes nothing). The snapshot itself is tested on real hosts
(tests/realhost/test_forensic_real.py)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Secret, Settings, describe, load_settings
from corral.inventory.service import Inventory
from corral.security.signed_webhook import SIGNATURE_HEADER, WebhookRefused, check, sign
from corral.store import models as m

KEY = b"0123456789abcdef-shared"
NOW = 1_800_000_000.0


def _body(**over: object) -> bytes:
    doc = {"vm": "web-01", "reason": "alert", "timestamp": NOW, **over}
    return json.dumps(doc).encode()


def test_a_good_delivery_is_parsed() -> None:
    body = _body()
    done = check(KEY, body, sign(KEY, body), NOW + 10, 300)
    assert done.doc["vm"] == "web-01" and done.timestamp == NOW and len(done.digest) == 64


@pytest.mark.parametrize(
    ("secret", "body", "header", "now"),
    [
        (KEY, _body(), None, NOW),  # unsigned
        (KEY, _body(), "", NOW),
        (KEY, _body(), sign(KEY, _body())[7:], NOW),  # no sha256= prefix
        (KEY, _body(), sign(b"other", _body()), NOW),  # another key
        (KEY, _body(reason="changed"), sign(KEY, _body()), NOW),  # body changed
        (KEY, _body(), sign(KEY, _body()), NOW + 301),  # too old
        (KEY, _body(), sign(KEY, _body()), NOW - 301),  # from the future
        (KEY, b"not json", sign(KEY, b"not json"), NOW),
        (KEY, _body(timestamp="x"), sign(KEY, _body(timestamp="x")), NOW),
        (KEY, _body(timestamp=True), sign(KEY, _body(timestamp=True)), NOW),
        (KEY, b"[1]", sign(KEY, b"[1]"), NOW),
        (None, _body(), sign(b"", _body()), NOW),  # no secret configured: nothing passes
        (b"", _body(), sign(b"", _body()), NOW),
    ],
)
def test_refused_deliveries(
    secret: bytes | None, body: bytes, header: str | None, now: float
) -> None:
    with pytest.raises(WebhookRefused) as caught:
        check(secret, body, header, now, 300)
    assert caught.value.http_status == 401
    assert KEY.decode() not in caught.value.message


def test_the_secret_is_a_setting_never_shown(tmp_path: Path) -> None:
    env = {
        "CORRAL_HOME": str(tmp_path),
        "CORRAL_FORENSIC_SECRET": "s3cr3t-value",
        "CORRAL_FORENSIC_MAX_AGE": "60",
        "CORRAL_FORENSIC_DIR": str(tmp_path / "ev"),
    }
    settings = load_settings(env)
    assert settings.forensic_webhook_secret == Secret("s3cr3t-value")
    assert settings.forensic_webhook_max_age_s == 60
    assert settings.forensic_dir == tmp_path / "ev"
    shown = {s.name: s.value for s in describe(settings)}
    assert shown["forensic_webhook_secret"] == "********"
    assert "s3cr3t-value" not in repr(settings)


@pytest.fixture
def client(inventory: Inventory, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        home=tmp_path / "home", forensic_dir=tmp_path / "forensic",
        forensic_webhook_secret=Secret(KEY.decode()), forensic_webhook_max_age_s=300,
    )  # fmt: skip
    app = create_app(inventory, settings=settings)
    yield TestClient(app)
    app.state.jobs.shutdown(wait=True)


def _post(client: TestClient, body: bytes, header: str | None) -> object:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers[SIGNATURE_HEADER] = header
    return client.post("/api/v1/forensic/webhook", content=body, headers=headers)


def _rows(inventory: Inventory) -> tuple[int, int, int]:
    with inventory.db.session() as s:
        return (
            s.query(m.Job).count(),
            s.query(m.ForensicDeliveryRow).count(),
            s.query(m.ForensicRecordRow).count(),
        )


@pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
def test_route_refuses_then_accepts_once(
    client: TestClient, inventory: Inventory, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    body = json.dumps({"vm": "no-such-vm", "reason": "ids", "timestamp": time.time()}).encode()
    for header in (None, "sha256=00", sign(b"wrong", body)):
        answer = _post(client, body, header)
        assert answer.status_code == 401, answer.text  # type: ignore[attr-defined]
        assert answer.json()["code"] == "webhook-refused"  # type: ignore[attr-defined]
    assert _rows(inventory) == (0, 0, 0)

    good = _post(client, body, sign(KEY, body))
    assert good.status_code == 202, good.text  # type: ignore[attr-defined]
    again = _post(client, body, sign(KEY, body))
    assert again.status_code == 401  # type: ignore[attr-defined]
    assert _rows(inventory)[:2] == (1, 1)

    job_id = good.json()["id"]  # type: ignore[attr-defined]
    for _ in range(400):
        job = client.app.state.jobs.get(job_id)  # type: ignore[attr-defined]
        if job.state.value not in ("queued", "running"):
            break
        time.sleep(0.05)
    assert job.state.value == "failed" and job.error.code == "not-found", job
    assert job.submitted_by == "ids-webhook"
    assert _rows(inventory)[2] == 0
    assert not (tmp_path / "forensic").exists() or not any((tmp_path / "forensic").iterdir())
    assert KEY.decode() not in caplog.text


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_signed_but_invalid_body_is_422_and_not_remembered(
    client: TestClient, inventory: Inventory
) -> None:
    for bad in ({"vm": "bad name!"}, {"id": "evt\nforged audit line"}, {"reason": ""}):
        doc = {"vm": "web-01", "reason": "x", "timestamp": time.time(), **bad}
        body = json.dumps(doc).encode()
        answer = _post(client, body, sign(KEY, body))
        assert answer.status_code == 422, bad  # type: ignore[attr-defined]
    assert _rows(inventory) == (0, 0, 0)


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_without_a_configured_secret_nothing_is_accepted(
    inventory: Inventory, tmp_path: Path
) -> None:
    app = create_app(inventory, settings=Settings(home=tmp_path / "home"))
    body = json.dumps({"vm": "x", "reason": "x", "timestamp": time.time()}).encode()
    answer = _post(TestClient(app), body, sign(b"", body))
    assert answer.status_code == 401  # type: ignore[attr-defined]
    assert _rows(inventory) == (0, 0, 0)
    app.state.jobs.shutdown(wait=True)
