"""Read raw performance counters from libvirt: one bulk call per host where possible.

``conn.getAllDomainStats`` gives every running domain's counters in one round
trip. Drivers that leave groups out of it (the test driver returns only
``state.*``) are completed per domain with ``getCPUStats``, ``blockStats``,
``interfaceStats`` and ``memoryStats``; anything a driver refuses is left as
None, never as zero.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import libvirt
from lxml import etree

from corral.domain.clock import Clock, SystemClock
from corral.domain.metrics import DomainCounters, HostCounters, HostSample
from corral.errors import HostUnreachableError, NotFoundError
from corral.hypervisor.libvirt import quiet_libvirt
from corral.hypervisor.uri import TRUSTED, HostAccess, open_uri, redact, validate_uri

log = logging.getLogger(__name__)


def _sum_keys(stats: Mapping[str, Any], prefix: str, count_key: str, suffix: str) -> int | None:
    n = stats.get(count_key)
    if n is None:
        return None
    vals = [stats.get(f"{prefix}.{i}.{suffix}") for i in range(int(n))]
    present = [int(v) for v in vals if v is not None]
    return sum(present) if present else None


def counters_from_bulk(uuid: str, name: str, vcpus: int, st: Mapping[str, Any]) -> DomainCounters:
    """DomainCounters from one getAllDomainStats record (keys as libvirt documents them)."""

    def kib(key: str) -> int | None:
        v = st.get(key)
        return None if v is None else int(v)

    return DomainCounters(
        uuid=uuid,
        name=name,
        vcpus=int(st.get("vcpu.current", vcpus) or vcpus),
        cpu_time_ns=kib("cpu.time"),
        vcpu_wait_ns=_sum_keys(st, "vcpu", "vcpu.maximum", "wait"),
        vcpu_delay_ns=_sum_keys(st, "vcpu", "vcpu.maximum", "delay"),
        disk_rd_bytes=_sum_keys(st, "block", "block.count", "rd.bytes"),
        disk_wr_bytes=_sum_keys(st, "block", "block.count", "wr.bytes"),
        disk_rd_reqs=_sum_keys(st, "block", "block.count", "rd.reqs"),
        disk_wr_reqs=_sum_keys(st, "block", "block.count", "wr.reqs"),
        net_rx_bytes=_sum_keys(st, "net", "net.count", "rx.bytes"),
        net_tx_bytes=_sum_keys(st, "net", "net.count", "tx.bytes"),
        net_rx_pkts=_sum_keys(st, "net", "net.count", "rx.pkts"),
        net_tx_pkts=_sum_keys(st, "net", "net.count", "tx.pkts"),
        balloon_actual_kib=kib("balloon.current"),
        balloon_available_kib=kib("balloon.available"),
        balloon_unused_kib=kib("balloon.unused"),
        balloon_rss_kib=kib("balloon.rss"),
        swap_in_kib=kib("balloon.swap_in"),
        swap_out_kib=kib("balloon.swap_out"),
    )


def _try(call: Callable[[], Any]) -> Any:
    """The call's result, or None when the driver does not support it."""
    try:
        return call()
    except libvirt.libvirtError:
        return None


def _xpath_strings(root: Any, path: str) -> list[str]:
    found = root.xpath(path)
    return [str(t) for t in found] if isinstance(found, list) else []


def _devices(dom: Any) -> tuple[list[str], list[str]]:
    root = etree.fromstring(dom.XMLDesc(0).encode())
    disks = _xpath_strings(root, "devices/disk[@device='disk']/target/@dev")
    nics = _xpath_strings(root, "devices/interface/target/@dev")
    return disks, nics


def _sum_tuples(rows: list[Any], picks: tuple[int, ...]) -> list[int | None]:
    if not rows:
        return [None] * len(picks)
    return [sum(int(r[i]) for r in rows) for i in picks]


def counters_per_domain(dom: Any) -> DomainCounters:
    """DomainCounters read with per-domain calls, for drivers without full bulk stats."""
    info = dom.info()
    cpu = _try(lambda: dom.getCPUStats(True))
    cpu_ns = int(cpu[0]["cpu_time"]) if cpu and "cpu_time" in cpu[0] else int(info[4])
    disks, nics = _devices(dom)
    blk = [b for b in (_try(partial(dom.blockStats, d)) for d in disks) if b]
    net = [n for n in (_try(partial(dom.interfaceStats, n)) for n in nics) if n]
    rd_reqs, rd_bytes, wr_reqs, wr_bytes = _sum_tuples(blk, (0, 1, 2, 3))
    rx_bytes, rx_pkts, tx_bytes, tx_pkts = _sum_tuples(net, (0, 1, 4, 5))
    mem = _try(dom.memoryStats) or {}
    return DomainCounters(
        uuid=dom.UUIDString(),
        name=dom.name(),
        vcpus=int(info[3]),
        cpu_time_ns=cpu_ns,
        disk_rd_bytes=rd_bytes,
        disk_wr_bytes=wr_bytes,
        disk_rd_reqs=rd_reqs,
        disk_wr_reqs=wr_reqs,
        net_rx_bytes=rx_bytes,
        net_tx_bytes=tx_bytes,
        net_rx_pkts=rx_pkts,
        net_tx_pkts=tx_pkts,
        balloon_actual_kib=mem.get("actual"),
        balloon_available_kib=mem.get("available"),
        balloon_unused_kib=mem.get("unused"),
        balloon_rss_kib=mem.get("rss"),
        swap_in_kib=mem.get("swap_in"),
        swap_out_kib=mem.get("swap_out"),
    )


