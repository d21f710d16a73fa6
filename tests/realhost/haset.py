"""What the HA and rebalance tests on real hosts share: a PRIVATE set of three hosts (ha1, ha2,
ha3), guests booted on them, the fence agents, and ways to drive and watch the manager.

The hosts other tests share must not lose a daemon or a guest, so each test gets a set of its
own from scripts/realhosts.sh (privateset.py: its own CORRAL_REALHOSTS_DIR, the guest
artifacts and QEMU capability cache copied from the shared set) and that set is taken down
afterwards, with whatever guests still run on it; the shared hosts are only read for their
artifacts. A host is failed by the test fence agent (fence_realhost.py: SIGKILL of its
libvirtd and QEMU, the pulled cable) or powered off and on again by fence_freeze.py.

A test takes the ``ha`` fixture of conftest.py (an :class:`HARig`) and parametrizes ``db``;
``private_hosts`` is the bare set, for a test that needs no more.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import libvirt
import yaml
from cryptography.fernet import Fernet
from guest import READY_MARKER, RealhostEnv, guest_xml, make_disk, wait_for_console
from privateset import private_set

from corral.config import Settings
from corral.engines.ha_manager.events import Event
from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.services import ha_live_views
from corral.services.ha_live import HALiveService
from corral.store import ha_state
from corral.store.db import Database

HOSTS = ("ha1", "ha2", "ha3")
AGENT = Path(__file__).with_name("fence_realhost.py")
FREEZE = Path(__file__).with_name("fence_freeze.py")
#: a TCG boot on a loaded 2-core machine; a ceiling, the wait ends at the ready line
BOOT_TIMEOUT_S = 240.0

T = TypeVar("T")


@dataclass(frozen=True)
class PrivateHosts:
    dir: Path
    uris: tuple[str, ...]

    def host_dir(self, i: int) -> Path:
        return self.dir / f"host{i + 1}"

    def daemon_pid(self, i: int) -> int:
        """The pid of host ``i``'s libvirtd."""
        return int((self.host_dir(i) / "run/libvirt/libvirtd.pid").read_text())

    def fence(self, i: int, action: str, agent: Path = AGENT) -> int:
        """Run a fence agent on host ``i`` as the manager would; its exit code."""
        stdin = f"action={action}\nhost_dir={self.host_dir(i)}\n".encode()
        return subprocess.run([sys.executable, str(agent)], input=stdin, check=False).returncode

    def fence_spec(self, broken: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The policy's ``fence`` section: the test agent per host; a host in ``broken`` gets
        an agent that always fails."""
        failing = [sys.executable, "-c", "import sys; sys.exit(1)"]
        return {
            name: [
                {
                    "name": "power",
                    "method": "agent",
                    "command": failing if name in broken else [sys.executable, str(AGENT)],
                    "options": {"host_dir": str(self.host_dir(i))},
                    "timeout_s": 30,
                }
            ]
            for i, name in enumerate(HOSTS)
        }

    def where(self, uuid: str, among: Iterable[int] = range(len(HOSTS))) -> list[str]:
        """The hosts (of ``among``) that answer and run the guest now. A frozen daemon would
        hang the question: leave its host out of ``among``."""
        found = []
        for i in among:
            with contextlib.suppress(libvirt.libvirtError):
                conn = libvirt.open(self.uris[i])
                try:
                    if any(d.UUIDString() == uuid and d.isActive() for d in conn.listAllDomains()):
                        found.append(HOSTS[i])
                finally:
                    conn.close()
        return found

    def starts_logged(self, i: int, name: str) -> int:
        """How many times host ``i``'s QEMU log says the guest started."""
        log = self.host_dir(i) / "log/libvirt/qemu" / f"{name}.log"
        return log.read_text(errors="replace").count("starting up") if log.exists() else 0


@contextlib.contextmanager
def private_hosts_of(env: RealhostEnv) -> Iterator[PrivateHosts]:
    """A new private set of the three hosts, taken down afterwards."""
    with private_set(env, "crl-ha-", len(HOSTS)) as (state_dir, uris):
        yield PrivateHosts(state_dir, tuple(uris))


@dataclass(frozen=True)
class HAGuest:
    """A booted guest: its domain on the host it was started on, its disk and console."""

    name: str
    uuid: str
    host: str
    dom: Any
    disk: Path
    console: Path

    def boots(self) -> int:
        """How many times the guest has booted (its ready lines, across hosts)."""
        return self.console.read_text(errors="replace").count(READY_MARKER)


@dataclass(frozen=True)
class HARig:
    """One test's private hosts, database and folder, and what it does with them."""

    hosts: PrivateHosts
    env: RealhostEnv
    db: Database
    tmp_path: Path

    def inventory(self, access: HostAccess | None = None) -> Inventory:
        """An inventory of the three hosts, by their names in HOSTS."""
        inventory = Inventory(self.db, SecretBox(Fernet.generate_key()), access=access)
        for name, uri in zip(HOSTS, self.hosts.uris, strict=True):
            inventory.add_host(name, uri)
        return inventory

    def settings(self, grace_s: float, **extra: Any) -> Settings:
        """Settings of an in-process manager: a round a second, failed after ``grace_s``."""
        home = self.tmp_path / "home"
        return Settings(home=home, ha_grace_s=grace_s, ha_check_interval_s=1, **extra)

    def leader_pid(self) -> int | None:
        """The pid of the leading manager (its id ends in ":PID"); None while none leads."""
        leader = ha_live_views.status(self.db).leader
        return int(leader.rsplit(":", 1)[1]) if leader else None

    def running(self, vm: str, host: str | None = None) -> bool:
        """The manager's status shows ``vm`` running (on ``host``, when one is given)."""
        return any(
            v.name == vm and v.state == "running" and host in (None, v.host)
            for v in ha_live_views.status(self.db).vms
        )

    def planned_target(self, inventory: Inventory, vm: str, failed: str = "ha1") -> str:
        """Where the failover plan restarts ``vm`` should ``failed`` die."""
        entries = ha_live_views.plan(self.db, inventory).entries
        return next(e.target for e in entries if e.failed_host == failed and e.vm == vm)

    def boot(self, on: Sequence[int] = (0,)) -> list[HAGuest]:
        """A guest started on each host index of ``on`` (uncached disk, as live migration
        needs), all started before the first is waited for; all booted when this returns."""
        guests = []
        for i in on:
            name = f"corral-ha-{uuidlib.uuid4().hex[:8]}"
            disk = make_disk(self.tmp_path / f"{name}.qcow2", 16)
            console = self.tmp_path / f"{name}.console.log"
            xml = guest_xml(
                name, kernel=self.env.kernel, initrd=self.env.initrd, disk_path=disk,
                console_log=console, disk_cache="none",
            )  # fmt: skip
            dom = libvirt.open(self.hosts.uris[i]).defineXML(xml)
            dom.create()
            guests.append(HAGuest(name, dom.UUIDString(), HOSTS[i], dom, disk, console))
        for guest in guests:
            wait_for_console(guest.console, timeout_s=BOOT_TIMEOUT_S)
        return guests

    def run_env(self, policy: dict[str, Any], **extra: str) -> dict[str, str]:
        """The environment of a `corral` command on this database with this HA policy: a 4 s
        grace period and a round a second."""
        path = self.tmp_path / "ha.yaml"
        path.write_text(yaml.safe_dump(policy))
        return {
            **os.environ,
            "CORRAL_HOME": str(self.tmp_path / "home"),
            "CORRAL_DATABASE_URL": self.db.url.render_as_string(hide_password=False),
            "CORRAL_HA_POLICY": str(path),
            "CORRAL_HA_GRACE": "4",
            "CORRAL_HA_CHECK_INTERVAL": "1",
            **extra,
        }

    @contextlib.contextmanager
    def managers(self, env: dict[str, str], n: int) -> Iterator[list[Any]]:
        """``n`` `corral ha run` processes (logs in tmp_path), killed afterwards. A failed
        assertion inside says what the managers did: the event log and each one's last lines."""
        logs = [(self.tmp_path / f"manager{i}.log").open("wb") for i in range(n)]
        run = [sys.executable, "-m", "corral", "ha", "run"]
        procs = [subprocess.Popen(run, env=env, stdout=log, stderr=log) for log in logs]
        try:
            yield procs
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self._diagnosis()}") from None
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
            for log in logs:
                log.close()

    def _diagnosis(self) -> str:
        lines = ["HA events:"]
        lines += [f"  {e['kind']} {e['host'] or ''} {e['vm'] or ''} {e['detail'] or ''}"
                  for e in ha_state.events(self.db, "default")]  # fmt: skip
        for log in sorted(self.tmp_path.glob("manager*.log")):
            tail = log.read_text(errors="replace").splitlines()[-60:]
            lines += [f"{log.name} (last 60 lines):", *tail]
        return "\n".join(lines)


