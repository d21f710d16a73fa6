"""HA drills on real hosts: pull a host's cable, time detection, fencing and every restart.

Each drill starts a PRIVATE set of three realhosts (tests/realhost/privateset.py: its own
CORRAL_REALHOSTS_DIR; the shared hosts are never touched), boots ``--vms`` protected TCG
guests on host 1 with their disks in one folder every host sees (the shared storage), runs
the live HA manager in a thread of this process (SQLite, one instance, the DEFAULT grace
period and check interval of corral.config.Settings unless told otherwise) and runs
`corral ha drill ha1`'s service: it SIGKILLs host 1's libvirtd and QEMU through the test
fence agent and reports, from the manager's events, the seconds from the kill to
host_failed, host_fenced and each vm_recovered.

Checked apart from the manager, by this script itself:
- running twice: from the kill to the end a sampler counts, every 0.1 s, the QEMU processes
  whose command line names each guest's UUID or disk (the most ever seen must be 1), and
  at the end every live host is asked which of its domains with that UUID are active;
- lost: a guest the plan gave a target that no host runs at the end.

    python benchmarks/bench_ha_drill.py [--drills 20] [--vms 3] [--grace S] [--interval S]
                                        [--reports DIR]   # each drill's JSON and HTML report

Needs root and `bash scripts/realhosts.sh up` done once (for the guest artifacts).

Measured 2026-12-04 22:23-22:46 UTC, 20 drills with the defaults (grace 30 s, checks every
5 s), 3 protected guests each, on the 2-core machine while three other jobs ran (load
average 4-11):

    seconds after the kill       min  median     max
    detection                   34.8    35.0    36.3
    fenced                      39.9    40.0    41.4
    each VM running             45.9    47.3    52.8
    last VM running             45.9    47.3    52.8

    drills 20, RTO met 20, VMs running twice 0 (most QEMU per guest at once: 1), VMs lost 0
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import yaml
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "realhost"))
from guest import RealhostEnv, guest_xml, make_disk, wait_for_console  # noqa: E402
from privateset import private_set  # noqa: E402

from corral.config import Settings  # noqa: E402
from corral.inventory.service import Inventory  # noqa: E402
from corral.security.secrets import SecretBox  # noqa: E402
from corral.services import ha_drill_report, ha_live_views  # noqa: E402
from corral.services.ha_drill import DrillReport, DrillService  # noqa: E402
from corral.services.ha_live import HALiveService  # noqa: E402
from corral.services.ha_live_policy import parse_policy  # noqa: E402
from corral.store.db import Database  # noqa: E402

AGENT = ROOT / "tests" / "realhost" / "fence_realhost.py"
SHARED = Path("/work/main/var/realhosts")
HOSTS = ("ha1", "ha2", "ha3")


@dataclass(frozen=True)
class DrillRow:
    report: DrillReport
    #: the most QEMU processes ever seen at once for one guest (UUID or disk), kill to end
    most_writers: int
    #: guests active on more than one live host at the end
    twice: int
    #: guests the plan gave a target that no host runs at the end
    lost: int
    wall_s: float

    @property
    def last_running(self) -> float:
        times = [v.restart_s for v in self.report.vms]
        return float("nan") if not times or None in times else max(t for t in times if t)


class Writers:
    """Counts, every 0.1 s, the QEMU processes naming each guest's UUID or disk path."""

    def __init__(self, keys: list[tuple[str, str]]) -> None:
        self.keys = [(u.encode(), d.encode()) for u, d in keys]
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _count(self) -> int:
        cmds = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                with contextlib.suppress(OSError):
                    cmd = (proc / "cmdline").read_bytes()
                    if b"qemu-system" in cmd:
                        cmds.append(cmd)
        return max((sum(1 for c in cmds if u in c or d in c) for u, d in self.keys), default=0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.most = max(self.most, self._count())
            time.sleep(0.1)

    def __enter__(self) -> Writers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def drill(env: RealhostEnv, work: Path, args: argparse.Namespace) -> DrillRow:
    """One drill; a set-up that fails before the kill (a guest that does not boot in time
    on a loaded machine) is started again, up to three times: it is not a drill outcome."""
    for attempt in range(1, 4):
        started = time.monotonic()
        try:
            with private_set(env, "crl-hd-", 3) as (state, uris):
                report, most, twice, lost = _run(env, state, uris, work, args)
        except SetUpFailed as exc:
            print(f"  set-up {attempt} failed before the kill ({exc}); again", flush=True)
            continue
        return DrillRow(report, most, twice, lost, round(time.monotonic() - started, 1))
    raise SystemExit("the drill's set-up failed three times; is the machine overloaded?")


class SetUpFailed(Exception):
    """The hosts or guests were not ready: no host was failed yet."""


def _boot(env: RealhostEnv, uri: str, work: Path, n: int) -> list[tuple[str, str, str]]:
    """``n`` guests on ``uri``, booted: (name, uuid, disk path) each."""
    conn = libvirt.open(uri)
    guests, consoles = [], []
    for _ in range(n):
        name = f"corral-hadrill-{uuid.uuid4().hex[:6]}"
        disk = make_disk(work / f"{name}.qcow2", 16)
        consoles.append(work / f"{name}.log")
        xml = guest_xml(name, kernel=env.kernel, initrd=env.initrd, disk_path=disk,
                        console_log=consoles[-1], disk_cache="none")  # fmt: skip
        dom = conn.defineXML(xml)
        dom.create()
        guests.append((name, dom.UUIDString(), str(disk)))
    try:
        for console in consoles:
            wait_for_console(console, timeout_s=300)
    except TimeoutError as exc:
        raise SetUpFailed(str(exc).splitlines()[0]) from None
    return guests


def _run(
    env: RealhostEnv, state: Path, uris: list[str], work: Path, args: argparse.Namespace
) -> tuple[DrillReport, int, int, int]:
    db = Database(f"sqlite:///{work / f'{state.name}.db'}")
    db.migrate()
    inventory = Inventory(db, SecretBox(Fernet.generate_key()))
    for name, uri in zip(HOSTS, uris, strict=True):
        inventory.add_host(name, uri)
    guests = _boot(env, uris[0], work, args.vms)
    timing = {"ha_grace_s": args.grace, "ha_check_interval_s": args.interval}
    settings = Settings(home=work / "home", **{k: v for k, v in timing.items() if v is not None})
    fence = {h: [{"name": "power", "method": "agent", "command": [sys.executable, str(AGENT)],
                  "options": {"host_dir": str(state / f"host{i + 1}")}, "timeout_s": 30}]
             for i, h in enumerate(HOSTS)}  # fmt: skip
    doc = {"fence": fence, "drills": {"allow": ["ha1"], "rto_s": 60, "timeout_s": 240}}
    policy = parse_policy(yaml.safe_load(yaml.safe_dump(doc)), settings)
    service = HALiveService(inventory, settings, policy=policy, instance="drill")
    stop = threading.Event()

    def lead() -> None:  # the manager, as `corral ha run` would, in a thread of its own
        while not stop.is_set():
            service.round()
            stop.wait(settings.ha_check_interval_s)

    thread = threading.Thread(target=lead, daemon=True)
    thread.start()
    names = {g[0] for g in guests}
    try:
        while {v.name for v in ha_live_views.status(db).vms if v.state == "running"} < names:
            time.sleep(0.2)
        with Writers([(u, d) for _, u, d in guests]) as writers:
            drills = DrillService(inventory, settings, policy=policy)
            report = drills.run("ha1")
            twice, lost = _census(uris[1:], guests, report)
        if args.reports is not None and drills.last_run_id is not None:
            view = ha_drill_report.drill_report(db, drills.last_run_id)
            stem = args.reports / f"drill-{state.name}"
            ha_drill_report.write(view, html=stem.with_suffix(".html"),
                                  json_file=stem.with_suffix(".json"))  # fmt: skip
        return report, writers.most, twice, lost
    finally:
        stop.set()
        thread.join()
        service.close()


def _census(
    live: list[str], guests: list[tuple[str, str, str]], report: DrillReport
) -> tuple[int, int]:
    """(guests active on two or more live hosts, planned guests active on none), by asking
    every live host itself."""
    active: dict[str, int] = {u: 0 for _, u, _ in guests}
    for uri in live:
        conn = libvirt.open(uri)
        for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            if dom.UUIDString() in active:
                active[dom.UUIDString()] += 1
        conn.close()
    planned = {v.vm for v in report.vms if v.planned}
    twice = sum(1 for n in active.values() if n > 1)
    lost = sum(1 for name, u, _ in guests if name in planned and active[u] == 0)
    return twice, lost


def _table(rows: list[DrillRow]) -> Iterator[str]:
    yield (f"{'drill':>5}{'detect s':>10}{'fence s':>9}{'first up s':>12}{'last up s':>11}"
           f"{'RTO':>7}{'twice':>7}{'lost':>6}{'wall s':>8}")  # fmt: skip
    for i, r in enumerate(rows, 1):
        times = [v.restart_s for v in r.report.vms if v.restart_s is not None]
        first = min(times) if times else float("nan")
        twice = max(r.twice, 1 if r.most_writers > 1 else 0)
        rto = "met" if r.report.all_met else "MISSED"
        yield (f"{i:>5}{_f(r.report.detection_s):>10}{_f(r.report.fence_s):>9}{first:>12.1f}"
               f"{r.last_running:>11.1f}{rto:>7}{twice:>7}{r.lost:>6}{r.wall_s:>8.1f}")  # fmt: skip
    yield ""
    yield f"{'seconds after the kill':<24}{'min':>8}{'median':>8}{'max':>8}"
    columns = {
        "detection": [_n(r.report.detection_s) for r in rows],
        "fenced": [_n(r.report.fence_s) for r in rows],
        "each VM running": [_n(v.restart_s) for r in rows for v in r.report.vms],
        "last VM running": [r.last_running for r in rows],
    }
    for key, values in columns.items():
        yield f"{key:<24}{min(values):>8.1f}{statistics.median(values):>8.1f}{max(values):>8.1f}"
    yield ""
    yield (f"drills {len(rows)}, RTO met {sum(r.report.all_met for r in rows)}, "
           f"VMs running twice {sum(r.twice + (r.most_writers > 1) for r in rows)} "
           f"(most QEMU per guest at once: {max(r.most_writers for r in rows)}), "
           f"VMs lost {sum(r.lost for r in rows)}")  # fmt: skip


def _n(value: float | None) -> float:
    return float("nan") if value is None else value


def _f(value: float | None) -> str:
    return f"{_n(value):.1f}"


def _shared_env() -> RealhostEnv:
    guest = SHARED / "guest"
    return RealhostEnv(uris=(), kernel=guest / "vmlinuz", initrd=guest / "initrd.img")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drills", type=int, default=20)
    parser.add_argument("--vms", type=int, default=3, help="protected guests on the failed host")
    parser.add_argument("--grace", type=float, default=None, help="default: the setting's")
    parser.add_argument("--interval", type=float, default=None, help="default: the setting's")
    parser.add_argument("--reports", type=Path, default=None, help="write each drill's report "
                        "(JSON and HTML) into this folder")  # fmt: skip
    args = parser.parse_args()
    if args.reports is not None:
        args.reports.mkdir(parents=True, exist_ok=True)
    defaults = Settings(home=Path("."))
    print(f"grace {args.grace or defaults.ha_grace_s} s, check interval "
          f"{args.interval or defaults.ha_check_interval_s} s, {args.vms} protected VMs "
          f"per drill", flush=True)  # fmt: skip
    rows: list[DrillRow] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="crl-hdw-") as tmp:
        for i in range(args.drills):
            rows.append(drill(_shared_env(), Path(tmp), args))
            r = rows[-1]
            print(f"drill {i + 1}: detect {_f(r.report.detection_s)} s, fenced "
                  f"{_f(r.report.fence_s)} s, last VM running {r.last_running:.1f} s, "
                  f"twice {r.twice}/{r.most_writers} QEMU, lost {r.lost}, not recovered "
                  f"{list(r.report.not_recovered)}, wall {r.wall_s} s", flush=True)  # fmt: skip
    print()
    for line in _table(rows):
        print(line)
    print(f"wall time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
