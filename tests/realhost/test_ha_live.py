"""The live HA manager on real libvirtd hosts: a host dies, its guest runs elsewhere, once.

The hosts other tests share must not lose a daemon or a guest, so this test starts a
PRIVATE set of three hosts with scripts/realhosts.sh (its own CORRAL_REALHOSTS_DIR, the
guest artifacts and QEMU capability cache copied from the shared set, ~2 s) and takes
that set down afterwards; the shared hosts are only read for their artifacts.

Two `corral ha run` processes share one PostgreSQL. A host is failed by the test fence
agent itself (SIGKILL of its libvirtd and QEMU: the pulled cable); the leader is killed
with SIGKILL once it has declared the host failed, so the standby takes over mid-recovery.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest
import yaml
from cryptography.fernet import Fernet
from guest import READY_MARKER, RealhostEnv, guest_xml, make_disk, wait_for_console
from privateset import private_set

from corral.config import Settings
from corral.inventory.service import Inventory
from corral.notify.mailer import OutboxMailer
from corral.security.secrets import SecretBox
from corral.services import ha_live_views
from corral.services.ha_live import HALiveService
from corral.services.ha_live_policy import parse_policy
from corral.store.db import Database

AGENT = Path(__file__).with_name("fence_realhost.py")
HOSTS = ("ha1", "ha2", "ha3")


@dataclass(frozen=True)
class PrivateHosts:
    dir: Path
    uris: tuple[str, ...]

    def host_dir(self, i: int) -> Path:
        return self.dir / f"host{i + 1}"


@pytest.fixture
def private_hosts(realhost_env: RealhostEnv) -> Iterator[PrivateHosts]:
    with private_set(realhost_env, "crl-ha-", 3) as (state_dir, uris):
        yield PrivateHosts(state_dir, tuple(uris))


def _fence(hosts: PrivateHosts, i: int, action: str) -> int:
    stdin = f"action={action}\nhost_dir={hosts.host_dir(i)}\n"
    done = subprocess.run([sys.executable, str(AGENT)], input=stdin.encode(), check=False)
    return done.returncode


def _fence_spec(hosts: PrivateHosts, broken: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The test agent per host; a host in ``broken`` gets an agent that always fails."""
    failing = [sys.executable, "-c", "import sys; sys.exit(1)"]
    return {
        name: [
            {
                "name": "power",
                "method": "agent",
                "command": failing if name in broken else [sys.executable, str(AGENT)],
                "options": {"host_dir": str(hosts.host_dir(i))},
                "timeout_s": 30,
            }
        ]
        for i, name in enumerate(HOSTS)
    }


def _policy(hosts: PrivateHosts, path: Path) -> Path:
    path.write_text(yaml.safe_dump({"fence": _fence_spec(hosts)}))
    return path


