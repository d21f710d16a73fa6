"""Read the Bitbrains GWA-T-12 "Rnd" traces into plain VM records and one metric batch.

This is a trace reader (files in, plain data out), kept beside the engines it
feeds; the engines themselves never read files. Format (see the data folder's
README.txt): one gzip CSV per VM, separator ";\\t", epoch-second timestamps,
5-minute samples, CPU cores/MHz/% and memory provisioned vs used, disk and
network KB/s. Clean-up rules, so nothing is guessed:
  - rows with 0 cores or 0 CPU capacity carry no measurement: all NaN;
  - a memory usage of exactly 0 KB is "not measured" (a running VM uses memory): NaN;
  - samples are averaged into 300 s bins on one grid; empty bins are NaN;
  - the VM's size is its most frequent non-zero cores and memory over the month;
  - disk size is not in the trace: ``assumed_disk_gb`` is used and reported.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from corral.engines.sprawl.model import (
    DEFAULT_STEP_S,
    Disk,
    MetricBatch,
    MetricWindow,
    VMRecord,
    VMState,
    stack_windows,
)
from corral.errors import NotFoundError, ValidationError

COLUMNS = 11
(T, CORES, CAP_MHZ, USE_MHZ, USE_PCT, MEM_CAP_KB, MEM_USE_KB, D_READ, D_WRITE, N_RX, N_TX) = range(
    COLUMNS
)
DEFAULT_ASSUMED_DISK_GB = 50.0


@dataclass(frozen=True)
class BitbrainsFleet:
    vms: tuple[VMRecord, ...]
    metrics: MetricBatch
    files: int
    assumed_disk_gb: float


def month_dir(data_dir: Path, month: str = "2013-7") -> Path:
    """The folder of one month; ``data_dir`` may be bitbrains-rnd, its rnd/ or the month."""
    for candidate in (data_dir / "rnd" / month, data_dir / month, data_dir):
        if any(candidate.glob("*.csv.gz")):
            return candidate
    raise NotFoundError(
        f"no Bitbrains *.csv.gz files under {data_dir} (looked in rnd/{month}, {month} and the "
        "folder itself); pass --data-dir pointing at the bitbrains-rnd folder."
    )


def load_bitbrains(
    data_dir: Path,
    month: str = "2013-7",
    limit: int | None = None,
    assumed_disk_gb: float = DEFAULT_ASSUMED_DISK_GB,
) -> BitbrainsFleet:
    """Every VM of one month (or the first ``limit`` by number) as records and a metric batch."""
    folder = month_dir(data_dir, month)
    files = sorted(folder.glob("*.csv.gz"), key=_file_order)[:limit]
    pairs = [read_vm(f, assumed_disk_gb) for f in files]
    return BitbrainsFleet(
        vms=tuple(p[0] for p in pairs),
        metrics=stack_windows([p[1] for p in pairs]),
        files=len(files),
        assumed_disk_gb=assumed_disk_gb,
    )


def read_vm(
    path: Path, assumed_disk_gb: float = DEFAULT_ASSUMED_DISK_GB
) -> tuple[VMRecord, MetricWindow]:
    """One trace file as a VM record (size from the trace) and its 5-minute metric window."""
    rows = _read_rows(path)
    name = f"bitbrains-rnd-{path.name.split('.')[0]}"
    vm = VMRecord(
        uuid=name,
        name=name,
        state=VMState.running,
        vcpus=max(1, int(_mode(rows[:, CORES]))),
        memory_mib=max(1, round(_mode(rows[:, MEM_CAP_KB]) / 1024)),
        disks=(Disk(f"{name}.img", assumed_disk_gb),),
    )
    return vm, _window(name, rows)


def _read_rows(path: Path) -> npt.NDArray[np.float64]:
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise ValidationError(f"cannot read trace {path}: {exc}; check the file.") from exc
    body = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
    try:
        values = np.array(body.replace(b";", b" ").split(), dtype=np.float64)
    except ValueError as exc:
        raise ValidationError(f"trace {path} has a non-numeric field; check the file.") from exc
    if values.size == 0 or values.size % COLUMNS:
        raise ValidationError(f"trace {path} does not have {COLUMNS} numbers on every row.")
    rows = values.reshape(-1, COLUMNS)
    dead = (rows[:, CORES] <= 0) | (rows[:, CAP_MHZ] <= 0)
    rows[dead, 1:] = np.nan
    rows[rows[:, MEM_USE_KB] == 0, MEM_USE_KB] = np.nan
    return rows


def _window(name: str, rows: npt.NDArray[np.float64]) -> MetricWindow:
    step = DEFAULT_STEP_S
    start = int(rows[:, T].min()) // step * step
    cols = ((rows[:, T] - start) // step).astype(np.int64)
    n = int(cols.max()) + 1

    def binned(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        ok = ~np.isnan(values)
        total = np.bincount(cols[ok], weights=values[ok], minlength=n)
        count = np.bincount(cols[ok], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)

    kib = 1024.0
    return MetricWindow(
        vm_uuid=name,
        timestamps=start + step * np.arange(n, dtype=np.int64),
        cpu_mhz=binned(rows[:, USE_MHZ]),
        cpu_pct=binned(rows[:, USE_PCT]),
        disk_bytes_s=binned((rows[:, D_READ] + rows[:, D_WRITE]) * kib),
        net_bytes_s=binned((rows[:, N_RX] + rows[:, N_TX]) * kib),
        memory_mib={"trace": binned(rows[:, MEM_USE_KB] / kib)},
    )


def _mode(values: npt.NDArray[np.float64]) -> float:
    """The most frequent positive value (0 when there is none)."""
    good = values[np.isfinite(values) & (values > 0)]
    if good.size == 0:
        return 0.0
    uniq, counts = np.unique(good, return_counts=True)
    return float(uniq[np.argmax(counts)])


def _file_order(path: Path) -> tuple[int, str]:
    stem = path.name.split(".")[0]
    return (int(stem), stem) if stem.isdigit() else (1 << 30, stem)


def vm_numbers(vms: Sequence[VMRecord]) -> list[str]:
    return [vm.name.rsplit("-", 1)[-1] for vm in vms]