def by_name(guests: Iterable[HAGuest]) -> dict[str, HAGuest]:
    return {guest.name: guest for guest in guests}


def wait(what: str, check: Callable[[], T], timeout_s: float = 180.0) -> T:
    """Poll ``check`` until it returns something true, and return that."""
    deadline = time.monotonic() + timeout_s
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


def rounds(service: HALiveService, n: int) -> list[Event]:
    """``n`` manager rounds, one a second (the check interval); every event of them."""
    seen: list[Event] = []
    for i in range(n):
        if i:
            time.sleep(1)
        seen += service.round().events
    return seen


def rounds_until(service: HALiveService, kind: str, limit: int = 60) -> list[Event]:
    """Rounds, one a second, until one logs ``kind``; every event of them."""
    seen: list[Event] = []
    for _ in range(limit):
        seen += service.round().events
        if any(e.kind == kind for e in seen):
            return seen
        time.sleep(1)
    raise AssertionError(f"no {kind} after {limit} rounds: {[(e.kind, e.host) for e in seen]}")


def kind_hosts(events: Iterable[Event]) -> list[tuple[str, str]]:
    return [(e.kind, e.host or "") for e in events]


def kinds(db: Database, kind: str) -> list[str]:
    """The VM (else the host) of each logged event of ``kind``, oldest first."""
    return [str(e["vm"] or e["host"]) for e in ha_state.events(db, "default") if e["kind"] == kind]


class DiskWriters:
    """Samples, every 0.1 s, how many processes have the guest's disk on their command line."""

    def __init__(self, disk: Path) -> None:
        self.disk = str(disk)
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def count(self) -> int:
        n = 0
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"qemu-system" in cmd and self.disk.encode() in cmd:
                n += 1
        return n

    def _run(self) -> None:
        while not self._stop.is_set():
            self.most = max(self.most, self.count())
            time.sleep(0.1)

    def __enter__(self) -> DiskWriters:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
