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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import exists, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from corral.errors import ValidationError
from corral.inventory.records import listed_host
from corral.inventory.views import ListedHost, NetworkView, VolumeView
from corral.store import models as m

T = TypeVar("T")
#: A list's sort key: the names of its last row, in the list's order.
Key = tuple[str, ...]


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
    """Networks by host and name, each with how many live VMs have a NIC on it: read from
    the counts kept per (host, network) (corral.store.network_users), one lookup a row, so
    ``unused_only`` is a condition of the same SELECT (no row there: no user)."""
    users = aliased(m.HostNetworkUsers)
    q = (
        select(m.Network, m.Host.name, users.vm_count)
        .join(m.Host, m.Network.host_id == m.Host.id)
        .outerjoin(users, (users.host_id == m.Network.host_id) & (users.network == m.Network.name))
        .order_by(m.Host.name, m.Network.name)
    )
    if unused_only:
        q = q.where(users.vm_count.is_(None))
    if after is not None:
        q = q.where(tuple_(m.Host.name, m.Network.name) > tuple_(after[0], after[1]))
    if limit is not None:
        q = q.limit(limit + 1)
    found = [
        NetworkView(
            host=host,
            name=n.name,
            active=n.active,
            forward_mode=n.forward_mode,
            bridge=n.bridge,
            vms=vms or 0,
            uuid=n.uuid,
        )
        for n, host, vms in s.execute(q)
    ]
    rows, next_key = _paged(found, limit, lambda n: (n.host, n.name))
    total = None
    if count:
        total = len(found) if limit is None else _count_networks(s, unused_only)
    return KeyPage(tuple(rows), next_key, total)


def _count_networks(s: Session, unused_only: bool) -> int:
    q = select(func.count()).select_from(m.Network)
    if unused_only:
        used = select(m.HostNetworkUsers.host_id).where(
            m.HostNetworkUsers.host_id == m.Network.host_id,
            m.HostNetworkUsers.network == m.Network.name,
        )
        q = q.where(~exists(used))
    return s.scalar(q) or 0


# -- volumes -------------------------------------------------------------------------------
#: Pools read per round of a volume page's walk.
POOL_BATCH = 64


