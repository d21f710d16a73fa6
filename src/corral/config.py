"""Corral's settings: read once per process, passed down, each value with where it came from.

Precedence, lowest to highest: the built-in default, the settings file (TOML: ``$CORRAL_CONFIG``,
else ``$CORRAL_HOME/corral.toml`` when it exists), the environment (``CORRAL_*``), then flags
given on the command line. ``corral config show`` prints the effective values and their source,
secrets redacted. Nothing else in Corral reads the environment for its settings.

Every field is declared once in ``FIELDS`` (name, environment variable, kind, default, whether it
is secret, what it is for); ``Settings`` is the typed, frozen result.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from corral.errors import ConfigError

MAX_SETTINGS_FILE_BYTES = 256 * 1024


class Source(StrEnum):
    """Where an effective setting came from."""

    DEFAULT = "default"
    FILE = "file"
    ENVIRONMENT = "environment"
    FLAG = "flag"


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret value that never prints itself."""

    value: str = field(repr=False)

    def __str__(self) -> str:
        return "********"

    def __repr__(self) -> str:
        return "Secret('********')"


@dataclass(frozen=True, slots=True, repr=False)
class Settings:
    """The effective settings; build with ``load_settings`` (or directly in tests)."""

    home: Path
    database_url: str = ""
    metrics_url: str = ""
    cost_model: Path | None = None
    reclaim_policy: Path | None = None
    request_rules: Path | None = None  # approval rules for VM requests (None: shipped default)
    secret_key: Secret | None = None
    secret_key_file: Path | None = None
    node_dir: Path | None = None
    #: the only folder on the hosts direct-boot kernels and initrds may be read from
    boot_dir: Path | None = None
    ssh_keyfile: Path | None = None
    ssh_known_hosts: Path | None = None
    host_timeout_s: float = 15.0
    smtp_url: str | None = None
    smtp_user: str | None = None
    smtp_password: Secret | None = None
    mail_from: str = "corral@localhost"
    mail_domain: str | None = None
    mail_fallback: str | None = None
    base_url: str | None = None
    api_max_body_bytes: int = 1024 * 1024
    shared_data: Path | None = None
    backup_policy: Path | None = None
    # -- the live HA manager (corral ha run) --
    ha_policy: Path | None = None
    ha_grace_s: float = 30.0
    ha_check_interval_s: float = 5.0
    ha_alert_to: str | None = None
    #: where scheduled drills write their reports, drill-ID.html and .json
    #: (default: $CORRAL_HOME/drills)
    ha_drill_reports: Path | None = None
    alert_rules: Path | None = None
    #: seconds between two rounds of the alert evaluation loop (corral alerts run, the server)
    alert_interval_s: float = 60.0
    #: the API server (corral serve) runs the alert evaluation loop in the background
    alert_loop_in_server: bool = False
    #: the backup repository's folder (default: $CORRAL_HOME/backups)
    backup_repository: Path | None = None
    #: a new full backup after this many incrementals in a chain
    backup_full_every: int = 7
    #: restore tests the backup loop runs each round, one after another, of the VMs due by
    #: the policy's ``restore_test.every`` (0: none; the loop still cleans up killed tests)
    backup_loop_restore_tests: int = 1
    #: forensic evidence folder (default: $CORRAL_HOME/forensic); the shared secret of the
    #: intrusion-detection webhook (None: the webhook accepts nothing) and its replay window
    forensic_dir: Path | None = None
    forensic_webhook_secret: Secret | None = None
    forensic_webhook_max_age_s: int = 300
    forensic_retention_days: int = 90  # evidence older than this is deleted unless on hold
    #: fleet-wide analysis (sprawl, right-sizing): VMs per chunk, the Dask scheduler to run the
    #: chunks on (None: in this process) and the metric step in seconds (3600 or 86400: rollups)
    analysis_chunk_size: int = 1000
    analysis_scheduler: str | None = None
    analysis_step_s: int = 300
    #: seconds of history a diagnosis (one VM or the fleet) reads before the judged hour: the
    #: neighbours' usual CPU and the leak's daily trend come from it (a leak needs 3 days)
    diagnosis_history_s: int = 7 * 86400
    #: scale (issue 16): VM rows an export reads and writes per chunk (bounded memory); the
    #: API server's worker processes (None: one). More than one suits an API-only server: the
    #: dashboard's sign-in sessions live in one process's memory, so a browser would be signed
    #: in on one worker and not on the next
    export_chunk_size: int = 5000
    api_workers: int | None = None
    #: an approved VM request is provisioned at once (API: a job; CLI: in the command)
    provision_on_approval: bool = True
    #: governance policy YAML (issue 10 item 7): checked on requests and by 'corral policy check'
    governance_policy: Path | None = None
    #: sharded host polling (issue 16 item 3): every host is read once per cycle; each poller
    #: process keeps at most this many libvirt connections open; a process that dies leaves its
    #: hosts to the others after the lease
    poll_cycle_s: float = 300.0
    poll_max_connections: int = 32
    poll_lease_s: float = 60.0
    #: where each value came from (field name -> Source); filled by load_settings.
    sources: Mapping[str, Source] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        home = self.home
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{home / 'corral.db'}")
        if not self.metrics_url:
            object.__setattr__(self, "metrics_url", f"duckdb://{home / 'metrics.duckdb'}")
        if self.secret_key_file is None:
            object.__setattr__(self, "secret_key_file", home / "secret.key")
        if self.node_dir is None:
            object.__setattr__(self, "node_dir", home)

    def __repr__(self) -> str:
        shown = ", ".join(f"{line.name}={line.value!r}" for line in describe(self))
        return f"Settings({shown})"

    @property
    def secret_key_path(self) -> Path:
        assert self.secret_key_file is not None  # set in __post_init__
        return self.secret_key_file

    @property
    def node_files_dir(self) -> Path:
        """The only folder test-driver node files (``test:///path``) may be read from."""
        assert self.node_dir is not None  # set in __post_init__
        return self.node_dir

    @property
    def drill_reports_dir(self) -> Path:
        return self.ha_drill_reports or self.home / "drills"

    @property
    def demo_dir(self) -> Path:
        return self.home / "demo"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def reclaim_policy_path(self) -> Path:
        """The reclamation policy file: the setting, else ``$CORRAL_HOME/reclaim.yaml``."""
        return self.reclaim_policy or self.home / "reclaim.yaml"

    def with_values(self, **values: Any) -> Settings:
        """A copy with some values replaced (each marked as given by a flag)."""
        current = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sources"}
        sources = dict(self.sources)
        for name, value in values.items():
            if name not in current:
                raise ConfigError(f"unknown setting {name!r}.")
            current[name] = value
            sources[name] = Source.FLAG
        return Settings(**current, sources=sources)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One setting: its name, environment variable, how to parse it, and what it is for."""

    name: str
    env: str
    parse: Callable[[str], Any]
    help: str
    secret: bool = False


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{raw[:40]!r} is not a number.") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigError(f"{raw[:40]!r} must be a positive number.")
    return value


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{raw[:40]!r} is not a whole number.") from None
    if value <= 0:
        raise ConfigError(f"{raw[:40]!r} must be positive.")
    return value


def _count(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{raw[:40]!r} is not a whole number.") from None
    if value < 0:
        raise ConfigError(f"{raw[:40]!r} must be 0 or more.")
    return value


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
        raise ConfigError(f"{raw[:40]!r} must be 1 or 0 (true/false, yes/no, on/off).")
    return value in ("1", "true", "yes", "on")


def _secret(raw: str) -> Secret:
    return Secret(raw)


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("home", "CORRAL_HOME", _path, "folder for Corral's files (created 0700)"),
    FieldSpec("database_url", "CORRAL_DATABASE_URL", str, "inventory database URL"),
    FieldSpec("metrics_url", "CORRAL_METRICS_URL", str, "metrics store URL"),
    FieldSpec("cost_model", "CORRAL_COST_MODEL", _path, "cost model YAML (default: shipped)"),
    FieldSpec("reclaim_policy", "CORRAL_RECLAIM_POLICY", _path, "reclamation policy YAML"),
    FieldSpec("request_rules", "CORRAL_REQUEST_RULES", _path, "VM request approval rules YAML"),
    FieldSpec("secret_key", "CORRAL_SECRET_KEY", _secret, "Fernet key for credentials", True),
    FieldSpec("secret_key_file", "CORRAL_SECRET_KEY_FILE", _path, "file holding the Fernet key"),
    FieldSpec("node_dir", "CORRAL_NODE_DIR", _path, "the only folder for test:/// node files"),
    FieldSpec("boot_dir", "CORRAL_BOOT_DIR", _path, "the only folder for direct-boot kernels"),
    FieldSpec("ssh_keyfile", "CORRAL_SSH_KEYFILE", _path, "SSH private key for qemu+ssh hosts"),
    FieldSpec("ssh_known_hosts", "CORRAL_SSH_KNOWN_HOSTS", _path, "known_hosts for qemu+ssh"),
    FieldSpec("host_timeout_s", "CORRAL_HOST_TIMEOUT", _positive_float, "seconds a host may take"),
    FieldSpec("smtp_url", "CORRAL_SMTP_URL", str, "smtp://host:port[?starttls=1] or smtps://"),
    FieldSpec("smtp_user", "CORRAL_SMTP_USER", str, "SMTP login name"),
    FieldSpec("smtp_password", "CORRAL_SMTP_PASSWORD", _secret, "SMTP password", True),
    FieldSpec("mail_from", "CORRAL_MAIL_FROM", str, "sender address of Corral's mail"),
    FieldSpec("mail_domain", "CORRAL_MAIL_DOMAIN", str, "domain added to a bare owner name"),
    FieldSpec("mail_fallback", "CORRAL_MAIL_FALLBACK", str, "address for VMs with no owner"),
    FieldSpec("base_url", "CORRAL_BASE_URL", str, "address owners reach Corral's pages at"),
    FieldSpec("api_max_body_bytes", "CORRAL_API_MAX_BODY", _positive_int, "largest API body"),
    FieldSpec("shared_data", "CORRAL_SHARED_DATA", _path, "public traces (../shared/data)"),
    FieldSpec("backup_policy", "CORRAL_BACKUP_POLICY", _path, "backup policy YAML"),
    FieldSpec("ha_policy", "CORRAL_HA_POLICY", _path, "HA policy YAML: fence methods, order"),
    FieldSpec("ha_grace_s", "CORRAL_HA_GRACE", _positive_float, "seconds before a host is failed"),
    FieldSpec("ha_check_interval_s", "CORRAL_HA_CHECK_INTERVAL", _positive_float, "HA round s"),
    FieldSpec("ha_alert_to", "CORRAL_HA_ALERT_TO", str, "address of the HA alert mail"),
    FieldSpec("ha_drill_reports", "CORRAL_HA_DRILL_REPORTS", _path, "scheduled drill reports"),
    FieldSpec("alert_rules", "CORRAL_ALERT_RULES", _path, "alert rules and channels YAML"),
    FieldSpec("alert_interval_s", "CORRAL_ALERT_INTERVAL", _positive_float, "alert loop round s"),
    FieldSpec("alert_loop_in_server", "CORRAL_ALERT_LOOP", _flag, "serve evaluates alerts: 1/0"),
    FieldSpec("backup_repository", "CORRAL_BACKUP_REPOSITORY", _path, "restore points folder"),
    FieldSpec("backup_full_every", "CORRAL_BACKUP_FULL_EVERY", _positive_int, "incrementals/full"),
    FieldSpec(
        "backup_loop_restore_tests",
        "CORRAL_BACKUP_LOOP_RESTORE_TESTS",
        _count,
        "restore tests a backup loop round",
    ),
    FieldSpec("forensic_dir", "CORRAL_FORENSIC_DIR", _path, "forensic evidence folder"),
    FieldSpec("forensic_webhook_secret", "CORRAL_FORENSIC_SECRET", _secret, "IDS webhook", True),
    FieldSpec("forensic_webhook_max_age_s", "CORRAL_FORENSIC_MAX_AGE", _positive_int, "webhook s"),
    FieldSpec(
        "forensic_retention_days", "CORRAL_FORENSIC_RETENTION_DAYS", _positive_int, "evidence days"
    ),
    FieldSpec("analysis_chunk_size", "CORRAL_ANALYSIS_CHUNK", _positive_int, "VMs per chunk"),
    FieldSpec("analysis_scheduler", "CORRAL_ANALYSIS_SCHEDULER", str, "Dask scheduler address"),
    FieldSpec("analysis_step_s", "CORRAL_ANALYSIS_STEP", _positive_int, "300, 3600 or 86400"),
    FieldSpec("diagnosis_history_s", "CORRAL_DIAGNOSIS_HISTORY", _positive_int, "diagnosis s"),
    FieldSpec("export_chunk_size", "CORRAL_EXPORT_CHUNK", _positive_int, "VMs per export chunk"),
    FieldSpec("api_workers", "CORRAL_API_WORKERS", _positive_int, "API server processes"),
    FieldSpec("provision_on_approval", "CORRAL_PROVISION_ON_APPROVAL", _flag, "make approved VMs"),
    FieldSpec("governance_policy", "CORRAL_GOVERNANCE_POLICY", _path, "governance policy YAML"),
    FieldSpec("poll_cycle_s", "CORRAL_POLL_CYCLE", _positive_float, "seconds to re-read all hosts"),
    FieldSpec("poll_max_connections", "CORRAL_POLL_CONNECTIONS", _positive_int, "open per poller"),
    FieldSpec("poll_lease_s", "CORRAL_POLL_LEASE", _positive_float, "s a dead poller holds hosts"),
)
SPECS: dict[str, FieldSpec] = {spec.name: spec for spec in FIELDS}


def _read_file(path: Path) -> dict[str, str]:
    try:
        if path.stat().st_size > MAX_SETTINGS_FILE_BYTES:
            raise ConfigError(f"settings file {path} is larger than 256 KiB.")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror}.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"settings file {path} is not valid TOML: {str(exc)[:120]}") from None
    except RecursionError:
        raise ConfigError(f"settings file {path} nests too deeply; settings are flat.") from None
    values: dict[str, str] = {}
    for key, value in data.items():
        if key not in SPECS:
            known = ", ".join(SPECS)
            raise ConfigError(f"settings file {path}: unknown setting {key[:40]!r} ({known}).")
        if isinstance(value, dict | list):
            raise ConfigError(f"settings file {path}: {key} must be a single value.")
        values[key] = str(value)
    return values


def load_settings(
    env: Mapping[str, str] | None = None, flags: Mapping[str, Any] | None = None
) -> Settings:
    """The effective settings from defaults, the settings file, the environment and flags."""
    env = os.environ if env is None else env
    raw: dict[str, tuple[str, Source]] = {}
    home_raw = (flags or {}).get("home") or env.get("CORRAL_HOME") or str(Path.home() / ".corral")
    config_path = Path(env.get("CORRAL_CONFIG") or Path(home_raw).expanduser() / "corral.toml")
    if env.get("CORRAL_CONFIG") or config_path.is_file():
        for key, value in _read_file(config_path).items():
            raw[key] = (value, Source.FILE)
    for spec in FIELDS:
        from_env = env.get(spec.env)
        if from_env:
            raw[spec.name] = (from_env, Source.ENVIRONMENT)
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    for name, (text, source) in raw.items():
        spec = SPECS[name]
        try:
            values[name] = spec.parse(text)
        except ConfigError as exc:
            where = spec.env if source is Source.ENVIRONMENT else f"{name} in {config_path}"
            raise ConfigError(f"{where}: {exc.message}") from None
        sources[name] = source
    for name, value in (flags or {}).items():
        if value is None:
            continue
        values[name] = value
        sources[name] = Source.FLAG
    values.setdefault("home", Path(home_raw).expanduser())
    for spec in FIELDS:
        sources.setdefault(spec.name, Source.DEFAULT)
    return Settings(**values, sources=sources)


#: The process umask for every Corral entry point: files 0600, folders 0700. Corral's files hold
#: people's data (owners' addresses, history) and secrets, so nobody else on the machine reads them.
PRIVATE_UMASK = 0o077


def keep_files_private() -> None:
    """Make every file this process creates from now on readable by its owner only.

    Called once by each entry point (CLI, API server, demo), so files written by libraries
    Corral does not control (SQLite's -wal/-shm/-journal, DuckDB's files) are private too.
    """
    os.umask(PRIVATE_UMASK)


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) readable by its owner only; tighten an existing one."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


@dataclass(frozen=True, slots=True)
class ShownSetting:
    """One line of ``corral config show``."""

    name: str
    env: str
    value: str | None
    source: Source
    help: str


def describe(settings: Settings) -> list[ShownSetting]:
    """Every setting's effective value (secrets redacted) and where it came from."""
    shown = []
    for spec in FIELDS:
        value = getattr(settings, spec.name)
        if value is not None and spec.secret:
            text: str | None = "********"
        else:
            text = None if value is None else str(value)
            if text is not None and spec.name in ("database_url", "metrics_url", "smtp_url"):
                text = _redact_url(text)
        shown.append(
            ShownSetting(
                spec.name,
                spec.env,
                text,
                settings.sources.get(spec.name, Source.DEFAULT),
                spec.help,
            )
        )
    return shown


def _redact_url(url: str) -> str:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:********@{netloc}").geturl()
