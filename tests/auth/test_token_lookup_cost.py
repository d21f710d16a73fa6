"""A bearer token is checked on every API request: at scale (issue 16, 300 requests a second)
the look-up is one statement — the token by its prefix joined to its user, roles and
departments — not one more per lazily loaded collection, nor a second for the user."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from corral.security.token_store import TokenStore
from corral.services.users import UserService
from corral.store.db import Database


def test_authenticating_a_token_sends_one_select(db: Database) -> None:
    UserService(db).add("alice", roles=["requester", "approver"], departments=["red", "blue"])
    tokens = TokenStore(db)
    token = tokens.create("alice-laptop", "alice")
    tokens.authenticate(token)  # the first use stamps last_used_at (a write, once a minute)
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        who = tokens.authenticate(token)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert who.roles == {"requester", "approver"} and who.departments == {"red", "blue"}
    assert len([s for s in seen if s.lstrip().upper().startswith("SELECT")]) == 1, seen


def test_a_token_of_a_user_without_roles_or_departments_still_authenticates(db: Database) -> None:
    UserService(db).add("bob")
    tokens = TokenStore(db)
    who = tokens.authenticate(tokens.create("bob-cli", "bob"))
    assert who.user == "bob" and who.roles == frozenset() and who.departments == frozenset()


def test_the_look_up_needs_no_transaction_and_gives_back_a_transactional_connection(
    db: Database,
) -> None:
    """On PostgreSQL the look-up's connection is in autocommit (one round trip, no BEGIN or
    COMMIT); the pool gets it back as it lent it, so a session after it is one transaction."""
    token = TokenStore(db).create("t")
    with db.reading() as conn:
        lent = conn.connection.dbapi_connection
        if db.backend == "postgresql":
            assert lent is not None and lent.autocommit is True
    TokenStore(db).authenticate(token)
    with db.session() as s:
        held = s.connection().connection.dbapi_connection
        assert held is lent  # the pool lends its one idle connection again
        if db.backend == "postgresql":
            assert held.autocommit is False
        else:
            assert held.isolation_level is not None  # the driver's own transactions
