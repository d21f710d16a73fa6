"""``corral metrics``: collect, backfill from traces, and read series, rankings and charts."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import typer
from rich.console import Console

from corral.cli.context import settings
from corral.cli.output import OutputFormat, OutputOption, emit
from corral.errors import HostUnreachableError, ValidationError
from corral.metrics.catalog import METRICS, metric_info
from corral.metrics.chart import rows as chart_rows
from corral.metrics.chart import with_gaps
from corral.metrics.model import EntityKind, Stat
from corral.metrics.ports import StatsSource
from corral.metrics.replay import VMSpec
from corral.metrics.store import MetricsStore
from corral.metrics.timeparse import iso, parse_duration, parse_time

metrics_app = typer.Typer(help="Performance history: collect, backfill, query, chart, export.")

StoreOption = typer.Option(
    None, "--store", help="duckdb:///path or victoriametrics://host:8428 (CORRAL_METRICS_URL)"
)
KindOption = typer.Option(EntityKind.vm, "--kind", help="vm (by UUID) or host (by name)")
StartOption = typer.Option("-24h", "--start", help="now, -2h, -30d, epoch or ISO time")
EndOption = typer.Option("now", "--end", help="now, -2h, epoch or ISO time")
StatOption = typer.Option(Stat.avg, "--stat", help="avg, min, max or p95 per bucket")


def _store(url: str | None) -> MetricsStore:
    from corral.cli.context import metrics_store

    return metrics_store(url)


def _known_inventory() -> bool:
    """Whether there is an inventory to ask (never create an empty one just to look up names)."""
    url = settings().database_url
    return not url.startswith("sqlite:///") or Path(url.removeprefix("sqlite:///")).exists()


def _entity(ref: str, kind: EntityKind) -> str:
    """A VM by name or UUID (series are kept by UUID); a host by name."""
    from corral.inventory.service import UUID_RE

    if kind is not EntityKind.vm or UUID_RE.match(ref.strip().lower()) or not _known_inventory():
        return ref.strip().lower() if kind is EntityKind.vm else ref
    from corral.cli.context import inventory

    return inventory().find_vm(ref).uuid


def _vm_names(uuids: list[str]) -> dict[str, str]:
    if not uuids or not _known_inventory():
        return {}
    from corral.cli.context import inventory

    return inventory().vm_names(uuids)


def _range(start: str, end: str) -> tuple[int, int]:
    now = time.time()
    return parse_time(start, now), parse_time(end, now)


def _parse_hosts(hosts: list[str]) -> dict[str, str]:
    out = {}
    for h in hosts:
        name, sep, uri = h.partition("=")
        if not sep or not name or not uri:
            raise ValidationError(f"--host {h!r} must look like NAME=URI, e.g. h1=qemu:///system.")
        out[name] = uri
    return out


def _inventory_hosts() -> dict[str, str]:
    from corral.cli.context import inventory

    return {h.name: h.uri for h in inventory().list_hosts()}


def _parse_vms(specs: list[str]) -> list[VMSpec]:
    out: list[VMSpec] = []
    for s in specs:
        parts = s.split(":")
        if len(parts) != 4 or not parts[2].isdigit() or not parts[3].isdigit():
            raise ValidationError(f"--vm {s!r} must look like UUID:HOST:VCPUS:MEMORY_MIB.")
        out.append((parts[0], parts[1], int(parts[2]), int(parts[3])))
    return out


def _inventory_vms() -> list[VMSpec]:
    from corral.cli.context import inventory

    page = inventory().list_vms()
    return [(v.uuid, v.host or "", int(v.vcpus or 1), int(v.memory_mib or 0)) for v in page.items]


@metrics_app.command("collect")
def collect(
    host: list[str] = typer.Option([], "--host", help="NAME=URI; default: the inventory's hosts"),
    interval: str = typer.Option("60s", "--interval", help="time between cycles"),
    timeout: str = typer.Option("", "--timeout", help="per-cycle wait for hosts (default 80%)"),
    cycles: int = typer.Option(0, "--cycles", help="stop after N cycles (0: until Ctrl-C)"),
    replay: Path | None = typer.Option(None, "--replay", help="play traces from this folder"),
    vm: list[str] = typer.Option([], "--vm", help="with --replay: UUID:HOST:VCPUS:MEMORY_MIB"),
    seed: int = typer.Option(0, "--seed", help="with --replay: trace assignment seed"),
    store: str | None = StoreOption,
) -> None:
    """Poll every host each interval and store rates; a dead host is a gap and an error."""
    from corral.metrics.collector import Collector

    target = _store(store)
    source = _source(host, replay, vm, seed)
    step = parse_duration(interval)
    wait_s = parse_duration(timeout) if timeout else min(0.8 * step, settings().host_timeout_s)
    col = Collector(source, target.write, interval_s=step, timeout_s=wait_s)
    stop = threading.Event()
    done = 0
    failed: dict[str, str] = {}
    try:
        while not stop.is_set() and (cycles == 0 or done < cycles):
            t0 = time.time()
            report = col.collect_once()
            done += 1
            failed.update(report.errors)
            errs = "; ".join(f"{h}: {why}" for h, why in report.errors.items())
            typer.echo(
                f"{iso(int(t0))} {report.samples} samples" + (f" errors: {errs}" if errs else "")
            )
            if cycles == 0 or done < cycles:
                time.sleep(max(0.0, step - (time.time() - t0)))
    except KeyboardInterrupt:
        stop.set()
    finally:
        col.close()
        target.close()
    if cycles and failed:
        named = "; ".join(f"{h}: {why}" for h, why in sorted(failed.items()))
        raise HostUnreachableError(f"could not read every host ({named}).")


def _source(host: list[str], replay: Path | None, vm: list[str], seed: int) -> StatsSource:
    if replay is not None:
        from corral.metrics.replay import TraceReplaySource, assign

        vms = _parse_vms(vm) if vm else _inventory_vms()
        return TraceReplaySource(assign(vms, replay, seed))
    from corral.hypervisor.stats import LibvirtStatsSource
    from corral.hypervisor.uri import HostAccess

    hosts = _parse_hosts(host) if host else _inventory_hosts()
    if not hosts:
        raise ValidationError("no hosts to collect from; pass --host NAME=URI or add hosts first.")
    return LibvirtStatsSource(hosts, access=HostAccess.from_settings(settings()))


@metrics_app.command("backfill")
def backfill_cmd(
    trace_dir: Path = typer.Option(..., "--trace-dir", help="PlanetLab or Bitbrains folder"),
    days: float = typer.Option(30.0, "--days"),
    vm: list[str] = typer.Option([], "--vm", help="UUID:HOST:VCPUS:MEMORY_MIB; default: inventory"),
    seed: int = typer.Option(0, "--seed"),
    metric: list[str] = typer.Option([], "--metric", help="only these metrics (default: all)"),
    end: str = typer.Option("now", "--end", help="end of the history: now, -2h, epoch or ISO"),
    store: str | None = StoreOption,
) -> None:
    """Give VMs a realistic past from real traces (every file is checked before writing).

    Running it again, or after it was stopped, leaves the same samples as one run."""
    from corral.metrics.replay import backfill

    vms = _parse_vms(vm) if vm else _inventory_vms()
    until = parse_time(end, time.time())
    target = _store(store)
    t0 = time.perf_counter()
    try:
        n = backfill(
            target,
            vms,
            trace_dir,
            days,
            end=until,
            seed=seed,
            metrics=metric or None,
            progress=lambda step: typer.echo(step, err=True),
        )
    finally:
        target.close()
    typer.echo(
        f"{n} samples for {len(vms)} VMs over {days:g} days in {time.perf_counter() - t0:.1f} s"
    )


@metrics_app.command("series")
def series_cmd(
    entity: str = typer.Argument(..., help="VM name or UUID, or host name"),
    metric: str = typer.Argument(..., help="e.g. cpu_pct; see 'corral metrics list'"),
    kind: EntityKind = KindOption,
    start: str = StartOption,
    end: str = EndOption,
    step: str = typer.Option("5m", "--step"),
    stat: Stat = StatOption,
    output: OutputFormat = OutputOption,
    store: str | None = StoreOption,
) -> None:
    """One VM's or host's metric over a range, in buckets of --step."""
    metric_info(metric)
    lo, hi = _range(start, end)
    s = _store(store)
    try:
        points = s.series(kind, _entity(entity, kind), metric, lo, hi, parse_duration(step), stat)
    finally:
        s.close()
    rows = [{"time": iso(p.ts), "ts": p.ts, "value": p.value} for p in points]
    emit(rows, output, ["time", "ts", "value"], title=f"{entity} {metric} ({stat.value})")


@metrics_app.command("top")
def top_cmd(
    metric: str = typer.Argument(..., help="e.g. cpu_wait_pct"),
    n: int = typer.Option(10, "--n", "-n"),
    kind: EntityKind = KindOption,
    start: str = StartOption,
    end: str = EndOption,
    stat: Stat = StatOption,
    output: OutputFormat = OutputOption,
    store: str | None = StoreOption,
) -> None:
    """The fleet's N highest VMs (or hosts) for a metric, e.g. the ten with most CPU wait."""
    metric_info(metric)
    lo, hi = _range(start, end)
    s = _store(store)
    try:
        ranked = s.top(kind, metric, lo, hi, n, stat)
    finally:
        s.close()
    rows = [{"rank": i, "id": r.entity, metric: r.value} for i, r in enumerate(ranked, 1)]
    cols = ["rank", "id", metric]
    if kind is EntityKind.vm:
        names = _vm_names([r.entity for r in ranked])
        rows = [{**row, "name": names.get(str(row["id"]))} for row in rows]
        cols = ["rank", "id", "name", metric]
    emit(rows, output, cols, title=f"top {n} {metric} ({stat.value})")


