"""The live HA manager's policy file: fence methods per host, dependencies, limits.

```yaml
config:                 # ManagerConfig fields except grace_s / check_interval_s (settings)
  fence_timeout_s: 60
depends_on:             # a VM starts after the VMs it needs
  app: [db]
heartbeat_dir: /shared/ha-heartbeat    # optional: hosts touch <dir>/<host>
fence:
  host1:
    - name: power                      # as named in events and the policy
      method: agent                    # a registered fence plugin (hypervisor/fence)
      command: [/usr/sbin/fence_ipmilan]
      options:
        ip: 10.0.0.5
        username: admin
        password: {file: /etc/corral/ipmi-host1.pass}   # or {encrypted: TOKEN}
        lanplus: "1"
      timeout_s: 60
migration:              # maintenance: live migration off a host (corral ha maintenance)
  uri: tcp://10.0.0.0   # optional: where QEMU's stream goes (VIR_MIGRATE_PARAM_URI)
  unsafe: false         # true: shared disks libvirt cannot recognise as shared
  max_parallel: 2       # migrations at once
  bandwidth_mib_s: 500  # optional: a cap per migration stream (MiB/s)
  timeout_s: 300        # per migration
drills:                 # corral ha drill: only these hosts may be failed on purpose
  allow: [host3]        # or "*"
  rto_s: 60             # recovery time objective per VM (seconds after the kill) ...
  rto: {db: 30}         # ... or per VM
  timeout_s: 300        # how long a drill waits for the recovery
  schedule:             # optional: the leading `corral ha run` drills by itself
    every_h: 168        # one drill per this many hours, fleet-wide, allowed hosts in turn
    hours_utc: [2, 3]   # optional: only starting in these UTC hours
```

A host without fence methods cannot be fenced, so it is never recovered from (an alert).
A fence option whose name says it is a secret (password, key, token...) is never written
in the file in clear: it is ``{file: PATH}`` (read when the policy is loaded; the file must
not be readable by group or others) or ``{encrypted: TOKEN}`` (made by ``corral ha
encrypt-secret`` with Corral's secret key, see corral.security.secrets).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral import safeload
from corral.config import Settings
from corral.engines.ha_manager import ManagerConfig, Policy
from corral.engines.ha_manager.drill_schedule import DrillSchedule
from corral.errors import ConfigError, NotFoundError
from corral.hypervisor.fence import FenceMethod, make_fence_method
from corral.services import fence_secrets

#: Timing that is a setting (CORRAL_HA_*), not a policy-file key.
_FROM_SETTINGS = frozenset({"grace_s", "check_interval_s"})


@dataclass(frozen=True)
class MigrationPolicy:
    """How maintenance live-migrates (every field has a default)."""

    uri: str | None = None
    unsafe: bool = False
    max_parallel: int = 2
    timeout_s: float = 300.0
    bandwidth_mib_s: int | None = None


@dataclass(frozen=True)
class DrillPolicy:
    """Which hosts a drill may fail on purpose, and the recovery time each VM must meet."""

    allow: frozenset[str] = frozenset()
    allow_all: bool = False
    rto_s: float = 60.0
    rto: Mapping[str, float] = field(default_factory=dict)
    timeout_s: float = 300.0
    #: None: drills only when asked (corral ha drill)
    schedule: DrillSchedule | None = None

    def allows(self, host: str) -> bool:
        return self.allow_all or host in self.allow

    def rto_of(self, vm: str) -> float:
        return self.rto.get(vm, self.rto_s)


@dataclass(frozen=True)
class HAPolicyFile:
    config: ManagerConfig
    policy: Policy
    #: host -> method name -> the plugin made for that host
    fences: Mapping[str, Mapping[str, FenceMethod]]
    heartbeat_dir: Path | None = None
    migration: MigrationPolicy = MigrationPolicy()
    drills: DrillPolicy = DrillPolicy()


def load_policy(settings: Settings) -> HAPolicyFile:
    """The policy of ``settings.ha_policy`` (none: no fencing, so nothing is recovered)."""
    data: Any = {}
    path = settings.ha_policy
    if path is not None:
        if not path.is_file():
            raise NotFoundError(f"HA policy file {path} does not exist; check CORRAL_HA_POLICY.")
        data = safeload.load_file(path, "HA policy file", ConfigError) or {}
    if not isinstance(data, Mapping):
        raise ConfigError("The HA policy file must be a mapping; see docs/ha-manager.md.")
    return parse_policy(data, settings)


def parse_policy(data: Mapping[str, Any], settings: Settings) -> HAPolicyFile:
    raw_config = dict(data.get("config") or {})
    clash = sorted(_FROM_SETTINGS & set(raw_config))
    if clash:
        settings_names = "CORRAL_HA_GRACE / CORRAL_HA_CHECK_INTERVAL"
        raise ConfigError(f"Set {', '.join(clash)} with {settings_names}, not in the file.")
    raw_config.update(grace_s=settings.ha_grace_s, check_interval_s=settings.ha_check_interval_s)
    try:
        config = ManagerConfig.from_mapping(raw_config)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"HA policy config: {exc}.") from None
    raw_depends = data.get("depends_on") or {}
    depends = {str(k): tuple(str(d) for d in v or ()) for k, v in raw_depends.items()}
    fences: dict[str, dict[str, FenceMethod]] = {}
    order: dict[str, tuple[str, ...]] = {}
    for host, methods in (data.get("fence") or {}).items():
        made = {str(m["name"]): _method(str(host), m, settings) for m in methods or ()}
        fences[str(host)] = made
        order[str(host)] = tuple(made)
    beat = data.get("heartbeat_dir")
    policy = Policy(depends_on=depends, fence_methods=order)
    return HAPolicyFile(
        config,
        policy,
        fences,
        Path(beat) if beat else None,
        _migration(data.get("migration") or {}),
        _drills(data.get("drills") or {}),
    )


def _migration(raw: Any) -> MigrationPolicy:
    if not isinstance(raw, Mapping):
        raise ConfigError("HA policy 'migration' must be a mapping; see docs/ha-manager.md.")
    try:
        return MigrationPolicy(
            uri=str(raw["uri"]) if raw.get("uri") else None,
            unsafe=bool(raw.get("unsafe", False)),
            max_parallel=max(1, int(raw.get("max_parallel", 2))),
            timeout_s=float(raw.get("timeout_s", 300.0)),
            bandwidth_mib_s=int(raw["bandwidth_mib_s"]) if raw.get("bandwidth_mib_s") else None,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"HA policy 'migration': {exc}.") from None


def _drills(raw: Any) -> DrillPolicy:
    if not isinstance(raw, Mapping):
        raise ConfigError("HA policy 'drills' must be a mapping; see docs/ha-manager.md.")
    allow = raw.get("allow") or []
    try:
        return DrillPolicy(
            allow=frozenset(str(h) for h in allow) if allow != "*" else frozenset(),
            allow_all=allow == "*",
            rto_s=float(raw.get("rto_s", 60.0)),
            rto={str(k): float(v) for k, v in (raw.get("rto") or {}).items()},
            timeout_s=float(raw.get("timeout_s", 300.0)),
            schedule=_schedule(raw.get("schedule")),
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"HA policy 'drills': {exc}.") from None


def _schedule(raw: Any) -> DrillSchedule | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or "every_h" not in raw:
        raise ConfigError("HA policy 'drills.schedule' needs every_h (hours between drills).")
    every_h = float(raw["every_h"])
    hours = frozenset(int(h) for h in raw.get("hours_utc") or ())
    if every_h <= 0 or not hours <= frozenset(range(24)):
        raise ConfigError("HA policy 'drills.schedule': every_h > 0, hours_utc within 0-23.")
    return DrillSchedule(every_s=every_h * 3600, hours_utc=hours)


def _method(host: str, spec: Any, settings: Settings) -> FenceMethod:
    if not isinstance(spec, Mapping) or "name" not in spec or "method" not in spec:
        raise ConfigError(f"A fence method of host {host} needs a name and a method.")
    params = {k: v for k, v in spec.items() if k not in ("name", "method")}
    if isinstance(params.get("options"), Mapping):
        where = f"fence method {spec['name']!r} of host {host}"
        params["options"] = fence_secrets.resolve(params["options"], settings, where)
    try:
        return make_fence_method(str(spec["method"]), **params)
    except TypeError as exc:
        raise ConfigError(f"Fence method {spec['name']!r} of host {host}: {exc}.") from None
