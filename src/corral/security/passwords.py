"""Users' passwords: argon2id hashes (argon2-cffi), never the password itself."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from corral.errors import ValidationError

_hasher = PasswordHasher()
MIN_LENGTH = 12


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise ValidationError(
            f"a password has at least {MIN_LENGTH} characters; choose a longer one."
        )
    return _hasher.hash(password)


def password_matches(password: str, password_hash: str | None) -> bool:
    """True when ``password`` is the one hashed; False for no hash or a wrong password."""
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