def read_host_counters(conn: Any) -> HostCounters:
    """Host CPU times (all CPUs) and memory; fields the driver refuses stay None."""
    info = conn.getInfo()
    cpu = _try(lambda: conn.getCPUStats(libvirt.VIR_NODE_CPU_STATS_ALL_CPUS)) or {}
    mem = _try(lambda: conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS)) or {}
    total = mem.get("total", int(info[1]) * 1024)
    free = mem.get("free")
    if free is None:
        free_bytes = _try(conn.getFreeMemory)
        free = int(free_bytes) // 1024 if free_bytes else None
    storage = _pools_capacity_allocation(conn)
    return HostCounters(
        cpus=int(info[2]),
        cpu_user_ns=cpu.get("user"),
        cpu_kernel_ns=cpu.get("kernel"),
        cpu_idle_ns=cpu.get("idle"),
        cpu_iowait_ns=cpu.get("iowait"),
        mem_total_kib=int(total),
        mem_free_kib=None if free is None else int(free),
        storage_total_bytes=None if storage is None else storage[0],
        storage_used_bytes=None if storage is None else storage[1],
    )


def _pools_capacity_allocation(conn: Any) -> tuple[int, int] | None:
    """Capacity and allocation of the host's active storage pools, summed, as libvirt last
    counted them (no refresh: that rescans a pool's files); None without any pool."""
    pools = _try(lambda: conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE))
    if pools is None:
        return None
    infos = [info for info in (_try(p.info) for p in pools) if info]
    if not infos:
        return None
    return sum(int(i[1]) for i in infos), sum(int(i[2]) for i in infos)


_BULK_WANTED = ("cpu.time", "block.count", "net.count")


def read_domains(conn: Any) -> tuple[DomainCounters, ...]:
    """Counters of every running domain: the bulk call, completed per domain if it is thin."""
    flags = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_RUNNING
    records = conn.getAllDomainStats(0, flags)
    out = []
    for dom, st in records:
        if any(k in st for k in _BULK_WANTED):
            out.append(counters_from_bulk(dom.UUIDString(), dom.name(), 1, st))
        else:
            out.append(counters_per_domain(dom))
    return tuple(out)


class LibvirtStatsSource:
    """Reads a HostSample from each host's libvirt connection.

    ``hosts`` maps a host name to an already-open ``virConnect`` or to a URI;
    a URI is opened on first use and kept (a test-driver connection holds its
    state, reopening would reset it). A failed connection is dropped so the
    next cycle tries again. A URI passes the allow-list of corral.hypervisor.uri
    under ``access`` (give the settings' one for URIs a user wrote).
    """

    def __init__(
        self,
        hosts: Mapping[str, Any],
        clock: Clock | None = None,
        access: HostAccess = TRUSTED,
    ) -> None:
        self._targets = dict(hosts)
        self.access = access
        self._conns: dict[str, Any] = {
            h: c for h, c in self._targets.items() if not isinstance(c, str)
        }
        self._lock = threading.Lock()
        self.clock = clock or SystemClock()
        quiet_libvirt()

    def hosts(self) -> list[str]:
        return list(self._targets)

    def _conn(self, host: str) -> Any:
        with self._lock:
            conn = self._conns.get(host)
        if conn is not None:
            return conn
        target = self._targets.get(host)
        if target is None:
            raise NotFoundError(f"host {host!r} is not configured for metrics; add it first.")
        uri = validate_uri(target, self.access)
        try:
            conn = libvirt.open(open_uri(uri, self.access))
        except libvirt.libvirtError as exc:
            log.info("cannot open %s for stats: %s", redact(uri), exc)
            raise HostUnreachableError(f"host {host!r} could not be reached.") from None
        with self._lock:
            self._conns[host] = conn
        return conn

    def read(self, host: str) -> HostSample:
        """One reading of ``host``; HostUnreachableError if libvirt fails."""
        conn = self._conn(host)
        try:
            node = read_host_counters(conn)
            domains = read_domains(conn)
        except libvirt.libvirtError as exc:
            with self._lock:
                if isinstance(self._targets.get(host), str):
                    self._conns.pop(host, None)
            log.info("host %s failed to report stats: %s", host, exc)
            raise HostUnreachableError(f"host {host!r} failed to report stats.") from None
        return HostSample(host=host, ts=self.clock.now(), node=node, domains=domains)

    def close(self) -> None:
        with self._lock:
            owned = [h for h, t in self._targets.items() if isinstance(t, str)]
            for h in owned:
                conn = self._conns.pop(h, None)
                if conn is not None:
                    _try(conn.close)
