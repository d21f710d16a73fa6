"""Where Corral keeps its files and which database it uses, from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    database_url: str

    @property
    def secret_key_path(self) -> Path:
        return self.home / "secret.key"

    @property
    def demo_dir(self) -> Path:
        return self.home / "demo"


def load_settings() -> Settings:
    """CORRAL_HOME (default ~/.corral) and CORRAL_DATABASE_URL (default a SQLite file in it)."""
    home = Path(os.environ.get("CORRAL_HOME") or Path.home() / ".corral").expanduser()
    url = os.environ.get("CORRAL_DATABASE_URL") or f"sqlite:///{home / 'corral.db'}"
    return Settings(home=home, database_url=url)
