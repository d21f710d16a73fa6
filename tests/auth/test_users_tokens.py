"""Issue 10 item 1: users, roles and departments; tokens carry their user's roles, now."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from corral.domain.access import Role
from corral.errors import AuthError, ConflictError, ValidationError
from corral.security.passwords import password_matches
from corral.security.token_store import TokenStore
from corral.services.users import UserService
from corral.store import models as m
from corral.store.db import MIGRATIONS, Database
from tests.auth.conftest import World


def test_roles_and_departments_reach_the_token_at_once(db: Database) -> None:
    users, tokens = UserService(db), TokenStore(db)
    users.add("alice", roles=["requester"], departments=["red"])
    token = tokens.create("alice-laptop", "alice")
    first = tokens.authenticate(token)
    assert (first.user, first.roles, first.departments) == (
        "alice",
        frozenset({Role.requester}),
        frozenset({"red"}),
    )
    users.grant("alice", roles=["approver"], departments=["blue"])
    assert tokens.authenticate(token).roles == {Role.requester, Role.approver}
    users.revoke("alice", roles=["requester"], departments=["red"])
    after = tokens.authenticate(token)
    assert after.roles == {Role.approver} and after.departments == {"blue"}


def test_a_disabled_users_tokens_stop_with_the_next_request(world: World) -> None:
    users = UserService(world.inventory.db)
    assert world.client.get("/api/v1/me", headers=world.auth("operator")).status_code == 200
    users.disable("operator-1")
    refused = world.client.get("/api/v1/me", headers=world.auth("operator"))
    assert refused.status_code == 401 and "disabled" in refused.json()["detail"]
    users.enable("operator-1")
    assert world.client.get("/api/v1/me", headers=world.auth("operator")).json()["roles"] == [
        "operator"
    ]


def test_passwords_are_argon2_hashes_and_sign_in_checks_them(db: Database) -> None:
    users = UserService(db)
    users.add("bob", roles=["auditor"], password="correct horse battery")
    with db.session() as s:
        stored = s.query(m.User).filter_by(name="bob").one().password_hash
    assert stored is not None and stored.startswith("$argon2id$")
    assert "correct horse" not in stored and password_matches("correct horse battery", stored)
    assert users.sign_in("bob", "correct horse battery").roles == {Role.auditor}
    with pytest.raises(AuthError):
        users.sign_in("bob", "wrong horse battery")
    with pytest.raises(ValidationError):
        users.add("carol", password="short")


def test_unknown_roles_and_duplicate_users_are_refused(db: Database) -> None:
    users = UserService(db)
    with pytest.raises(ValidationError, match="the roles are"):
        users.add("dave", roles=["superuser"])
    users.add("dave")
    with pytest.raises(ConflictError):
        users.add("dave")
    users.disable("dave")
    with pytest.raises(ConflictError):
        TokenStore(db).create("dave-token", "dave")


def test_tokens_made_before_users_belong_to_local_admin_after_the_migration(
    db: Database,
) -> None:
    """Migration story: an anonymous token of revision 0300 keeps full access as local-admin."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0300")
    old = TokenStore(db)
    from corral.security.tokens import new_token

    tok = new_token()
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_tokens (name, prefix, token_hash, created_at) "
                "VALUES ('ci-bot', :p, :h, :at)"
            ),
            {"p": tok.prefix, "h": tok.token_hash, "at": datetime.now(UTC).replace(tzinfo=None)},
        )
    db.migrate()
    who = old.authenticate(tok.token)
    assert who.user == "local-admin" and who.roles == {Role.admin}
    assert [t["user"] for t in old.list()] == ["local-admin"]
