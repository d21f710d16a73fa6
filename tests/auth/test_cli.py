"""``corral user``, ``corral token create --user`` and ``corral audit list``: the real command in
its own process, against a throw-away home; and the demo's one login per role."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from corral.domain.access import Role
from corral.security.token_store import TokenStore
from corral.services.users import UserService, one_user_per_role
from corral.store.db import Database


def _corral(env: dict[str, str], *args: str, stdin: str | None = None) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "corral", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return json.loads(done.stdout) if "-o" in args else done.stdout


def test_users_grants_tokens_and_the_audit_of_it(tmp_path: Path) -> None:
    env = {**os.environ, "CORRAL_HOME": str(tmp_path / "home")}
    env.pop("CORRAL_DATABASE_URL", None)
    _corral(env, "user", "add", "alice", "-r", "requester", "-d", "red", "-o", "json")
    _corral(
        env, "user", "add", "bob", "-r", "auditor", "--password-stdin", "-o", "json",
        stdin="a long enough password\n",
    )  # fmt: skip
    granted = _corral(env, "user", "grant", "alice", "-r", "approver", "-d", "blue", "-o", "json")
    assert granted[0]["roles"] == "approver,requester"
    assert granted[0]["departments"] == "blue,red"
    revoked = _corral(env, "user", "revoke", "alice", "-r", "requester", "-o", "json")
    assert revoked[0]["roles"] == "approver"
    token = _corral(env, "token", "create", "alice-laptop", "--user", "alice").strip()
    assert token.startswith("crl_")
    listed = {u["name"]: u for u in _corral(env, "user", "list", "-o", "json")}
    assert listed["bob"]["password"] == "set" and listed["alice"]["password"] == "none"
    _corral(env, "user", "disable", "alice", "-o", "json")
    assert _corral(env, "user", "list", "-o", "json")[0]["enabled"] is False

    db = Database(f"sqlite:///{tmp_path / 'home' / 'corral.db'}")
    try:
        assert TokenStore(db).list()[0]["user"] == "alice"
    finally:
        db.dispose()
    about_alice = _corral(env, "audit", "list", "--target", "user:alice", "-o", "json")
    assert [e["action"] for e in about_alice] == ["create", "update"]  # added, then disabled
    assert about_alice[1]["after"]["disabled_at"] is not None
    assert {e["origin"] for e in about_alice} == {f"cli:{about_alice[0]['actor']}"}
    tokens = _corral(env, "audit", "list", "--target", "token:", "-o", "json")
    assert [e["target"] for e in tokens] == ["token:alice-laptop"]
    later = _corral(env, "audit", "list", "--since", "2999-01-01T00:00Z", "-o", "json")
    assert later == []
    assert "intact" in _corral(env, "audit", "verify")


def test_one_user_per_role_for_the_demo_twice(db: Database) -> None:
    users, tokens = UserService(db), TokenStore(db)
    first = one_user_per_role(users, tokens, "Finance")
    again = one_user_per_role(users, tokens, "Finance")
    assert [x.role for x in again] == [r.value for r in Role]
    for old, new in zip(first, again, strict=True):
        assert tokens.authenticate(new.token).roles == {Role(new.role)}
        assert users.sign_in(new.user, new.password).roles == {Role(new.role)}
        assert new.token != old.token and new.password != old.password
    assert {u.name for u in users.all()} == {f"demo-{r.value}" for r in Role}
