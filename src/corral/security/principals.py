"""The caller a stored user stands for, read fresh on every request (no cache to expire)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.domain.access import Principal, Role
from corral.errors import AuthError
from corral.store import models as m

#: The user that tokens made before users existed belong to (migration 0400), and the owner of
#: ``corral token create NAME`` without ``--user``: the local administrator's tokens.
LOCAL_ADMIN = "local-admin"


def principal_of(user: m.User) -> Principal:
    """The caller a user stands for; AuthError when the user is disabled."""
    if user.disabled_at is not None:
        raise AuthError(f"user {user.name!r} is disabled; ask an administrator.")
    return Principal(
        user=user.name,
        roles=frozenset(Role(r.role) for r in user.roles),
        departments=frozenset(d.department for d in user.departments),
    )


def ensure_local_admin(s: Session) -> m.User:
    """The built-in administrator that owns tokens made without ``--user``."""
    user = s.scalar(select(m.User).where(m.User.name == LOCAL_ADMIN))
    if user is None:
        user = m.User(name=LOCAL_ADMIN, created_at=datetime.now(UTC))
        user.roles = [m.UserRole(role=Role.admin.value)]
        s.add(user)
        s.flush()
    return user
