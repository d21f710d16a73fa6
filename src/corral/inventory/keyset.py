"""Hosts, networks and volumes a page at a time, read by keyset in the database.

Each list is sorted by a unique key of names (a host's name; a network's host and name; a
volume's host, pool and name), and a page is the rows after the previous page's last key:
one index range scan, however long the list, and a row added or removed between two pages
neither repeats nor hides another (as the VM list, corral.inventory.listing). The key is
what the caller's cursor holds; filters are conditions of the same SELECT.

A page counts the whole list only when asked: at 10,000 hosts a count costs more than the
page.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import exists, func, or_, select, true, tuple_
from sqlalchemy.orm import Session, aliased

from corral.errors import ValidationError
from corral.inventory.records import listed_host
from corral.inventory.views import ListedHost, NetworkView, VolumeView
from corral.store import models as m

T = TypeVar("T")
#: A list's sort key: the names of its last row, in the list's order.
Key = tuple[str, ...]

#: Networks read per round while looking for unused ones (their use is in each VM's NICs,
#: judged here, so the filter runs a batch at a time).
NETWORK_BATCH = 500


@dataclass(frozen=True, slots=True)
class KeyPage(Generic[T]):
    """A page of a list, the key the next page starts after (None: this is the last), and
    how many rows the whole list holds (None: not counted)."""

    items: tuple[T, ...]
    next_key: Key | None
    total: int | None


def check_key(key: Sequence[object] | None, size: int) -> Key | None:
    """A cursor's key for a list whose key has ``size`` names; another list's is refused."""
    if key is None:
        return None
    if len(key) != size or not all(isinstance(k, str) for k in key):
        raise ValidationError(
            "the pagination cursor is not valid for this list; start again without one."
        )
    return tuple(str(k) for k in key)


def _paged(rows: list[T], limit: int | None, key: Any) -> tuple[list[T], Key | None]:
    """``rows`` read with ``limit + 1``: the page and the key after which the next starts."""
    if limit is None or len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, key(rows[-1])


# -- hosts ---------------------------------------------------------------------------------
def host_page(
    s: Session, *, after: Key | None = None, limit: int | None = None, count: bool = False
) -> KeyPage[ListedHost]:
    """Hosts by name, each with its live VMs counted (those of this page only)."""
    q = select(m.Host).order_by(m.Host.name)
    if after is not None:
        q = q.where(m.Host.name > after[0])
    if limit is not None:
        q = q.limit(limit + 1)
    hosts, next_key = _paged(list(s.scalars(q)), limit, lambda h: (h.name,))
    vms = select(m.VM.host_id, func.count()).where(m.VM.deleted_at.is_(None))
    if limit is not None:  # a page: its hosts' VMs (an index range each), not the fleet's
        vms = vms.where(m.VM.host_id.in_([h.id for h in hosts]))
    counts: dict[int | None, int] = dict(s.execute(vms.group_by(m.VM.host_id)).all())
    total = s.scalar(select(func.count()).select_from(m.Host)) if count else None
    return KeyPage(tuple(listed_host(h, counts.get(h.id, 0)) for h in hosts), next_key, total)


# -- networks ------------------------------------------------------------------------------
def network_page(
    s: Session,
    *,
    after: Key | None = None,
    limit: int | None = None,
    unused_only: bool = False,
    count: bool = False,
) -> KeyPage[NetworkView]:
    """Networks by host and name, each with how many live VMs have a NIC on it.

    Whether a network is used is read from the NICs of its host's VMs, so ``unused_only``
    reads networks a batch at a time from the key on until the page is full."""
    batch = limit + 1 if limit is not None and not unused_only else None
    if unused_only and limit is not None:
        batch = max(limit + 1, NETWORK_BATCH)
    found: list[NetworkView] = []
    start = after
    while True:
        views = _network_views(s, start, batch)
        found += [v for v in views if v.vms == 0] if unused_only else views
        if batch is None or len(views) < batch or (limit is not None and len(found) > limit):
            break
        start = (views[-1].host, views[-1].name)
    rows, next_key = _paged(found, limit, lambda n: (n.host, n.name))
    total = None
    if count:
        total = len(found) if limit is None else _count_networks(s, unused_only)
    return KeyPage(tuple(rows), next_key, total)


def _network_views(s: Session, after: Key | None, limit: int | None) -> list[NetworkView]:
    q = (
        select(m.Network, m.Host.name, m.Host.id)
        .join(m.Host, m.Network.host_id == m.Host.id)
        .order_by(m.Host.name, m.Network.name)
    )
    if after is not None:
        q = q.where(tuple_(m.Host.name, m.Network.name) > tuple_(after[0], after[1]))
    if limit is not None:
        q = q.limit(limit)
    nets = s.execute(q).all()
    host_ids = None if limit is None else {host_id for _, _, host_id in nets}
    users = _network_users(s, nets, host_ids)
    return [
        NetworkView(
            host=host,
            name=n.name,
            active=n.active,
            forward_mode=n.forward_mode,
            bridge=n.bridge,
            vms=users.get((host_id, n.name), 0),
            uuid=n.uuid,
        )
        for n, host, host_id in nets
    ]


def _network_users(
    s: Session, nets: Sequence[tuple[m.Network, str, int]], host_ids: Iterable[int] | None
) -> dict[tuple[int, str], int]:
    """(host id, network name) -> live VMs with a NIC on it, of ``host_ids`` (None: all)."""
    by_bridge = {(host_id, n.bridge): n.name for n, _, host_id in nets if n.bridge}
    q = select(m.VM.host_id, m.VM.nics).where(m.VM.deleted_at.is_(None))
    q = q.where(m.VM.host_id.is_not(None) if host_ids is None else m.VM.host_id.in_(host_ids))
    users: dict[tuple[int, str], int] = {}
    for host_id, nics in s.execute(q):
        for name in {nic_network(n, host_id, by_bridge) for n in nics or []}:
            if name is not None:
                users[(host_id, name)] = users.get((host_id, name), 0) + 1
    return users


def _count_networks(s: Session, unused_only: bool) -> int:
    if not unused_only:
        return s.scalar(select(func.count()).select_from(m.Network)) or 0
    return sum(1 for v in _network_views(s, None, None) if v.vms == 0)


def nic_network(
    nic: dict[str, Any], host_id: int, by_bridge: dict[tuple[int, str], str]
) -> str | None:
    """The libvirt network a NIC is on: named by <source network=…> whatever the NIC's type
    (a bridge-mode network gives type='bridge'), or a bridge that is a network's bridge."""
    if nic.get("network"):
        return str(nic["network"])
    if nic.get("type") == "network":
        return nic.get("source")
    if nic.get("type") == "bridge" and nic.get("source"):
        return by_bridge.get((host_id, str(nic["source"])))
    return None


