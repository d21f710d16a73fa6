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
      options: {ip: 10.0.0.5, username: admin, password: secret, lanplus: "1"}
      timeout_s: 60
```

A host without fence methods cannot be fenced, so it is never recovered from (an alert).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral import safeload
from corral.config import Settings
from corral.engines.ha_manager import ManagerConfig, Policy
from corral.errors import ConfigError, NotFoundError
from corral.hypervisor.fence import FenceMethod, make_fence_method

#: Timing that is a setting (CORRAL_HA_*), not a policy-file key.
_FROM_SETTINGS = frozenset({"grace_s", "check_interval_s"})


@dataclass(frozen=True)
class HAPolicyFile:
    config: ManagerConfig
    policy: Policy
    #: host -> method name -> the plugin made for that host
    fences: Mapping[str, Mapping[str, FenceMethod]]
    heartbeat_dir: Path | None = None


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
        made = {str(m["name"]): _method(str(host), m) for m in methods or ()}
        fences[str(host)] = made
        order[str(host)] = tuple(made)
    beat = data.get("heartbeat_dir")
    policy = Policy(depends_on=depends, fence_methods=order)
    return HAPolicyFile(config, policy, fences, Path(beat) if beat else None)


def _method(host: str, spec: Any) -> FenceMethod:
    if not isinstance(spec, Mapping) or "name" not in spec or "method" not in spec:
        raise ConfigError(f"A fence method of host {host} needs a name and a method.")
    params = {k: v for k, v in spec.items() if k not in ("name", "method")}
    try:
        return make_fence_method(str(spec["method"]), **params)
    except TypeError as exc:
        raise ConfigError(f"Fence method {spec['name']!r} of host {host}: {exc}.") from None