@metrics_app.command("chart")
def chart_cmd(
    entity: str = typer.Argument(..., help="VM name or UUID, or host name"),
    metric: str = typer.Argument("cpu_pct"),
    kind: EntityKind = KindOption,
    start: str = StartOption,
    end: str = EndOption,
    step: str = typer.Option("15m", "--step"),
    stat: Stat = StatOption,
    width: int = typer.Option(96, "--width"),
    store: str | None = StoreOption,
) -> None:
    """One series as a block chart in the terminal; blanks are gaps in collection."""
    info = metric_info(metric)
    lo, hi = _range(start, end)
    step_s = parse_duration(step)
    s = _store(store)
    try:
        points = s.series(kind, _entity(entity, kind), metric, lo, hi, step_s, stat)
    finally:
        s.close()
    console = Console()
    if not points:
        console.print(f"no {metric} samples for {entity} between {iso(lo)} and {iso(hi)}")
        return
    vals = [p.value for p in points]
    console.print(f"[bold]{entity}[/] {metric} ({info.unit}, {stat.value} per {step})")
    for line in chart_rows(with_gaps(points, lo, hi, step_s), width):
        console.print(f"[cyan]{line}[/]", highlight=False)
    console.print(
        f"{iso(lo)} → {iso(hi)}   min {min(vals):.4g}  avg {sum(vals) / len(vals):.4g}  "
        f"max {max(vals):.4g}",
        highlight=False,
    )