class DiskWriters:
    """Samples, every 0.1 s, how many processes have the guest's disk on their command line."""

    def __init__(self, disk: Path) -> None:
        self.disk = str(disk)
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _count(self) -> int:
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
            self.most = max(self.most, self._count())
            time.sleep(0.1)

    def __enter__(self) -> DiskWriters:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _wait(what: str, check: Any, timeout_s: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _starts_logged(hosts: PrivateHosts, i: int, name: str) -> int:
    log = hosts.host_dir(i) / "log/libvirt/qemu" / f"{name}.log"
    return log.read_text(errors="replace").count("starting up") if log.exists() else 0


@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_dead_host_guest_restarts_by_plan_once_despite_leader_kill(
    private_hosts: PrivateHosts, realhost_env: RealhostEnv, db: Database, tmp_path: Path
) -> None:
    inventory = Inventory(db, SecretBox(Fernet.generate_key()))
    for name, uri in zip(HOSTS, private_hosts.uris, strict=True):
        inventory.add_host(name, uri)
    name = f"corral-ha-{uuidlib.uuid4().hex[:8]}"
    disk = make_disk(tmp_path / f"{name}.qcow2", 16)
    console = tmp_path / f"{name}.console.log"
    xml = guest_xml(
        name, kernel=realhost_env.kernel, initrd=realhost_env.initrd, disk_path=disk,
        console_log=console, disk_cache="none",
    )  # fmt: skip
    conns = [libvirt.open(uri) for uri in private_hosts.uris]
    dom = conns[0].defineXML(xml)
    dom.create()
    wait_for_console(console, timeout_s=120)

    env = {
        **os.environ,
        "CORRAL_HOME": str(tmp_path / "home"),
        "CORRAL_DATABASE_URL": str(db.url.render_as_string(hide_password=False)),
        "CORRAL_HA_POLICY": str(_policy(private_hosts, tmp_path / "ha.yaml")),
        "CORRAL_HA_GRACE": "4",
        "CORRAL_HA_CHECK_INTERVAL": "1",
    }
    run = [sys.executable, "-m", "corral", "ha", "run"]
    logs = [(tmp_path / f"manager{i}.log").open("wb") for i in range(2)]
    procs = [subprocess.Popen(run, env=env, stdout=log, stderr=log) for log in logs]
    try:
        status = _wait(
            "a leader watching every host",
            lambda: (
                (s := ha_live_views.status(db)).leader
                and len(s.hosts) == 3
                and any(v.name == name and v.state == "running" for v in s.vms)
                and s
            ),
        )
        planned = ha_live_views.plan(db, inventory).entries
        target = next(e.target for e in planned if e.failed_host == "ha1" and e.vm == name)
        leader_pid = int(status.leader.rsplit(":", 1)[1])
        assert leader_pid in {p.pid for p in procs}

        with DiskWriters(disk) as writers:
            assert _fence(private_hosts, 0, "off") == 0  # the cable is pulled on ha1
            _wait("host_failed", lambda: _kinds(db, "host_failed"))
            os.kill(leader_pid, signal.SIGKILL)  # the leader dies mid-recovery
            _wait(
                f"{name} running again",
                lambda: any(
                    v.name == name and v.state == "running" and v.host == target
                    for v in ha_live_views.status(db).vms
                ),
            )
            _wait(  # the guest booted again, on its new host: a second ready line
                "the guest's second boot",
                lambda: console.read_text(errors="replace").count(READY_MARKER) >= 2,
            )
        new_leader = ha_live_views.status(db).leader
        assert new_leader is not None and int(new_leader.rsplit(":", 1)[1]) != leader_pid

        t = HOSTS.index(target)
        assert conns[t].lookupByUUIDString(dom.UUIDString()).isActive()
        assert writers.most == 1  # never two QEMU processes on the disk
        assert _starts_logged(private_hosts, t, name) == 1  # started once, not twice
        assert _kinds(db, "vm_recovered") == [name]
        locked = subprocess.run(["qemu-img", "info", str(disk)], capture_output=True, text=True)
        assert locked.returncode != 0 and "lock" in locked.stderr  # QEMU holds the write lock
    except AssertionError as exc:  # what the managers did, so a failure can be read
        raise AssertionError(f"{exc}\n{_diagnosis(db, tmp_path)}") from None
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for c in conns[1:]:
            for d in c.listAllDomains():
                if d.UUIDString() == dom.UUIDString():
                    if d.isActive():
                        d.destroy()
                    d.undefine()
        for c in conns:
            with contextlib.suppress(libvirt.libvirtError):
                c.close()
        for log in logs:
            log.close()


def _diagnosis(db: Database, tmp_path: Path) -> str:
    from corral.store import ha_state

    lines = ["HA events:"]
    lines += [f"  {e['kind']} {e['host'] or ''} {e['vm'] or ''} {e['detail'] or ''}"
              for e in ha_state.events(db, "default")]  # fmt: skip
    for log in sorted(tmp_path.glob("manager*.log")):
        tail = log.read_text(errors="replace").splitlines()[-60:]
        lines += [f"{log.name} (last 60 lines):", *tail]
    return "\n".join(lines)


def _kinds(db: Database, kind: str) -> list[str]:
    from corral.store import ha_state

    return [str(e["vm"] or e["host"]) for e in ha_state.events(db, "default") if e["kind"] == kind]


def _guest_on_first_host(
    hosts: PrivateHosts, realhost_env: RealhostEnv, tmp_path: Path
) -> tuple[Any, Path]:
    name = f"corral-ha-{uuidlib.uuid4().hex[:8]}"
    disk = make_disk(tmp_path / f"{name}.qcow2", 16)
    console = tmp_path / f"{name}.console.log"
    xml = guest_xml(
        name, kernel=realhost_env.kernel, initrd=realhost_env.initrd, disk_path=disk,
        console_log=console,
    )  # fmt: skip
    conn = libvirt.open(hosts.uris[0])
    dom = conn.defineXML(xml)
    dom.create()
    wait_for_console(console, timeout_s=120)
    return dom, disk


def _service(
    db: Database, hosts: PrivateHosts, tmp_path: Path, spec: dict[str, Any], **extra: Any
) -> tuple[HALiveService, Inventory]:
    inventory = Inventory(db, SecretBox(Fernet.generate_key()))
    for name, uri in zip(HOSTS, hosts.uris, strict=True):
        inventory.add_host(name, uri)
    settings = Settings(
        home=tmp_path / "home", ha_grace_s=4, ha_check_interval_s=1, ha_alert_to="ops@example.org"
    )
    policy = parse_policy({"fence": spec, **extra}, settings)
    mailer = OutboxMailer(tmp_path / "outbox")
    return HALiveService(inventory, settings, policy=policy, mailer=mailer, instance="t"), inventory


def _rounds_until(service: HALiveService, kind: str, limit: int = 60) -> list[str]:
    kinds: list[str] = []
    for _ in range(limit):
        kinds += [e.kind for e in service.round().events]
        if kind in kinds:
            return kinds
        time.sleep(1)
    raise AssertionError(f"no {kind} in {kinds}")


def _running_elsewhere(hosts: PrivateHosts, uuid: str) -> list[int]:
    found = []
    for i, uri in enumerate(hosts.uris[1:], 1):
        conn = libvirt.open(uri)
        try:
            found += [i for d in conn.listAllDomains() if d.UUIDString() == uuid and d.isActive()]
        finally:
            conn.close()
    return found


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_unfenceable_host_is_not_recovered_from_and_mails_an_alert(
    private_hosts: PrivateHosts, realhost_env: RealhostEnv, db: Database, tmp_path: Path
) -> None:
    dom, _ = _guest_on_first_host(private_hosts, realhost_env, tmp_path)
    spec = _fence_spec(private_hosts, broken=frozenset({"ha1"}))
    service, _ = _service(db, private_hosts, tmp_path, spec)
    service.round()
    assert _fence(private_hosts, 0, "off") == 0  # ha1 dies; its fence agent cannot prove it
    kinds = _rounds_until(service, "host_unfenceable")
    for _ in range(3):  # a few more rounds: still nothing is started anywhere
        kinds += [e.kind for e in service.round().events]
        time.sleep(1)
    service.close()
    assert "vm_stranded" in kinds and "vm_start" not in kinds
    assert _running_elsewhere(private_hosts, dom.UUIDString()) == []
    subjects = [p.read_text() for p in (tmp_path / "outbox").glob("*.eml")]
    assert any("Subject: Corral HA: host unfenceable ha1" in text for text in subjects)


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_isolated_host_keeps_its_guest(
    private_hosts: PrivateHosts, realhost_env: RealhostEnv, db: Database, tmp_path: Path
) -> None:
    """ha1's daemon is gone but its storage heartbeat goes on: isolated, never fenced."""
    dom, disk = _guest_on_first_host(private_hosts, realhost_env, tmp_path)
    beats = tmp_path / "heartbeat"
    beats.mkdir()
    spec = _fence_spec(private_hosts)
    service, _ = _service(db, private_hosts, tmp_path, spec, heartbeat_dir=str(beats))
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            (beats / "ha1").touch()
            time.sleep(0.5)

    beater = threading.Thread(target=beat, daemon=True)
    beater.start()
    try:
        service.round()
        daemon = int((private_hosts.host_dir(0) / "run/libvirt/libvirtd.pid").read_text())
        os.kill(daemon, signal.SIGKILL)  # only the management daemon: the guest's QEMU lives on
        kinds = _rounds_until(service, "host_isolated")
        service.close()
    finally:
        stop.set()
        beater.join()
    assert "fence_begin" not in kinds and "vm_start" not in kinds
    assert DiskWriters(disk)._count() == 1  # the guest still runs on ha1, and only there
    assert _running_elsewhere(private_hosts, dom.UUIDString()) == []
