"""``corral metrics anomalies|forecast|baseline``: judgement on one series."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from corral.cli.output import OutputFormat, OutputOption, emit, emit_object, record, to_json
from corral.errors import ValidationError
from corral.metrics.model import EntityKind
from corral.metrics.timeparse import iso, parse_duration, parse_time
from corral.services import monitoring, series_insights

CsvOption = typer.Option(None, "--csv", help="a file with the header timestamp,value")
VmOption = typer.Option(None, "--vm", help="a stored VM series (name or UUID); needs --metric")
HostOption = typer.Option(None, "--host", help="a stored host series (name); needs --metric")
MetricOption = typer.Option(None, "--metric", help="e.g. cpu_pct; see 'corral metrics list'")
StoreOption = typer.Option(None, "--store", help="duckdb:///path or victoriametrics://host:8428")
HistoryOption = typer.Option("-30d", "--since", help="stored history from: -30d, epoch or ISO")


def _series(
    csv: Path | None,
    vm: str | None,
    host: str | None,
    metric: str | None,
    since: str,
    step: str,
    store_url: str | None,
) -> monitoring.Series:
    if (csv is None) == (vm is None and host is None):
        raise ValidationError("give either --csv FILE or --vm NAME/--host NAME with --metric.")
    if csv is not None:
        return monitoring.read_series(csv)
    if metric is None:
        raise ValidationError("--vm and --host need --metric, e.g. --metric cpu_pct.")
    from corral.cli.metrics import _entity, _range, _store

    kind = EntityKind.vm if vm else EntityKind.host
    lo, hi = _range(since, "now")
    store = _store(store_url)
    try:
        entity = _entity(vm or host or "", kind)
        points = store.series(kind, entity, metric, lo, hi, parse_duration(step))
    finally:
        store.close()
    return monitoring.from_points([(p.ts, p.value) for p in points])


def anomalies_cmd(
    csv: Path | None = CsvOption,
    vm: str | None = VmOption,
    host: str | None = HostOption,
    metric: str | None = MetricOption,
    since: str = HistoryOption,
    store: str | None = StoreOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Score every sample of a series (0..1) and mark what Corral would alert on (0 or 1)."""
    rows = monitoring.anomalies(_series(csv, vm, host, metric, since, "5m", store))
    cols = ["timestamp", "value", "anomaly_score", "alert"]
    emit([r.__dict__ for r in rows], output, cols, title="anomalies")


def forecast_cmd(
    vm_arg: str | None = typer.Argument(None, metavar="[VM]", help="a stored VM (as --vm)"),
    metric_arg: str | None = typer.Argument(None, metavar="[METRIC]", help="as --metric"),
    csv: Path | None = CsvOption,
    vm: str | None = VmOption,
    host: str | None = HostOption,
    metric: str | None = MetricOption,
    since: str = HistoryOption,
    store: str | None = StoreOption,
    start: str | None = typer.Option(
        None, "--start", help="first step (ISO, epoch or -2h); default: after the last sample"
    ),
    horizon: str = typer.Option("168h", "--horizon", help="how far ahead, e.g. 168h or 7d"),
    step: str = typer.Option("1h", "--step", help="forecast the mean of each step, e.g. 1h"),
    output: OutputFormat = OutputOption,
) -> None:
    """Forecast each step's mean from --start over --horizon, with an 80 % interval.

    A stored series: ``corral metrics forecast VM METRIC --horizon 7d`` (or --vm/--host with
    --metric); a file: ``--csv FILE``.
    """
    vm, metric = (
        _either(vm_arg, vm, "VM", "--vm"),
        _either(metric_arg, metric, "METRIC", "--metric"),
    )
    step_s = parse_duration(step)
    series = _series(csv, vm, host, metric, since, step, store)
    first = parse_time(start, time.time()) if start else monitoring.default_start(series, step_s)
    rows = monitoring.forecast(series, first, parse_duration(horizon), step_s)
    cols = ["timestamp", "forecast", "lower", "upper"]
    emit([r.__dict__ for r in rows], output, cols, title="forecast")


def _either(positional: str | None, option: str | None, arg: str, flag: str) -> str | None:
    if positional is not None and option is not None and positional != option:
        raise ValidationError(f"give {arg} or {flag}, not both.")
    return positional if positional is not None else option


