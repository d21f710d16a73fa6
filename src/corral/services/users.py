"""Users, their roles and departments: add, list, disable, grant, revoke, sign in.

The principal a token or password stands for is built here, from the store, on every request:
a disabled user or a revoked role stops working at once, with no cache to expire.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.domain.access import Principal, Role
from corral.errors import AuthError, ConflictError, NotFoundError, ValidationError
from corral.security.passwords import hash_password, password_matches
from corral.security.principals import principal_of
from corral.security.token_store import TokenStore
from corral.store import models as m
from corral.store.db import Database

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    email: str | None
    roles: list[str]
    departments: list[str]
    has_password: bool
    created_at: datetime
    disabled_at: datetime | None

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ValidationError(f"no role {role!r}; the roles are {known}.") from None


def check_department(department: str) -> str:
    if not department.strip() or len(department) > 256 or not department.isprintable():
        raise ValidationError("a department is 1-256 printable characters.")
    return department.strip()


class UserService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        name: str,
        *,
        roles: Sequence[str] = (),
        departments: Sequence[str] = (),
        email: str | None = None,
        password: str | None = None,
    ) -> UserInfo:
        if not _NAME.match(name):
            raise ValidationError(
                "a user name is 1-64 letters, digits, dots, dashes, @ or underscores."
            )
        checked_roles = sorted({check_role(r) for r in roles})
        checked_departments = sorted({check_department(d) for d in departments})
        with self.db.session() as s:
            if s.scalar(select(m.User).where(m.User.name == name)) is not None:
                raise ConflictError(f"a user named {name!r} already exists.")
            user = m.User(
                name=name,
                email=email,
                password_hash=hash_password(password) if password is not None else None,
                created_at=datetime.now(UTC),
            )
            user.roles = [m.UserRole(role=r.value) for r in checked_roles]
            user.departments = [m.UserDepartment(department=d) for d in checked_departments]
            s.add(user)
            s.flush()
            return _info(user)

    def all(self) -> list[UserInfo]:
        with self.db.session() as s:
            return [_info(u) for u in s.scalars(select(m.User).order_by(m.User.name))]

    def get(self, name: str) -> UserInfo:
        with self.db.session() as s:
            return _info(_find(s, name))

    def disable(self, name: str) -> UserInfo:
        """Disable the user: every token of theirs stops working with the next request."""
        with self.db.session() as s:
            user = _find(s, name)
            if user.disabled_at is None:
                user.disabled_at = datetime.now(UTC)
            return _info(user)

    def enable(self, name: str) -> UserInfo:
        with self.db.session() as s:
            user = _find(s, name)
            user.disabled_at = None
            return _info(user)

    def grant(
        self,
        name: str,
        *,
        roles: Sequence[str] = (),
        departments: Sequence[str] = (),
    ) -> UserInfo:
        new_roles = {check_role(r).value for r in roles}
        new_departments = {check_department(d) for d in departments}
        with self.db.session() as s:
            user = _find(s, name)
            held = {r.role for r in user.roles}
            user.roles.extend(m.UserRole(role=r) for r in sorted(new_roles - held))
            member = {d.department for d in user.departments}
            user.departments.extend(
                m.UserDepartment(department=d) for d in sorted(new_departments - member)
            )
            s.flush()
            return _info(user)

    def revoke(
        self,
        name: str,
        *,
        roles: Sequence[str] = (),
        departments: Sequence[str] = (),
    ) -> UserInfo:
        gone_roles = {check_role(r).value for r in roles}
        gone_departments = set(departments)
        with self.db.session() as s:
            user = _find(s, name)
            user.roles = [r for r in user.roles if r.role not in gone_roles]
            user.departments = [d for d in user.departments if d.department not in gone_departments]
            s.flush()
            return _info(user)

    def set_password(self, name: str, password: str) -> None:
        with self.db.session() as s:
            _find(s, name).password_hash = hash_password(password)

    def sign_in(self, name: str, password: str) -> Principal:
        """The principal of a user whose password matches; AuthError otherwise (same words)."""
        with self.db.session() as s:
            user = s.scalar(select(m.User).where(m.User.name == name))
            if user is None or not password_matches(password, user.password_hash):
                raise AuthError("the user name or password is wrong.")
            return principal_of(user)

    def principal(self, name: str) -> Principal:
        """The principal of user ``name`` now; AuthError when the user is gone or disabled."""
        with self.db.session() as s:
            user = s.scalar(select(m.User).where(m.User.name == name))
            if user is None:
                raise AuthError(f"user {name!r} no longer exists.")
            return principal_of(user)


def _find(s: Session, name: str) -> m.User:
    user = s.scalar(select(m.User).where(m.User.name == name))
    if user is None:
        raise NotFoundError(f"no user named {name!r}; see 'corral user list'.")
    return user


def _info(user: m.User) -> UserInfo:
    return UserInfo(
        name=user.name,
        email=user.email,
        roles=sorted(r.role for r in user.roles),
        departments=sorted(d.department for d in user.departments),
        has_password=user.password_hash is not None,
        created_at=user.created_at,
        disabled_at=user.disabled_at,
    )


@dataclass(frozen=True, slots=True)
class Login:
    user: str
    role: str
    department: str
    #: For the dashboard's sign-in form; made fresh on every run and shown once.
    password: str
    #: For the REST API (and the dashboard's token field).
    token: str


def one_user_per_role(users: UserService, tokens: TokenStore, department: str) -> list[Login]:
    """``demo-<role>`` users of ``department`` with a fresh token each (the demo's logins)."""
    logins = []
    for role in Role:
        name = f"demo-{role.value}"
        try:
            users.add(name, roles=[role.value], departments=[department])
        except ConflictError:  # an earlier run made them
            users.enable(name)
        password = secrets.token_urlsafe(12)
        users.set_password(name, password)
        token = tokens.create_or_rotate(f"{name}-token", name)
        logins.append(Login(name, role.value, department, password, token))
    return logins
