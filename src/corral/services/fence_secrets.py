"""Fence-agent secrets in the HA policy file: referenced, never written in clear.

An option whose name says it is a secret (the same names the agent plugin blanks in its
error lines) must be ``{file: PATH}`` — a file readable by its owner only, read when the
policy is loaded — or ``{encrypted: TOKEN}``, sealed with Corral's SecretBox (the key
lives outside the database and the policy file). A clear value is refused, so a copied
policy file, a backup of it, or a diff in review never shows a password. The clear value
exists only in memory and on the agent's stdin.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from corral.config import Settings
from corral.errors import ConfigError
from corral.hypervisor.fence.agent import is_secret_option
from corral.security.secrets import SecretBox


def resolve(options: Mapping[str, Any], settings: Settings, where: str) -> dict[str, str]:
    """``options`` with every secret reference replaced by its value (for the agent only)."""
    out: dict[str, str] = {}
    box: SecretBox | None = None
    for key, value in options.items():
        if isinstance(value, Mapping):
            if "encrypted" in value:
                box = box or SecretBox.from_settings(settings)
                out[str(key)] = box.decrypt(str(value["encrypted"]).encode())
            elif "file" in value:
                out[str(key)] = _read(Path(str(value["file"])), f"{where}, option {key}")
            else:
                raise ConfigError(
                    f"{where}, option {key}: use {{file: PATH}} or {{encrypted: TOKEN}}."
                )
        elif is_secret_option(str(key)):
            raise ConfigError(
                f"{where}, option {key} holds a secret in clear; write it as {{file: PATH}} "
                "or {encrypted: TOKEN} (corral ha encrypt-secret)."
            )
        else:
            out[str(key)] = str(value)
    return out


def seal(plaintext: str, settings: Settings) -> str:
    """The ``{encrypted: TOKEN}`` token of ``plaintext`` under Corral's secret key."""
    return SecretBox.from_settings(settings).encrypt(plaintext).decode()


def _read(path: Path, where: str) -> str:
    try:
        info = path.stat()
    except OSError:
        raise ConfigError(f"{where}: secret file {path} cannot be read; check the path.") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{where}: secret file {path} is open to others; chmod 600 it.")
    return path.read_text().rstrip("\r\n")