@metrics_app.command("export")
def export_cmd(
    entity: str = typer.Argument(..., help="VM name or UUID, or host name"),
    metric: list[str] = typer.Option([], "--metric", help="default: every VM/host metric"),
    kind: EntityKind = KindOption,
    start: str = StartOption,
    end: str = EndOption,
    output: OutputFormat = typer.Option(OutputFormat.csv, "--output", "-o"),
    store: str | None = StoreOption,
) -> None:
    """Raw samples of one VM or host (time, host, metric, value) as CSV or JSON."""
    names = metric or [m.name for m in METRICS if m.kind is kind]
    for m in names:
        metric_info(m)
    lo, hi = _range(start, end)
    s = _store(store)
    try:
        rows = [
            {"time": iso(t), "ts": t, "host": h, "metric": m, "value": v}
            for m in names
            for t, h, v in s.raw(kind, _entity(entity, kind), m, lo, hi)
        ]
    finally:
        s.close()
    emit(rows, output, ["time", "ts", "host", "metric", "value"])


@metrics_app.command("maintain")
def maintain_cmd(store: str | None = StoreOption) -> None:
    """Roll up closed buckets (5 min, 1 h, 1 day) and drop what retention no longer keeps."""
    s = _store(store)
    try:
        now = int(time.time())
        made = s.rollup(now)
        dropped = s.apply_retention(now)
    finally:
        s.close()
    typer.echo(f"{made} rollup rows written, {dropped} rows past retention dropped")


@metrics_app.command("list")
def list_cmd(output: OutputFormat = OutputOption) -> None:
    """Every metric Corral stores, with its unit."""
    rows = [
        {"metric": m.name, "kind": m.kind.value, "unit": m.unit, "help": m.help} for m in METRICS
    ]
    emit(rows, output, ["metric", "kind", "unit", "help"])


def register(app: typer.Typer) -> None:
    from corral.cli.metrics_analysis import add_commands

    add_commands(metrics_app)
    app.add_typer(metrics_app, name="metrics")