# -- volumes -------------------------------------------------------------------------------
def volume_page(
    s: Session,
    *,
    after: Key | None = None,
    limit: int | None = None,
    orphaned_only: bool = False,
    count: bool = False,
) -> KeyPage[VolumeView]:
    """Volumes by the host, pool and name they are first seen at, a shared storage's volume
    once (see :meth:`Inventory.list_volumes`): the same rows, a page at a time.

    A volume of a storage several pools share (the same ``storage_key``) is listed at its
    first pool in that order; the others' rows of it only add to its ``hosts``. Two pools'
    rows are one volume when the storage and the path agree, and a path names one file of a
    storage, so its name (the file's) agrees too: the check for an earlier row is an index
    lookup on (pool, name)."""
    v, p, h = m.Volume, m.Pool, m.Host
    user, user_host = aliased(m.VM), aliased(m.Host)
    q = (
        select(v, p.name, p.storage_key, p.id, h.name, user.name, user_host.name)
        .join(p, v.pool_id == p.id)
        .join(h, p.host_id == h.id)
        .outerjoin(user, user.uuid == v.used_by)
        .outerjoin(user_host, user_host.id == user.host_id)
        .where(_first_seen(orphaned_only))
        .order_by(h.name, p.name, v.name)
    )
    if orphaned_only:
        q = q.where(v.used_by.is_(None))
    if after is not None:
        q = q.where(h.name >= after[0])  # the range of the hosts index to scan
        q = q.where(tuple_(h.name, p.name, v.name) > tuple_(after[0], after[1], after[2]))
    if limit is not None:
        q = q.limit(limit + 1)
    rows = list(s.execute(q))
    rows, next_key = _paged(rows, limit, lambda r: (r[4], r[1], r[0].name))
    seen_by = _seen_by(s, [(r[2], r[0].name) for r in rows if r[2]], orphaned_only)
    items = tuple(
        volume_view(
            vol,
            pool_name,
            seen_by.get((key, vol.path), [host]) if key else [host],
            vm_name,
            vm_host,
        )
        for vol, pool_name, key, _pool_id, host, vm_name, vm_host in rows
    )
    total = None
    if count:
        counted = select(func.count()).select_from(v).join(p, v.pool_id == p.id)
        counted = counted.join(h, p.host_id == h.id).where(_first_seen(orphaned_only))
        if orphaned_only:
            counted = counted.where(v.used_by.is_(None))
        total = s.scalar(counted)
    return KeyPage(items, next_key, total)


