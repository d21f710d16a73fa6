"""The dashboard's sign-in sessions live in the database, so ``corral serve`` may run several
worker processes (issue 16): a browser signed in stays signed in whichever worker answers,
signing out ends the session in every worker, an idle session is refused, and the table never
holds the cookie's session id itself (only its SHA-256)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from corral.services.web_sessions import COOKIE, IDLE_S
from corral.store import models as m
from corral.store.db import Database
from tests.api.test_serve_workers import _wait_ready
from tests.reclaim.conftest import _free_port
from tests.web.conftest import CSRF

#: Requests per check, each on a new connection the kernel hands to either worker.
TRIES = 16


@pytest.fixture
def two_workers(db: Database, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The URL of ``corral serve`` with 2 worker processes on ``db``, and an admin token."""
    db.dispose()
    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "CORRAL_API_WORKERS": "2",
    }
    token = subprocess.run(
        [sys.executable, "-m", "corral", "token", "create", "browser"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.strip()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "corral", "serve", "--port", str(port)], env=env)
    try:
        _wait_ready(url, proc)
        yield url, token
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def _browser(url: str) -> httpx.Client:
    """A client that keeps cookies and opens a new connection for every request."""
    return httpx.Client(base_url=url, timeout=60, headers={"Connection": "close"})


def _sign_in(browser: httpx.Client, token: str) -> None:
    csrf = CSRF.search(browser.get("/login").text)
    assert csrf
    done = browser.post("/login", data={"csrf": csrf.group(1), "token": token, "next": "/"})
    assert done.status_code == 303, done.text


def _signed_in_answers(browser: httpx.Client) -> list[int]:
    return [browser.get("/hosts").status_code for _ in range(TRIES)]


def test_a_session_holds_across_two_workers_until_signed_out(
    two_workers: tuple[str, str], db: Database
) -> None:
    url, token = two_workers
    with _browser(url) as browser:
        _sign_in(browser, token)
        sid = browser.cookies[COOKIE]
        assert _signed_in_answers(browser) == [200] * TRIES
        with db.session() as s:  # at rest: the id's hash only
            stored = s.scalars(select(m.WebSession.id_hash)).all()
        assert hashlib.sha256(sid.encode()).hexdigest() in stored and sid not in stored
        csrf = CSRF.search(browser.get("/admin").text)
        assert csrf
        assert browser.post("/logout", data={"csrf": csrf.group(1)}).status_code == 303
    with _browser(url) as stolen:  # the old cookie, replayed: signed out in every worker
        stolen.cookies.set(COOKIE, sid)
        assert _signed_in_answers(stolen) == [303] * TRIES


def test_an_idle_session_is_refused_by_every_worker(
    two_workers: tuple[str, str], db: Database
) -> None:
    url, token = two_workers
    with _browser(url) as browser:
        _sign_in(browser, token)
        assert browser.get("/hosts").status_code == 200
        long_ago = datetime.now(UTC) - timedelta(seconds=IDLE_S + 60)
        with db.session() as s:
            s.execute(update(m.WebSession).values(seen_at=long_ago))
        answers = [browser.get("/hosts") for _ in range(TRIES)]
        assert {r.status_code for r in answers} == {303}
        assert all(r.headers["location"].startswith("/login") for r in answers)
