"""Issue 9 item 5: text Corral cannot store and show again is refused everywhere, in one place.

Control characters, lone surrogates and noncharacters in any text field give a clear 422
problem+json through the API (never a 500) and a one-line error with exit status 2 through
the CLI (never "unexpected ValueError"); nothing of it reaches the database or the domain.
Printable text, however unusual, is accepted and comes back as sent.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.api.app import create_app
from corral.domain.text import LINE_PATTERN, bad_character, check_text
from corral.errors import ValidationError
from corral.inventory.service import Inventory
from corral.security.token_store import TokenStore

REFUSED = "\x00\x01\x08\x0b\x0c\x1b\x1f\x7f\x85\x9f\ud800\udfff\ufdd0\ufffe\uffff\U0001fffe"
#: What a URL can carry (no lone surrogate: it has no UTF-8 form).
REFUSED_IN_URL = "".join(c for c in REFUSED if not "\ud800" <= c <= "\udfff")
#: What a shell can pass in argv: no NUL either.
REFUSED_IN_ARGV = REFUSED_IN_URL.replace("\x00", "")
PRINTABLE = st.characters(exclude_categories=("Cc", "Cs", "Cn"), exclude_characters="<>")

CORRAL = (sys.executable, "-m", "corral")
TEXT_FIELDS = ("owner", "department", "purpose", "project")
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def hostile(refused: str = REFUSED) -> st.SearchStrategy[str]:
    """Printable text with one refused character somewhere in it."""
    return st.tuples(
        st.text(PRINTABLE, max_size=20), st.sampled_from(refused), st.text(PRINTABLE, max_size=20)
    ).map("".join)


@pytest.fixture
def client(inventory: Inventory, nodes: Path) -> TestClient:
    inventory.add_host("host-a", f"test://{nodes / 'host-a.xml'}")
    inventory.sync()
    token = TokenStore(inventory.db).create("tests")
    return TestClient(create_app(inventory), headers={"Authorization": f"Bearer {token}"})


def _web(client: TestClient) -> dict[str, Any]:
    (web,) = client.get("/api/v1/vms", params={"q": "web-01"}).json()["items"]
    return web  # type: ignore[no-any-return]


def _send(client: TestClient, method: str, url: str, body: object) -> Any:
    """JSON with ASCII escapes: a lone surrogate travels as ``\\ud800``, as a client may send it."""
    headers = {"Content-Type": "application/json"}
    return client.request(method, url, content=json.dumps(body), headers=headers)


def _refused(resp: Any) -> None:
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "validation-failed"


@FUZZ
@given(field=st.sampled_from((*TEXT_FIELDS, "tags")), value=hostile())
def test_api_refuses_unshowable_metadata(client: TestClient, field: str, value: str) -> None:
    web = _web(client)
    body = {field: [value] if field == "tags" else value}
    _refused(_send(client, "PATCH", f"/api/v1/vms/{web['uuid']}/metadata", body))
    assert _web(client) == web


@FUZZ
@given(value=hostile(REFUSED_IN_URL))
def test_api_refuses_unshowable_query_and_path_text(client: TestClient, value: str) -> None:
    for params in ({"owner": value}, {"q": value}, {"tag": value}, {"host": value}):
        _refused(client.get("/api/v1/vms", params=params))
    name = value.replace("/", "_")  # a '/' would make another path, not a bad name
    _refused(client.delete(f"/api/v1/hosts/{quote(name, safe='')}"))


@FUZZ
@given(value=hostile())
def test_api_refuses_unshowable_reasons(client: TestClient, value: str) -> None:
    flag = {"vm": "web-01", "category": "idle", "reason": value}
    _refused(_send(client, "POST", "/api/v1/reclaim/cases", flag))
    answer = {"token": value, "action": "confirm"}
    _refused(_send(client, "POST", "/api/v1/reclaim/respond", answer))
    assert client.get("/api/v1/reclaim/cases").json()["items"] == []


@FUZZ
@given(field=st.sampled_from(TEXT_FIELDS), value=st.text(PRINTABLE, min_size=1, max_size=40))
def test_api_keeps_printable_text_as_sent(client: TestClient, field: str, value: str) -> None:
    web = _web(client)
    resp = client.patch(f"/api/v1/vms/{web['uuid']}/metadata", json={field: value})
    assert resp.status_code == 200, resp.text
    assert resp.json()[field] == (value.strip() or None)


@settings(max_examples=500, deadline=None)
@given(value=st.text(max_size=30))
def test_one_rule_for_every_interface(value: str) -> None:
    """The domain check refuses what the OpenAPI pattern refuses, and what UTF-8 cannot carry."""
    beyond_pattern = any(
        (ord(c) > 0xFFFF and ord(c) & 0xFFFE == 0xFFFE) or 0xD800 <= ord(c) <= 0xDFFF for c in value
    )
    expected_ok = re.fullmatch(LINE_PATTERN, value) is not None and not beyond_pattern
    assert (bad_character(value) is None) == expected_ok
    if expected_ok:
        assert check_text(value, "x") == value
    else:
        with pytest.raises(ValidationError, match=r"^x contains"):
            check_text(value, "x")


# -- the CLI, in a real subprocess --------------------------------------------------------


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cli-text")
    node = root / "host-a.xml"
    node.write_bytes((Path(__file__).parents[1] / "fixtures" / "nodes" / "host-a.xml").read_bytes())
    env = {**os.environ, "CORRAL_HOME": str(root / "home"), "CORRAL_NODE_DIR": str(root)}
    env.pop("CORRAL_DATABASE_URL", None)
    for args in (("hosts", "add", "host-a", f"test://{node}"), ("sync",)):
        subprocess.run(
            [sys.executable, "-m", "corral", *args], env=env, check=True, capture_output=True
        )
    return env


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    args=st.sampled_from(
        (
            ("vm", "set", "web-01", "--owner"),
            ("vm", "set", "web-01", "--purpose"),
            ("vm", "set", "web-01", "--tags"),
            ("vms", "--owner"),
            ("reclaim", "flag", "web-01", "--category", "idle", "--reason"),
        )
    ),
    value=hostile(REFUSED_IN_ARGV),
)
def test_cli_refuses_unshowable_text_in_one_line(
    cli_home: dict[str, str], args: tuple[str, ...], value: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "corral", *args, value],
        env=cli_home,
        capture_output=True,
        text=True,
        errors="replace",
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and "control or invalid character (U+" in line
    assert "unexpected" not in line
