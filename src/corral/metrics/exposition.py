"""Latest values in the Prometheus text format (version 0.0.4), for ``GET /metrics``.

Families: ``corral_vm_<metric>{vm, host}`` and ``corral_host_<metric>{host}``
gauges, and Corral's own health per host: ``corral_collect_up``,
``corral_collect_lag_seconds`` (how long the last read took),
``corral_collect_age_seconds`` (how old the newest sample is) and the counter
``corral_collect_errors_total``. Percentages are exposed as ratios (0..1), as
Prometheus naming asks for base units.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from corral.metrics.catalog import BY_NAME
from corral.metrics.model import EntityKind, Latest


def exposed_name(kind: EntityKind, metric: str) -> tuple[str, float]:
    """The Prometheus family name of a stored metric, and the factor applied to its value."""
    scale = 1.0
    name = metric
    if name.endswith("_pct"):
        name, scale = name[: -len("_pct")] + "_ratio", 0.01
    if name.endswith("_per_s"):
        name = name[: -len("_per_s")] + "_per_second"
    if name.endswith("_iops"):
        name = name[: -len("_iops")] + "_operations_per_second"
    if kind is EntityKind.collector:
        return f"corral_{name}", scale
    name = name.removeprefix("host_")
    return f"corral_{kind.value}_{name}", scale


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(x: Latest) -> str:
    pairs: tuple[tuple[str, str], ...]
    if x.kind is EntityKind.vm:
        pairs = (("vm", x.entity), ("host", x.host))
    else:
        pairs = (("host", x.entity),)
    return ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)


def _num(v: float) -> str:
    return repr(float(v))


def render(latest: Sequence[Latest], now: float) -> str:
    """The exposition text of the newest values (and the collector's health)."""
    families: dict[str, list[str]] = defaultdict(list)
    helps: dict[str, tuple[str, str]] = {}
    for x in latest:
        name, scale = exposed_name(x.kind, x.metric)
        info = BY_NAME.get(x.metric)
        kind = "counter" if name.endswith("_total") else "gauge"
        helps[name] = (info.help if info else x.metric, kind)
        families[name].append(f"{name}{{{_labels(x)}}} {_num(x.value * scale)}")
    _add_age(latest, now, families, helps)
    out: list[str] = []
    for name in sorted(families):
        help_text, kind = helps[name]
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(sorted(families[name]))
    return "\n".join(out) + "\n"


def _add_age(
    latest: Iterable[Latest],
    now: float,
    families: dict[str, list[str]],
    helps: dict[str, tuple[str, str]],
) -> None:
    newest: dict[str, int] = {}
    for x in latest:
        if x.kind is EntityKind.collector and x.metric == "collect_up" and x.value == 1.0:
            newest[x.entity] = max(newest.get(x.entity, 0), x.ts)
    if not newest:
        return
    name = "corral_collect_age_seconds"
    helps[name] = ("seconds since the newest successful read of this host", "gauge")
    for host, ts in newest.items():
        families[name].append(f'{name}{{host="{_escape(host)}"}} {_num(max(0.0, now - ts))}')