def baseline_cmd(
    entity: str = typer.Argument(..., help="a VM (name or UUID), or a host with --kind host"),
    metric: str = typer.Argument(..., help="e.g. cpu_pct; see 'corral metrics list'"),
    kind: EntityKind = typer.Option(EntityKind.vm, "--kind", help="vm or host"),
    history: str = typer.Option("28d", "--history", help="history to learn from, e.g. 28d"),
    profile: bool = typer.Option(False, "--profile", help="also list the 168 hours' bands"),
    store: str | None = StoreOption,
    output: OutputFormat = OutputOption,
) -> None:
    """The learned hour-of-week band of a stored series, and where its newest value stands."""
    from corral.cli.metrics import _entity, _store

    view = series_insights.baseline(
        _store(store),
        kind,
        _entity(entity, kind),
        metric,
        int(time.time()),
        parse_duration(history),
    )
    if output is OutputFormat.json:
        typer.echo(to_json(record(view)))
        return
    summary = {k: v for k, v in record(view).items() if k != "hours"}
    emit_object(summary, output, title=f"baseline of {metric} of {entity}")
    if profile:
        cols = ["hour_of_week", "day", "hour", "median", "low", "high"]
        emit(list(view.hours), output, cols, title="hour-of-week bands (UTC)")


def diagnose_cmd(
    vm: str | None = typer.Argument(None, help="a VM (name or UUID); or --fleet"),
    fleet: bool = typer.Option(False, "--fleet", help="every VM, summed up by host and cause"),
    history: str | None = typer.Option(
        None, "--history", help="history to compare with (default: diagnosis_history_s, 7d)"
    ),
    store: str | None = StoreOption,
    output: OutputFormat = OutputOption,
) -> None:
    """Why a VM is slow or busy: its own demand, host CPU contention (and the neighbours that
    cause it), memory pressure, disk or network saturation, or a memory leak (with its date).
    With --fleet: every VM diagnosed, grouped by host, cause and onset, in sentences."""
    if fleet == (vm is not None):
        raise ValidationError("give either a VM or --fleet.")
    from corral.cli.context import settings

    history_s = parse_duration(history) if history else settings().diagnosis_history_s
    if vm is None:
        _diagnose_fleet(history_s, store, output)
        return
    from corral.cli.metrics import _entity, _store, _vm_names
    from corral.services import diagnosis

    metrics = _store(store)
    try:
        found = diagnosis.diagnose(metrics, _entity(vm, EntityKind.vm), int(time.time()), history_s)
    finally:
        metrics.close()
    if output is OutputFormat.json:
        typer.echo(to_json(record(found)))
        return
    names = _vm_names([found.vm, *(c for f in found.findings for c in f.culprits)])
    typer.echo(diagnosis.headline(found, names))
    rows = [
        {
            "cause": f.cause.value,
            "since": None if f.since is None else iso(int(f.since)),
            "culprits": [names.get(c, c) for c in f.culprits],
            "full_by": None if f.exhaustion_at is None else iso(int(f.exhaustion_at)),
            "evidence": f.evidence,
        }
        for f in found.findings
    ]
    if rows:
        emit(rows, output, list(rows[0]), title="findings, most severe first")


def _diagnose_fleet(history_s: int, store: str | None, output: OutputFormat) -> None:
    from corral.cli.context import inventory, settings
    from corral.cli.metrics import _known_inventory, _store
    from corral.services import diagnosis

    metrics = _store(store)
    try:
        summary = diagnosis.fleet_summary(
            metrics,
            int(time.time()),
            history_s,
            settings().analysis_chunk_size,
        )
    finally:
        metrics.close()
    if summary.groups and _known_inventory():
        summary = diagnosis.labelled(summary, inventory())
    if output is OutputFormat.json:
        typer.echo(to_json(record(summary)))
        return
    typer.echo(
        f"{summary.diagnosed} VMs diagnosed: {summary.affected} in trouble in "
        f"{len(summary.groups)} groups, {summary.healthy} fine"
    )
    rows = [
        {
            "host": g.host,
            "cause": g.cause.value,
            "since": None if g.since is None else iso(int(g.since)),
            "vms": len(g.vms),
            "impact": round(g.impact, 2),
            "summary": g.sentence,
        }
        for g in summary.groups
    ]
    if rows:
        emit(rows, output, list(rows[0]), title="groups, most impact first")


def add_commands(app: typer.Typer) -> None:
    app.command("anomalies")(anomalies_cmd)
    app.command("forecast")(forecast_cmd)
    app.command("baseline")(baseline_cmd)
    app.command("diagnose")(diagnose_cmd)