def _first_seen(orphaned_only: bool) -> Any:
    """Whether a volume row is its volume's first (by host, pool, name) among those listed:
    its pool's storage is no other pool's, or no earlier pool of that storage holds it."""
    v, p, h = m.Volume, m.Pool, m.Host
    v2, p2, h2 = aliased(m.Volume), aliased(m.Pool), aliased(m.Host)
    earlier = (
        select(v2.id)
        .join(p2, v2.pool_id == p2.id)
        .join(h2, p2.host_id == h2.id)
        .where(
            p2.storage_key == p.storage_key,
            p2.id != p.id,
            v2.name == v.name,
            v2.path == v.path,
            tuple_(h2.name, p2.name) < tuple_(h.name, p.name),
        )
    )
    if orphaned_only:
        earlier = earlier.where(v2.used_by.is_(None))
    return or_(p.storage_key == "", ~exists(earlier))


def _seen_by(
    s: Session, volumes: Sequence[tuple[str, str]], orphaned_only: bool
) -> dict[tuple[str, str], list[str]]:
    """(storage key, path) -> the hosts whose pools show it, for the volumes named by
    (storage key, name)."""
    if not volumes:
        return {}
    keys, names = {k for k, _ in volumes}, {n for _, n in volumes}
    q = (
        select(m.Pool.storage_key, m.Volume.path, m.Host.name)
        .join(m.Pool, m.Volume.pool_id == m.Pool.id)
        .join(m.Host, m.Pool.host_id == m.Host.id)
        .where(m.Pool.storage_key.in_(keys), m.Volume.name.in_(names))
        .where(m.Volume.used_by.is_(None) if orphaned_only else true())
        .order_by(m.Host.name, m.Pool.name, m.Volume.name)
    )
    found: dict[tuple[str, str], list[str]] = {}
    for key, path, host in s.execute(q):
        found.setdefault((key, path), []).append(host)
    return found


def volume_view(
    vol: m.Volume, pool: str, hosts: Sequence[str], vm_name: str | None, vm_host: str | None
) -> VolumeView:
    """A volume as listed: shown at its user's host, else the first host that sees it."""
    return VolumeView(
        host=vm_host or hosts[0],
        hosts=tuple(hosts),
        pool=pool,
        name=vol.name,
        path=vol.path,
        format=vol.format,
        capacity_bytes=vol.capacity_bytes,
        allocation_bytes=vol.allocation_bytes,
        backing_path=vol.backing_path,
        used_by=vol.used_by,
        used_by_name=vm_name,
        used_by_host=vm_host,
        orphaned=vol.used_by is None,
        first_seen_at=vol.first_seen_at,
        shared=len(hosts) > 1,
    )


__all__ = [
    "KeyPage",
    "check_key",
    "host_page",
    "network_page",
    "nic_network",
    "volume_page",
    "volume_view",
]
