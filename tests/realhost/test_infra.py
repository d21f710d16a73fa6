"""The real-host infrastructure does what it promises (scripts/realhosts.sh + fixtures).

Each test uses real TCG guests on real libvirtd daemons: if one fails, the fixtures or the
script are broken, and every inventory and metrics test built on them would mislead.
Booting is the slow part (CPU-bound emulation), so the guests of the later tests boot once per
module, each test getting a guest of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import libvirt
import pytest
from guest import Guest, GuestFactory, RealhostEnv, guest_xml, migrate_live, run_virsh
from lxml import etree

MIB = 1024 * 1024
WINDOW_S = 4.0


def _cpu_time_ns(conn: Any, dom: Any) -> int:
    """cpu.time from the bulk stats call, the one a metrics collector makes each cycle."""
    records = conn.domainListGetStats([dom], libvirt.VIR_DOMAIN_STATS_CPU_TOTAL)
    stats: dict[str, int] = records[0][1]
    return int(stats["cpu.time"])


def _wait_state(dom: Any, state: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while dom.state()[0] != state:
        assert time.monotonic() < deadline, f"{dom.name()} never reached state {state}"
        time.sleep(0.2)


def _interface(dom: Any) -> etree._Element:
    interface = etree.fromstring(dom.XMLDesc()).find("devices/interface")
    assert interface is not None, f"{dom.name()} has no NIC"
    return interface


def test_two_guests_report_their_vcpus_and_memory(
    guest_factory: GuestFactory, libvirt_conns: list[Any], realhost_env: RealhostEnv
) -> None:
    small = guest_factory(0, vcpus=1, memory_mib=96, nic=True)
    large = guest_factory(0, vcpus=2, memory_mib=128, network=realhost_env.network)
    running = {dom.UUIDString() for dom in libvirt_conns[0].listAllDomains()}
    assert {small.uuid, large.uuid} <= running
    for guest, vcpus, memory_mib in ((small, 1, 96), (large, 2, 128)):
        state, max_kib, _current_kib, n_vcpus, _cpu_ns = guest.dom.info()
        assert state == libvirt.VIR_DOMAIN_RUNNING
        assert n_vcpus == vcpus
        assert max_kib == memory_mib * 1024
    for guest in (small, large):
        tap = _interface(guest.dom).find("target")
        assert tap is not None and tap.get("dev"), "the host named no tap for the NIC"
        assert len(guest.dom.interfaceStats(tap.get("dev"))) == 8  # the tap has counters
    if realhost_env.network is not None:
        source = _interface(large.dom).find("source")
        assert source is not None and source.get("network") == realhost_env.network
        assert source.get("bridge"), "the network NIC is not on the host's bridge"


@pytest.fixture(scope="module")
def booted(
    realhost_env: RealhostEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Guest]]:
    """One booted guest per later test on host 1, booted one after another, cpu last.

    One by one because concurrent TCG boots slow each other far more than linearly on two
    cores when the machine is busy (measured at load 6-8: 3 at once took 40 s each, one by one
    10 s each).
    """
    conns = [libvirt.open(uri) for uri in realhost_env.uris]
    factory = GuestFactory(realhost_env, conns, tmp_path_factory.mktemp("infra"))
    try:
        guests = {
            "idle": factory(0, wait_ready=True),
            "disk": factory(0, load="disk", disk_mib=32, wait_ready=True),
            "snapshot": factory(0, disk_mib=16, wait_ready=True),
            "migrate": factory(0, disk_mib=16, network=realhost_env.network, wait_ready=True),
            "cpu": factory(0, load="cpu", wait_ready=True),
        }
        yield guests
    finally:
        try:
            factory.cleanup()
        finally:
            for conn in conns:
                conn.close()


@pytest.mark.alone
def test_cpu_load_guest_burns_clearly_more_cpu_than_idle_one(
    booted: dict[str, Guest], libvirt_conns: list[Any]
) -> None:
    conn = libvirt_conns[0]
    busy, idle = booted["cpu"], booted["idle"]
    before = {g.name: _cpu_time_ns(conn, g.dom) for g in (busy, idle)}
    time.sleep(WINDOW_S)
    used = {g.name: _cpu_time_ns(conn, g.dom) - before[g.name] for g in (busy, idle)}
    # Relative, not absolute: on a shared 2-core machine the busy guest may get a small share
    # of a CPU, but an idle TCG guest stays near 1-3 % whatever the load.
    busy_share = used[busy.name] / (WINDOW_S * 1e9)
    assert busy_share > 0.10, f"cpu guest used only {busy_share:.0%} of a CPU"
    assert used[busy.name] > 5 * used[idle.name], used


def test_disk_load_guest_writes_to_its_disk(booted: dict[str, Guest]) -> None:
    writer = booted["disk"]
    before = writer.dom.blockStats("vda")[3]
    time.sleep(WINDOW_S)
    written = writer.dom.blockStats("vda")[3] - before
    assert written >= 4 * MIB, f"only {written} bytes written in {WINDOW_S} s"


def test_virsh_snapshot_and_shutdown(booted: dict[str, Guest], realhost_uris: list[str]) -> None:
    guest = booted["snapshot"]
    uri = realhost_uris[0]
    run_virsh(uri, "snapshot-create-as", guest.name, "before-shutdown")
    assert guest.dom.snapshotListNames() == ["before-shutdown"]
    run_virsh(uri, "shutdown", guest.name)
    _wait_state(guest.dom, libvirt.VIR_DOMAIN_SHUTOFF, timeout_s=60)
    assert "power button pressed" in guest.console_log.read_text()


def test_live_migration_keeps_the_identity(
    booted: dict[str, Guest], realhost_uris: list[str], libvirt_conns: list[Any]
) -> None:
    guest = booted["migrate"]
    migrate_live(guest.dom, realhost_uris[1])
    moved = libvirt_conns[1].lookupByUUIDString(guest.uuid)
    assert moved.name() == guest.name
    assert moved.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert moved.isPersistent()
    assert guest.uuid not in {dom.UUIDString() for dom in libvirt_conns[0].listAllDomains()}
    # Alive after the move: it still answers the ACPI power button on the new host.
    moved.shutdown()
    _wait_state(moved, libvirt.VIR_DOMAIN_SHUTOFF, timeout_s=60)


def test_guest_xml_holds_what_the_guests_rely_on() -> None:
    xml = guest_xml(
        "a<b>&'c",
        vcpus=2,
        memory_mib=128,
        kernel="/k",
        initrd="/i",
        load="disk",
        disk_path="/d.qcow2",
        uuid="0b4c9d8e-9a43-4a4e-8d3c-2a1b0c9d8e7f",
        console_log="/c.log",
        network="corral",
    )
    root = etree.fromstring(xml)

    def value(path: str) -> str:
        return str(root.xpath(f"string({path})"))

    assert value("@type") == "qemu"
    assert value("name") == "a<b>&'c"  # markup in a name stays text
    assert value("os/cmdline") == "console=ttyS0 panic=-1 corral.load=disk"
    assert root.find("features/acpi") is not None
    assert value("features/tcg/tb-cache") == "32"
    assert value("devices/memballoon[@model='virtio']/stats/@period") == "2"
    assert value("devices/disk/driver/@type") == "qcow2"
    assert (value("devices/disk/target/@dev"), value("devices/disk/target/@bus")) == (
        "vda",
        "virtio",
    )
    assert value("devices/interface/source/@network") == "corral"
    assert value("devices/serial/source/@path") == "/c.log"
    assert (value("vcpu"), value("memory")) == ("2", "128")
