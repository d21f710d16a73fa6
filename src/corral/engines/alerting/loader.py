"""Alert rules as data: read a rules file (YAML through corral.safeload) into rule objects.

The file holds ``group_by`` (labels that make a group, default ``[host]``), ``rules`` (each a
``name``, a ``kind`` from ``KINDS``, optional ``for``, ``severity`` and ``labels``, and the
kind's own parameters) and ``channels`` (checked by corral.notify.channels; kept as data here,
since an engine does not know how messages travel). Every mistake is one ConfigError naming
the rule and the key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from corral import safeload
from corral.engines.alerting.kinds import KINDS, Common, Rule, seconds
from corral.engines.alerting.model import Severity
from corral.errors import ConfigError

EXAMPLE = "example_rules.yaml"
DEMO = "demo_rules.yaml"
_COMMON_KEYS = {"name", "kind", "for", "severity", "labels"}


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    group_by: tuple[str, ...] = ("host",)
    channels: tuple[Mapping[str, Any], ...] = ()

    @property
    def commons(self) -> dict[str, Common]:
        return {r.name: r.common for r in self.rules}


def example_text() -> str:
    """The shipped example rules file (documented in its comments)."""
    return (resources.files("corral.engines.alerting") / EXAMPLE).read_text("utf-8")


def demo_text() -> str:
    """The demo's rules (``corral demo`` evaluates them on its replayed history)."""
    return (resources.files("corral.engines.alerting") / DEMO).read_text("utf-8")


def load_rules(path: Path | None) -> RuleSet:
    """The rules in ``path``, or the shipped example when ``path`` is None."""
    if path is None:
        return parse_rules(example_text(), "the example alert rules")
    return build(safeload.load_file(path, "alert rules", ConfigError), f"alert rules {path}")


def parse_rules(text: str, source: str = "alert rules") -> RuleSet:
    return build(safeload.parse_yaml(text, source, ConfigError), source)


def build(data: Any, source: str) -> RuleSet:
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a mapping with 'rules:'; see the example.")
    unknown = set(data) - {"group_by", "rules", "channels"}
    if unknown:
        raise ConfigError(f"{source} has unknown keys {sorted(unknown)}; remove them.")
    rules = [_rule(r, i, source) for i, r in enumerate(_list(data, "rules", source))]
    names = [r.name for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{source}: rule names must be unique; {dupes} repeat.")
    group_by = data.get("group_by", ["host"])
    if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
        raise ConfigError(f"{source}: group_by must be a list of label names.")
    channels = _list(data, "channels", source)
    if not all(isinstance(c, dict) for c in channels):
        raise ConfigError(f"{source}: each channel must be a mapping with 'name' and 'type'.")
    return RuleSet(tuple(rules), tuple(group_by), tuple(channels))


def _list(data: Mapping[str, Any], key: str, source: str) -> Sequence[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise ConfigError(f"{source}: '{key}' must be a list.")
    return value


def _rule(raw: Any, index: int, source: str) -> Rule:
    where = f"{source}, rule {index + 1}"
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise ConfigError(f"{where} must be a mapping with a 'name'.")
    where = f"{source}, rule {raw['name']!r}"
    kind = KINDS.get(str(raw.get("kind")))
    if kind is None:
        raise ConfigError(f"{where}: 'kind' must be one of {sorted(KINDS)}.")
    try:
        common = Common(
            name=raw["name"],
            for_s=seconds(raw.get("for", 0)),
            severity=Severity(raw.get("severity", "warning")),
            labels={str(k): str(v) for k, v in (raw.get("labels") or {}).items()},
        )
        params = kind.params_model.model_validate(
            {k: v for k, v in raw.items() if k not in _COMMON_KEYS}
        )
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{where}: {key}: {first['msg']}.") from None
    except (ValueError, AttributeError) as exc:
        raise ConfigError(f"{where}: {safeload.excerpt(str(exc))}.") from None
    return kind(common, params)
