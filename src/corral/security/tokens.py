"""API bearer tokens: random, shown once, stored as a salted hash.

A token looks like ``crl_<prefix>_<secret>``; the prefix finds the row, the
hash of the whole token (PBKDF2-free: the secret has 256 bits of entropy, so a
single SHA-256 is enough and keeps verification fast) is compared in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NewToken:
    prefix: str
    token: str
    token_hash: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> NewToken:
    prefix = secrets.token_hex(4)
    token = f"crl_{prefix}_{secrets.token_urlsafe(32)}"
    return NewToken(prefix=prefix, token=token, token_hash=hash_token(token))


def split_prefix(token: str) -> str | None:
    parts = token.split("_")
    if len(parts) < 3 or parts[0] != "crl" or len(parts[1]) != 8:
        return None
    return parts[1]


def matches(token: str, token_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), token_hash)
