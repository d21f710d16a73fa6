"""Encrypt host credentials at rest with a key that lives outside the database.

The key comes from the ``secret_key`` setting ($CORRAL_SECRET_KEY) or a 0600 file
(``secret_key_file``, default in Corral's home), created on first use. A stolen database alone
reveals no password; keep the key out of the database's backups (put the file elsewhere with
$CORRAL_SECRET_KEY_FILE).
"""

from __future__ import annotations

import os

from cryptography.fernet import Fernet, InvalidToken

from corral.config import Settings, ensure_private_dir
from corral.errors import ConfigError


class SecretBox:
    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError:
            raise ConfigError(
                "the secret key is not a valid Fernet key (32 url-safe base64 bytes)."
            ) from None

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        if settings.secret_key is not None:
            return cls(settings.secret_key.value.encode())
        key_path = settings.secret_key_path
        if not key_path.exists():
            ensure_private_dir(key_path.parent)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
        return cls(key_path.read_bytes().strip())

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise ConfigError(
                "a stored credential cannot be decrypted with this secret key; "
                "re-add the host with its password."
            ) from None