@dataclass(frozen=True, slots=True)
class _Pool:
    id: int
    host: str
    name: str
    storage_key: str


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

    The walk goes pool by pool in (host, pool) order, and in a pool by the volume's name:
    each step an index range scan on (pool, name), never a sort of every volume. A volume of
    a storage several pools share (the same ``storage_key``) is listed at its first pool in
    that order; the others' rows of it only add to its ``hosts``. Two pools' rows are one
    volume when the storage and the path agree, and a path names one file of a storage, so
    its name (the file's) agrees too: the check for an earlier row is an index lookup."""
    found: list[tuple[_Pool, m.Volume, str | None, str | None]] = []
    want = None if limit is None else limit + 1
    pools = _pools_from(s, after[:2] if after else None, inclusive=True)
    shared: dict[str, list[_Pool]] = {}  # of every pool walked: the page's rows need it again
    while pools and (want is None or len(found) < want):
        sharing = _sharing(s, pools)
        shared.update(sharing)
        for pool in pools:
            first_name = after[2] if after and (pool.host, pool.name) == after[:2] else None
            earlier = [o.id for o in sharing.get(pool.storage_key, ()) if _before(o, pool)]
            left = None if want is None else want - len(found)
            got = _pool_volumes(s, pool, first_name, earlier, orphaned_only, left)
            found += [(pool, vol, vm, vm_host) for vol, vm, vm_host in got]
            if want is not None and len(found) >= want:
                break
        else:
            pools = _pools_from(s, (pools[-1].host, pools[-1].name), inclusive=False)
    rows, next_key = _paged(found, limit, lambda r: (r[0].host, r[0].name, r[1].name))
    items = tuple(
        volume_view(vol, pool.name, _hosts_seeing(pool, vol, sharing_all), vm, vm_host)
        for pool, vol, vm, vm_host, sharing_all in _with_sharing(s, rows, orphaned_only, shared)
    )
    total = _count_volumes(s, orphaned_only) if count else None
    return KeyPage(items, next_key, total)


def _before(a: _Pool, b: _Pool) -> bool:
    return (a.host, a.name) < (b.host, b.name)


def _pools_from(s: Session, start: Key | None, *, inclusive: bool) -> list[_Pool]:
    """The next pools of the walk in (host, pool) order: from the pool ``start`` names on
    (that one too when ``inclusive``)."""
    q = (
        select(m.Pool.id, m.Host.name, m.Pool.name, m.Pool.storage_key)
        .join(m.Host, m.Pool.host_id == m.Host.id)
        .order_by(m.Host.name, m.Pool.name)
        .limit(POOL_BATCH)
    )
    if start is not None:
        key, at = tuple_(m.Host.name, m.Pool.name), tuple_(start[0], start[1])
        q = q.where(m.Host.name >= start[0])  # the range of the hosts index to scan
        q = q.where(key >= at if inclusive else key > at)
    return [_Pool(*r) for r in s.execute(q)]


def _sharing(s: Session, pools: Sequence[_Pool]) -> dict[str, list[_Pool]]:
    """Storage key -> every pool of that storage, for the keys of ``pools`` that more than
    one pool has (a storage several hosts see)."""
    keys = {p.storage_key for p in pools if p.storage_key}
    if not keys:
        return {}
    q = (
        select(m.Pool.id, m.Host.name, m.Pool.name, m.Pool.storage_key)
        .join(m.Host, m.Pool.host_id == m.Host.id)
        .where(m.Pool.storage_key.in_(keys))
        .order_by(m.Host.name, m.Pool.name)
    )
    by_key: dict[str, list[_Pool]] = {}
    for row in s.execute(q):
        pool = _Pool(*row)
        by_key.setdefault(pool.storage_key, []).append(pool)
    return {k: ps for k, ps in by_key.items() if len(ps) > 1}


#: The aliases of a pool's volume query, made once: an alias made per query cost a third of
#: a volume page's CPU (SQLAlchemy builds each alias's columns anew).
_USER, _USER_HOST, _EARLIER = aliased(m.VM), aliased(m.Host), aliased(m.Volume)


def _pool_volumes(
    s: Session,
    pool: _Pool,
    after_name: str | None,
    earlier: Sequence[int],
    orphaned_only: bool,
    limit: int | None,
) -> list[tuple[m.Volume, str | None, str | None]]:
    """A pool's volumes by name after ``after_name``, with their user's name and host; those
    an ``earlier`` pool of the same storage holds too are left out (listed there)."""
    v, user, user_host = m.Volume, _USER, _USER_HOST
    q = (
        select(v, user.name, user_host.name)
        .outerjoin(user, user.uuid == v.used_by)
        .outerjoin(user_host, user_host.id == user.host_id)
        .where(v.pool_id == pool.id)
        .order_by(v.name)
    )
    if after_name is not None:
        q = q.where(v.name > after_name)
    if orphaned_only:
        q = q.where(v.used_by.is_(None))
    if earlier:
        v2 = _EARLIER
        again = select(v2.id).where(v2.pool_id.in_(earlier), v2.name == v.name, v2.path == v.path)
        if orphaned_only:
            again = again.where(v2.used_by.is_(None))
        q = q.where(~exists(again))
    if limit is not None:
        q = q.limit(limit)
    return [(vol, vm, vm_host) for vol, vm, vm_host in s.execute(q)]


def _with_sharing(
    s: Session,
    rows: Sequence[tuple[_Pool, m.Volume, str | None, str | None]],
    orphaned: bool,
    sharing: dict[str, list[_Pool]],
) -> list[tuple[_Pool, m.Volume, str | None, str | None, dict[tuple[str, str], list[str]]]]:
    """The page's rows, each with what shared storages show: (storage key, path) -> the
    hosts whose pools hold it, in (host, pool) order. ``sharing``: :func:`_sharing` of (at
    least) the rows' pools."""
    seen: dict[tuple[str, str], list[str]] = {}
    shared = [(pool, vol) for pool, vol, *_ in rows if pool.storage_key in sharing]
    if shared:
        pools = {p.id: p for pool, _ in shared for p in sharing[pool.storage_key]}
        names = {vol.name for _, vol in shared}
        q = select(m.Volume.pool_id, m.Volume.path).where(
            m.Volume.pool_id.in_(pools), m.Volume.name.in_(names)
        )
        if orphaned:
            q = q.where(m.Volume.used_by.is_(None))
        holders: dict[tuple[str, str], list[_Pool]] = {}
        for pool_id, path in s.execute(q):
            pool = pools[pool_id]
            holders.setdefault((pool.storage_key, path), []).append(pool)
        for key, ps in holders.items():
            seen[key] = [p.host for p in sorted(ps, key=lambda p: (p.host, p.name))]
    return [(pool, vol, vm, vm_host, seen) for pool, vol, vm, vm_host in rows]


def _hosts_seeing(pool: _Pool, vol: m.Volume, seen: dict[tuple[str, str], list[str]]) -> list[str]:
    return seen.get((pool.storage_key, vol.path), [pool.host])


def _count_volumes(s: Session, orphaned_only: bool) -> int:
    """How many volumes the list holds: rows no earlier pool of their storage holds too."""
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
    q = (
        select(func.count())
        .select_from(v)
        .join(p, v.pool_id == p.id)
        .join(h, p.host_id == h.id)
        .where(or_(p.storage_key == "", ~exists(earlier)))
    )
    if orphaned_only:
        q = q.where(v.used_by.is_(None))
    return s.scalar(q) or 0


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
    "volume_page",
    "volume_view",
]
