"""Every transition of the manager is an event; some events are alerts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Event kinds a person must hear about (they go to the notifications).
ALERTS = frozenset(
    {
        "host_isolated",
        "host_flapping",
        "host_unfenceable",
        "fencing_held",
        "vm_not_recovered",
    }
)


@dataclass(frozen=True)
class Event:
    t: float
    kind: str
    host: str | None = None
    vm: str | None = None
    detail: str = ""

    @property
    def alert(self) -> bool:
        return self.kind in ALERTS

    def line(self) -> str:
        """One fixed-width line: the unit of the simulator's expected logs."""
        t = f"{self.t:g}"
        return f"{t:>6} {self.kind:<22} {self.host or '-':<6} {self.vm or '-':<10} {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "kind": self.kind,
            "host": self.host,
            "vm": self.vm,
            "detail": self.detail,
            "alert": self.alert,
        }
