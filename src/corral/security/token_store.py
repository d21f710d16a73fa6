"""API tokens in the store: create (shown once), verify, revoke."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from corral.errors import AuthError, ConflictError, NotFoundError, ValidationError
from corral.security.tokens import matches, new_token, split_prefix
from corral.store import models as m
from corral.store.db import Database

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class TokenStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, name: str) -> str:
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
            s.add(
                m.ApiToken(
                    name=name,
                    prefix=tok.prefix,
                    token_hash=tok.token_hash,
                    created_at=datetime.now(UTC),
                )
            )
        return tok.token

    def create_or_rotate(self, name: str) -> str:
        """A fresh token under ``name``, revoking and replacing any earlier one."""
        with self.db.session() as s:
            old = s.scalar(select(m.ApiToken).where(m.ApiToken.name == name))
            if old is not None:
                s.delete(old)
        return self.create(name)

    def verify(self, token: str) -> str:
        """The token's name when it is valid, else AuthError."""
        prefix = split_prefix(token)
        if prefix is None:
            raise AuthError(
                "the bearer token is malformed; create one with 'corral token create NAME'."
            )
        with self.db.session() as s:
            for row in s.scalars(select(m.ApiToken).where(m.ApiToken.prefix == prefix)):
                if row.revoked_at is None and matches(token, row.token_hash):
                    now = datetime.now(UTC)
                    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
                        row.last_used_at = now
                    return row.name
        raise AuthError("the bearer token is not valid or was revoked.")

    def list(self) -> list[dict[str, Any]]:
        with self.db.session() as s:
            return [
                {
                    "name": t.name,
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
