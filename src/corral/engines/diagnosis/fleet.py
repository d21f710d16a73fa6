"""A fleet's diagnoses summed up in a few sentences a person reads at 10,000 VMs.

Why grouping by host x cause x onset: VMs starved by the same contention sit on the same host,
share its cause and start suffering within minutes of each other, so one sentence ("7 VMs on
kvm-03 slowed by host CPU contention since 14:05; cause: the 2 VMs of batch-etl") replaces
seven diagnoses. Each VM with a finding is counted once, under its most severe finding (the
cause the per-VM diagnosis names first). On one host and cause, VMs whose onsets lie within
``onset_gap`` of the previous one (sorted by onset) are one incident; a longer pause starts a
new one, so a contention that began at 02:00 and another at 14:00 stay apart.

The causing neighbours of a group are the culprits its members' findings name, kept when at
least ``culprit_quorum`` of the members name them (one VM's odd neighbour does not make the
sentence). When every culprit belongs to one unit or application, the sentence names it
("the 2 VMs of batch-etl"). Groups are ranked by impact: the sum of their members' severities
(how far each is over its threshold), so many VMs far over come first.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from corral.engines.diagnosis.causes import Cause, Diagnosis, Finding

PHRASES: dict[Cause, tuple[str, str]] = {  # (one VM, several VMs)
    Cause.host_cpu_contention: ("slowed by host CPU contention", "slowed by host CPU contention"),
    Cause.own_demand: ("at its own CPU limit", "at their own CPU limit"),
    Cause.memory_pressure: ("under memory pressure", "under memory pressure"),
    Cause.disk_saturation: ("slowed by the host's saturated disks", "slowed by saturated disks"),
    Cause.network_saturation: ("saturating its network link", "saturating their network links"),
    Cause.memory_leak: ("leaking memory", "leaking memory"),
}


@dataclass(frozen=True)
class FleetConfig:
    onset_gap: float = 1800.0  # seconds between onsets that still make one incident
    culprit_quorum: float = 0.5  # share of a group's members that must name a culprit
    named_vms: int = 3  # VMs a sentence names before "and N more"


DEFAULT_FLEET_CONFIG = FleetConfig()


@dataclass(frozen=True)
class FleetGroup:
    """VMs on one host with one cause that began together."""

    host: str
    cause: Cause
    since: float | None  # the earliest onset among the members (None: unknown)
    vms: tuple[str, ...]  # most severe first
    culprits: tuple[str, ...]  # the causing neighbours, most often named first
    impact: float  # the sum of the members' severities
    sentence: str
    exhaustion_at: float | None = None  # a leak group's earliest projected 100 %


@dataclass(frozen=True)
class FleetSummary:
    at: float
    window: float
    diagnosed: int  # VMs judged
    healthy: int  # VMs with no finding (in no group)
    groups: tuple[FleetGroup, ...] = field(default=())  # most impact first

    @property
    def affected(self) -> int:
        return sum(len(g.vms) for g in self.groups)


@dataclass(frozen=True)
class _Member:
    vm: str
    finding: Finding


def _incidents(members: list[_Member], gap: float) -> Iterable[list[_Member]]:
    """Members of one host and cause split where their sorted onsets pause longer than ``gap``
    (members without an onset form their own incident)."""
    unknown = [m for m in members if m.finding.since is None]
    timed = sorted((m for m in members if m.finding.since is not None), key=_onset)
    run: list[_Member] = []
    for m in timed:
        if run and _onset(m) - _onset(run[-1]) > gap:
            yield run
            run = []
        run.append(m)
    if run:
        yield run
    if unknown:
        yield unknown


def _onset(m: _Member) -> float:
    return m.finding.since if m.finding.since is not None else 0.0


def _culprits(members: list[_Member], quorum: float) -> tuple[str, ...]:
    counts = Counter(c for m in members for c in set(m.finding.culprits) - {m.vm})
    need = quorum * len(members)
    return tuple(c for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= need)


def _names(vms: tuple[str, ...], names: Mapping[str, str], most: int) -> str:
    shown = [names.get(v, v) for v in vms[:most]]
    more = len(vms) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _who_causes(
    culprits: tuple[str, ...], names: Mapping[str, str], units: Mapping[str, str], most: int
) -> str:
    owners = {units.get(c) for c in culprits}
    if len(owners) == 1 and None not in owners:
        unit = next(iter(owners))
        return f"the VM of {unit}" if len(culprits) == 1 else f"the {len(culprits)} VMs of {unit}"
    return _names(culprits, names, most)


def _when(ts: float) -> str:
    return f"{datetime.fromtimestamp(ts, UTC):%Y-%m-%d %H:%M} UTC"


def _sentence(
    group: FleetGroup, names: Mapping[str, str], units: Mapping[str, str], cfg: FleetConfig
) -> str:
    n = len(group.vms)
    who = names.get(group.vms[0], group.vms[0]) if n == 1 else f"{n} VMs"
    text = f"{who} on {group.host} {PHRASES[group.cause][n > 1]}"
    if group.since is not None:
        text += f" since {_when(group.since)}"
    if group.culprits:
        text += f"; cause: {_who_causes(group.culprits, names, units, cfg.named_vms)}"
    if group.exhaustion_at is not None:
        text += f"; first full by {datetime.fromtimestamp(group.exhaustion_at, UTC):%Y-%m-%d}"
    if n > 1:
        text += f" ({_names(group.vms, names, cfg.named_vms)})"
    return text


def _group(
    host: str,
    members: list[_Member],
    names: Mapping[str, str],
    units: Mapping[str, str],
    cfg: FleetConfig,
) -> FleetGroup:
    members = sorted(members, key=lambda m: (-m.finding.severity, m.vm))
    onsets = [m.finding.since for m in members if m.finding.since is not None]
    ends = [m.finding.exhaustion_at for m in members if m.finding.exhaustion_at is not None]
    draft = FleetGroup(
        host,
        members[0].finding.cause,
        min(onsets) if onsets else None,
        tuple(m.vm for m in members),
        _culprits(members, cfg.culprit_quorum),
        sum(m.finding.severity for m in members),
        "",
        min(ends) if ends else None,
    )
    return replace(draft, sentence=_sentence(draft, names, units, cfg))


def summarize(
    diagnoses: Iterable[Diagnosis],
    names: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    config: FleetConfig = DEFAULT_FLEET_CONFIG,
) -> FleetSummary:
    """Group every diagnosed VM with a finding under host x main cause x onset, rank the groups
    by impact and word each as one sentence (``names``: display names by VM id; ``units``:
    the unit or application of a VM, used to name a group of culprits)."""
    by_key: dict[tuple[str, Cause], list[_Member]] = defaultdict(list)
    judged = healthy = 0
    at = window = 0.0
    for d in diagnoses:
        judged += 1
        at, window = max(at, d.at), d.window
        if not d.findings:
            healthy += 1
            continue
        by_key[(d.host, d.findings[0].cause)].append(_Member(d.vm, d.findings[0]))
    groups = [
        _group(host, incident, names or {}, units or {}, config)
        for (host, cause), members in sorted(by_key.items())
        for incident in _incidents(members, config.onset_gap)
    ]
    groups.sort(key=lambda g: (-g.impact, g.host, g.cause.value, g.since or 0.0))
    return FleetSummary(at, window, judged, healthy, tuple(groups))


def reword(
    summary: FleetSummary,
    names: Mapping[str, str] | None = None,
    units: Mapping[str, str] | None = None,
    config: FleetConfig = DEFAULT_FLEET_CONFIG,
) -> FleetSummary:
    """The same groups worded with display names learnt after the summary (a caller looks up
    only the few VMs the sentences name, not the whole fleet)."""
    groups = tuple(
        replace(g, sentence=_sentence(g, names or {}, units or {}, config)) for g in summary.groups
    )
    return replace(summary, groups=groups)
