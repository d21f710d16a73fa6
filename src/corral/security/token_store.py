"""API tokens in the store: create (shown once), verify, revoke."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, joinedload

from corral.domain.access import Principal, Role
from corral.errors import AuthError, ConflictError, NotFoundError, ValidationError
from corral.security.principals import ensure_local_admin, principal_of
from corral.security.tokens import matches, new_token, split_prefix
from corral.store import models as m
from corral.store.db import Database

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class TokenStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, name: str, user: str | None = None) -> str:
        """A new token of ``user`` (default: the local administrator), printed once."""
        if not _NAME.match(name):
            raise ValidationError(
                "a token name is 1-64 letters, digits, dots, dashes or underscores."
            )
        tok = new_token()
        with self.db.session() as s:
            if s.scalar(select(m.ApiToken).where(m.ApiToken.name == name)) is not None:
                raise ConflictError(
                    f"a token named {name!r} already exists; revoke it or pick another name."
                )
            owner = _owner(s, user)
            row = m.ApiToken(
                name=name,
                prefix=tok.prefix,
                token_hash=tok.token_hash,
                created_at=datetime.now(UTC),
            )
            s.add(row)
            s.flush()
            s.add(m.TokenOwner(token_id=row.id, user_id=owner.id))
        return tok.token

    def create_or_rotate(self, name: str, user: str | None = None) -> str:
        """A fresh token under ``name``, revoking and replacing any earlier one."""
        with self.db.session() as s:
            old = s.scalar(select(m.ApiToken).where(m.ApiToken.name == name))
            if old is not None:
                s.delete(old)
        return self.create(name, user)

    def verify(self, token: str) -> str:
        """The token's name when it is valid, else AuthError."""
        return self._check(token)[0]

    def authenticate(self, token: str) -> Principal:
        """The user a valid token belongs to, with its roles now; AuthError otherwise."""
        return self._check(token)[1]

    def identify(self, token: str) -> tuple[str, Principal]:
        """The token's name and the principal of its user, in one look-up; AuthError else."""
        return self._check(token)

    def principal_for(self, name: str) -> Principal:
        """The principal of the token named ``name`` now (its user's roles today); AuthError
        when the token was revoked or removed or its user disabled. For sessions that signed
        in with the token and keep only its name."""
        with self.db.session() as s:
            row = s.scalar(select(m.ApiToken).where(m.ApiToken.name == name))
            if row is None or row.revoked_at is not None:
                raise AuthError("the token this session signed in with was revoked.")
            return principal_of(_user_of(s, row.id))

    def _check(self, token: str) -> tuple[str, Principal]:
        """One SELECT (the prefix's tokens with their users, roles and departments, as Core
        rows, outside a transaction: this runs for every API request) and, at most once a
        minute, one UPDATE."""
        prefix = split_prefix(token)
        if prefix is None:
            raise AuthError(
                "the bearer token is malformed; create one with 'corral token create NAME'."
            )
        with self.db.reading() as conn:
            rows = conn.execute(_CALLER_OF_PREFIX, {"prefix": prefix}).all()
        for row in rows:
            if row.revoked_at is None and matches(token, row.token_hash):
                principal = _principal(row.id, rows)
                now = datetime.now(UTC)
                if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
                    with self.db.session() as s:
                        s.execute(
                            update(m.ApiToken)
                            .where(m.ApiToken.id == row.id)
                            .values(last_used_at=now)
                        )
                return row.name, principal
        raise AuthError("the bearer token is not valid or was revoked.")

    def list(self) -> list[dict[str, Any]]:
        with self.db.session() as s:
            pairs = s.execute(
                select(m.TokenOwner.token_id, m.User.name).join(
                    m.User, m.User.id == m.TokenOwner.user_id
                )
            ).tuples()
            owners = {token_id: user for token_id, user in pairs}
            return [
                {
                    "name": t.name,
                    "user": owners.get(t.id),
                    "prefix": t.prefix,
                    "created_at": t.created_at.isoformat(),
                    "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
                    "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                }
                for t in s.scalars(select(m.ApiToken).order_by(m.ApiToken.name))
            ]

    def revoke(self, name: str) -> None:
        with self.db.session() as s:
            row = s.scalar(select(m.ApiToken).where(m.ApiToken.name == name))
            if row is None:
                raise NotFoundError(f"no token named {name!r}.")
            row.revoked_at = datetime.now(UTC)


def _owner(s: Session, user: str | None) -> m.User:
    if user is None:
        return ensure_local_admin(s)
    row = s.scalar(select(m.User).where(m.User.name == user))
    if row is None:
        raise NotFoundError(f"no user named {user!r}; add one with 'corral user add'.")
    if row.disabled_at is not None:
        raise ConflictError(f"user {user!r} is disabled; enable them before giving them a token.")
    return row


def _user_of(s: Session, token_id: int) -> m.User:
    """The token's user with its roles and departments, in one query: this runs for every
    API request (lazy loading sent three)."""
    user = (
        s.scalars(
            select(m.User)
            .join(m.TokenOwner, m.TokenOwner.user_id == m.User.id)
            .where(m.TokenOwner.token_id == token_id)
            .options(joinedload(m.User.roles), joinedload(m.User.departments))
        )
        .unique()
        .first()
    )
    if user is None:  # a token row written around the store: trust nothing
        raise AuthError("the bearer token belongs to no user; create a new one.")
    return user


#: A token with its user, the user's roles and departments (one row per role x department).
_CALLER = (
    select(
        m.ApiToken.id,
        m.ApiToken.name,
        m.ApiToken.token_hash,
        m.ApiToken.revoked_at,
        m.ApiToken.last_used_at,
        m.User.name.label("user_name"),
        m.User.disabled_at,
        m.UserRole.role,
        m.UserDepartment.department,
    )
    .select_from(m.ApiToken)
    .outerjoin(m.TokenOwner, m.TokenOwner.token_id == m.ApiToken.id)
    .outerjoin(m.User, m.User.id == m.TokenOwner.user_id)
    .outerjoin(m.UserRole, m.UserRole.user_id == m.User.id)
    .outerjoin(m.UserDepartment, m.UserDepartment.user_id == m.User.id)
)
#: ``_CALLER`` of one prefix, built once: a statement built anew per request cost more CPU
#: than the query (its cache key, and its result columns matched to the cached compilation's).
_CALLER_OF_PREFIX = _CALLER.where(m.ApiToken.prefix == bindparam("prefix"))


def _principal(token_id: int, rows: Sequence[Any]) -> Principal:
    """The principal of ``token_id``'s user from ``_CALLER`` rows (``principal_of``'s rules)."""
    mine = [r for r in rows if r.id == token_id]
    first = mine[0]
    if first.user_name is None:  # a token row written around the store: trust nothing
        raise AuthError("the bearer token belongs to no user; create a new one.")
    if first.disabled_at is not None:
        raise AuthError(f"user {first.user_name!r} is disabled; ask an administrator.")
    return Principal(
        user=first.user_name,
        roles=frozenset(Role(r.role) for r in mine if r.role is not None),
        departments=frozenset(r.department for r in mine if r.department is not None),
    )
