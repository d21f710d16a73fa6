"""Settings: one object, read once, each value with its source; secrets never shown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from corral.config import Settings, Source, describe, load_settings
from corral.errors import ConfigError


def test_precedence_default_file_environment_flag(tmp_path: Path) -> None:
    (tmp_path / "corral.toml").write_text('mail_from = "file@example.test"\nhost_timeout_s = 7\n')
    env = {"CORRAL_HOME": str(tmp_path), "CORRAL_HOST_TIMEOUT": "9"}
    s = load_settings(env, flags={"mail_domain": "flag.test"})
    assert s.mail_from == "file@example.test" and s.sources["mail_from"] is Source.FILE
    assert s.host_timeout_s == 9.0 and s.sources["host_timeout_s"] is Source.ENVIRONMENT
    assert s.mail_domain == "flag.test" and s.sources["mail_domain"] is Source.FLAG
    assert s.database_url == f"sqlite:///{tmp_path / 'corral.db'}"
    assert s.sources["database_url"] is Source.DEFAULT
    assert s.metrics_url == f"duckdb://{tmp_path / 'metrics.duckdb'}"


def test_secrets_are_redacted(tmp_path: Path) -> None:
    env = {
        "CORRAL_HOME": str(tmp_path),
        "CORRAL_SECRET_KEY": "very-secret-key",
        "CORRAL_SMTP_PASSWORD": "hunter2",
        "CORRAL_DATABASE_URL": "postgresql://corral:dbpass@db.example/corral",
    }
    s = load_settings(env)
    text = repr(s) + json.dumps([vars_of(x) for x in describe(s)])
    for secret in ("very-secret-key", "hunter2", "dbpass"):
        assert secret not in text
    assert s.secret_key is not None and s.secret_key.value == "very-secret-key"


def vars_of(shown: object) -> dict[str, object]:
    return {k: str(getattr(shown, k)) for k in ("name", "value", "source", "env")}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("nonsense = 1\n", "unknown setting"),
        ("home = [1, 2]\n", "single value"),
        ("this is not toml", "not valid TOML"),
        ("host_timeout_s = -3\n", "positive"),
    ],
)
def test_bad_settings_file_is_one_clear_error(tmp_path: Path, content: str, words: str) -> None:
    (tmp_path / "corral.toml").write_text(content)
    with pytest.raises(ConfigError, match=words):
        load_settings({"CORRAL_HOME": str(tmp_path)})


def test_with_values_marks_flags(tmp_path: Path) -> None:
    s = Settings(home=tmp_path).with_values(base_url="https://corral.example")
    assert s.base_url == "https://corral.example" and s.sources["base_url"] is Source.FLAG
    with pytest.raises(ConfigError):
        s.with_values(nope=1)


def test_config_show_cli_names_source_and_redacts(tmp_path: Path) -> None:
    env = {
        "CORRAL_HOME": str(tmp_path / "h"),
        "CORRAL_SMTP_PASSWORD": "hunter2",
        "CORRAL_COST_MODEL": str(tmp_path / "m.yaml"),
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "corral",
            "--home",
            str(tmp_path / "f"),
            "config",
            "show",
            "-o",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["home"]["source"] == "flag" and rows["home"]["value"] == str(tmp_path / "f")
    assert rows["cost_model"]["source"] == "environment"
    assert rows["smtp_password"]["value"] == "********"
    assert "hunter2" not in out
