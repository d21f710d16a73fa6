"""The polling schedule: every host has its own slot in the cycle, read once per cycle.

Times are seconds (any epoch); the service converts. Hosts are spread evenly over the cycle
by the rank of a stable hash of their name, each jittered inside its own slot of ``cycle/n``
seconds: 10,000 hosts never fire at once, any window of ``w`` seconds holds at most
``ceil(w * n / cycle) + 1`` of them, and a host keeps roughly the same phase when others are
added or removed (its rank moves by the few hosts that changed around it).

A host read on time at its due time ``d`` is next due at ``d + cycle``; one read late is
next due at its next slot after the read, so the gap between two scheduled reads never
exceeds a cycle and the phase never drifts.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping


def _hash(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big")


def phases(names: Iterable[str], cycle_s: float) -> dict[str, float]:
    """Each host's offset in ``[0, cycle_s)``: slot by hash rank, jitter inside the slot."""
    ranked = sorted(set(names), key=lambda n: (_hash(n), n))
    if not ranked:
        return {}
    width = cycle_s / len(ranked)
    out: dict[str, float] = {}
    for i, name in enumerate(ranked):
        jitter = (_hash("jitter:" + name) % 1_000_000) / 1_000_000  # in [0, 1)
        out[name] = (i + jitter) * width
    return out


def next_due(phase: float, after: float, cycle_s: float) -> float:
    """The host's first slot (``phase + k * cycle_s``) strictly after ``after``.

    A time within a billionth of a cycle of a slot counts as that slot: a read at its due
    time, recomputed in floating point, must not find the same slot again a hair later.
    """
    k = math.floor((after - phase) / cycle_s + 1e-9) + 1
    due = phase + k * cycle_s
    while due <= after:  # floating-point rounding at the boundary
        due += cycle_s
    return due


def is_overdue(last_read: float | None, registered: float, now: float, cycle_s: float) -> bool:
    """Not read within the last cycle (a new host: not read within a cycle of registering)."""
    since = registered if last_read is None else last_read
    return now - since > cycle_s


def host_fingerprint(facts: str, vms: Mapping[str, str], storage: str) -> str:
    """One hash over what a read saw of a host: its facts, each VM's fingerprint, its storage.

    Equal fingerprints mean the inventory would not change, so the database work is skipped.
    """
    digest = hashlib.blake2b(digest_size=16)
    for part in (facts, storage, *(f"{u}={fp}" for u, fp in sorted(vms.items()))):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()
