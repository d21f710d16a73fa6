"""The inventory facade the CLI and the API call: hosts, sync, VM queries, metadata, tokens."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from corral.config import Settings, ensure_private_dir
from corral.domain.model import Environment, OwnerMeta, ProtectionTier
from corral.domain.text import check_text
from corral.errors import (
    ConflictError,
    CorralError,
    HostUnreachableError,
    NotFoundError,
    StoreError,
    ValidationError,
)
from corral.hypervisor import deadline
from corral.hypervisor.base import Hypervisor
from corral.hypervisor.pool import ConnectionPool
from corral.hypervisor.uri import HostAccess, redact, validate_uri
from corral.inventory import keyset
from corral.inventory.export import export_inventory
from corral.inventory.filters import VMFilter, decode_cursor, encode_cursor
from corral.inventory.hosts_file import HostEntry
from corral.inventory.listing import (
    VMCount,
    VMReader,
    check_sort,
    driver_errors,
)
from corral.inventory.records import (
    META_FIELDS,
    host_view,
    row_to_meta,
    vm_detail,
)
from corral.inventory.sync import Clock, Progress, SyncReport, SyncService, utcnow
from corral.inventory.views import (
    EventView,
    HostView,
    ListedHost,
    NetworkView,
    VMDetail,
    VMSummary,
    VMTally,
    VolumeView,
    as_row,
)
from corral.security.secrets import SecretBox
from corral.store import models as m
from corral.store.bulk import bulk_insert
from corral.store.db import Database

if TYPE_CHECKING:
    from corral.hypervisor.libvirt import Credentials

log = logging.getLogger(__name__)

HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True, slots=True)
class HostImport:
    """What ``import_hosts`` did: the hosts it registered and those already there."""

    added: tuple[str, ...]
    skipped: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of VMs and where the next starts."""

    items: tuple[VMSummary, ...]
    next_cursor: str | None
    total: int | None  # None: not counted


def check_uuid(uuid: str) -> str:
    value = uuid.strip().lower()
    if not UUID_RE.match(value):
        raise ValidationError(f"{uuid[:64]!r} is not a UUID (8-4-4-4-12 hexadecimal digits).")
    return value


class Inventory:
    """``access`` says which host URIs may be registered and opened (the node-file folder, the
    SSH files, the host timeout); the default allows no node files but ``test:///default``."""

    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        clock: Clock = utcnow,
        access: HostAccess | None = None,
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.clock = clock
        self.access = access or HostAccess()
        self.pool = ConnectionPool()
        self.scope = deadline.scope("sync")

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock = utcnow) -> Inventory:
        ensure_private_dir(settings.home)
        db = Database(settings.database_url)
        db.migrate()
        return cls(db, SecretBox.from_settings(settings), clock, HostAccess.from_settings(settings))

    # -- hosts ----------------------------------------------------------------
    def add_host(
        self, name: str, uri: str, username: str | None = None, password: str | None = None
    ) -> HostView:
        """Register a host after checking its URI against the allow-list and asking the host
        who it is: the same libvirt host under another URI spelling is refused."""
        if not HOST_NAME.match(name):
            raise ValidationError(
                "a host name is 1-63 letters, digits, dots, dashes or underscores, "
                "starting with a letter or digit."
            )
        uri = validate_uri(uri, self.access)
        with self.db.session() as s:
            self._refuse_known(s, name, uri)
        from corral.hypervisor.libvirt import Credentials  # libvirt: on use

        creds = Credentials(username, password) if username or password else None
        host_uuid, error = self._identify(name, uri, creds)
        with self.db.session() as s:
            try:
                self._refuse_known(s, name, uri, host_uuid)
            except ConflictError:
                self.pool.discard(name)
                raise
            host = m.Host(
                name=name,
                uri=uri,
                host_uuid=host_uuid,
                username=username,
                secret=self.secrets.encrypt(password) if password else None,
                status="never-synced",
                last_error=error,
                created_at=self.clock(),
                cpu_features=[],
            )
            s.add(host)
            try:
                s.flush()
            except IntegrityError:
                raise ConflictError(f"a host named {name!r} already exists.") from None
            return host_view(host)

    def import_hosts(
        self, entries: Sequence[HostEntry], *, skip_existing: bool = False
    ) -> HostImport:
        """Register many hosts in one transaction, without opening them.

        Every entry is checked first (name, URI allow-list, repeats in the list, hosts already
        registered) and all problems are reported together: the list is taken whole or not at
        all. Hosts are identified (libvirt host UUID) by their first sync, which marks a host
        reached under a second URI as a duplicate; ``add_host`` asks at once instead.
        """
        problems: list[str] = []
        canonical: list[tuple[HostEntry, str]] = []
        names: dict[str, int] = {}
        uris: dict[str, int] = {}
        for e in entries:
            where = f"entry {e.line}" if e.line else repr(e.name)
            if not HOST_NAME.match(e.name):
                problems.append(f"{where}: {e.name[:64]!r} is not a valid host name")
                continue
            try:
                uri = validate_uri(e.uri, self.access)
            except CorralError as exc:  # refused by the allow-list, or not a URI at all
                problems.append(f"{where} ({e.name}): {exc.message}")
                continue
            if e.name in names:
                problems.append(f"{where}: the name {e.name!r} is also at entry {names[e.name]}")
            elif uri in uris:
                problems.append(f"{where}: the URI of {e.name!r} is also at entry {uris[uri]}")
            names.setdefault(e.name, e.line)
            uris.setdefault(uri, e.line)
            canonical.append((e, uri))
        with self.db.session() as s:
            known_names = set(s.scalars(select(m.Host.name)))
            known_uris = dict(s.execute(select(m.Host.uri, m.Host.name)).all())
            fresh, skipped = [], []
            for e, uri in canonical:
                clash = e.name if e.name in known_names else known_uris.get(uri)
                if clash is None:
                    fresh.append((e, uri))
                elif skip_existing:
                    skipped.append(e.name)
                else:
                    problems.append(
                        f"entry {e.line} ({e.name}): host {clash!r} is already registered"
                        + (" with this URI" if clash != e.name else "")
                        + " (--skip-existing leaves such hosts as they are)"
                    )
            if problems:
                shown = "; ".join(problems[:10])
                more = f"; and {len(problems) - 10} more" if len(problems) > 10 else ""
                raise ValidationError(
                    f"{len(problems)} of {len(entries)} hosts cannot be imported, so none was: "
                    f"{shown}{more}."
                )
            now = self.clock()
            bulk_insert(
                s,
                m.Host,
                [
                    {
                        "name": e.name,
                        "uri": uri,
                        "username": e.username,
                        "status": "never-synced",
                        "created_at": now,
                        "cpu_features": [],
                    }
                    for e, uri in fresh
                ],
            )
        return HostImport(added=tuple(e.name for e, _ in fresh), skipped=tuple(skipped))

    @staticmethod
    def _refuse_known(s: Any, name: str, uri: str, host_uuid: str | None = None) -> None:
        if s.scalar(select(m.Host).where(m.Host.name == name)) is not None:
            raise ConflictError(f"a host named {name!r} already exists.")
        same = s.scalar(select(m.Host.name).where(m.Host.uri == uri))
        if same is not None:
            raise ConflictError(f"host {same!r} is already registered with this URI.")
        if host_uuid is not None:
            same = s.scalar(select(m.Host.name).where(m.Host.host_uuid == host_uuid))
            if same is not None:
                raise ConflictError(
                    f"this URI reaches host {same!r}, already registered (libvirt host UUID "
                    f"{host_uuid}); a host is registered once."
                )

    def _identify(
        self, name: str, uri: str, creds: Credentials | None
    ) -> tuple[str | None, str | None]:
        """The host's libvirt UUID, or why it could not be asked (it is registered anyway).

        A test-driver host has no UUID (its node file is its identity, and the canonical URI
        holds the resolved path), so it is not opened here."""
        if uri.startswith("test:"):
            return None, None

        from corral.hypervisor.libvirt import connect  # libvirt: on use

        def ask() -> str | None:
            return self.pool.get(
                name, uri, lambda: connect(uri, creds, access=self.access)
            ).host_uuid()

        wait_s = self.access.timeout_s
        asked = deadline.call(f"{self.scope}add:{name}", ask, wait_s)
        if asked.status is deadline.Status.DONE and asked.error is None:
            return asked.value, None
        self.pool.forget(name)
        if asked.error is not None and not isinstance(asked.error, CorralError):
            raise asked.error
        reason = (
            asked.error.message if asked.error else f"the host did not answer within {wait_s:g} s."
        )
        log.info("host %s (%s) not identified at registration: %s", name, redact(uri), reason)
        return None, reason

    def remove_host(self, name: str, *, forget_vms: bool = False) -> None:
        """Unregister a host; its VMs stay in the inventory unless ``forget_vms``."""
        with self.db.session() as s:
            host = self._host(s, name)
            if forget_vms:
                for vm in s.scalars(select(m.VM).where(m.VM.host_id == host.id)):
                    s.delete(vm)
            s.delete(host)

    def host_names(self) -> list[str]:
        """The registered hosts' names, sorted: for a chooser, without list_hosts' VM counts
        (a count of every VM by host, 80 ms at 100,000 VMs)."""
        with self.db.session() as s:
            return list(s.scalars(select(m.Host.name).order_by(m.Host.name)))

    def list_hosts(self) -> list[ListedHost]:
        with self.db.session() as s:
            return list(keyset.host_page(s).items)

    def hosts_page(
        self, *, after: Sequence[object] | None, limit: int, count: bool = False
    ) -> keyset.KeyPage[ListedHost]:
        """The hosts after the key ``after`` (a cursor's), at most ``limit``."""
        key = keyset.check_key(after, 1)
        with self.db.session() as s:
            return keyset.host_page(s, after=key, limit=limit, count=count)

    def connector(self, host: m.Host) -> Hypervisor:
        """A pooled connection to ``host`` (kept open between syncs)."""
        return self._opener(host)()

    def _opener(self, host: m.Host) -> Callable[[], Hypervisor]:
        """Opens (or reuses) the pooled connection to ``host``; the row is read now, so the
        opener may run in another thread."""
        from corral.hypervisor.libvirt import Credentials, connect  # libvirt: on use

        creds = None
        if host.username or host.secret:
            creds = Credentials(
                host.username, self.secrets.decrypt(host.secret) if host.secret else None
            )
        name, uri = host.name, host.uri
        return lambda: self.pool.get(name, uri, lambda: connect(uri, creds, access=self.access))

    def own_opener(self, name: str) -> Callable[[], Hypervisor]:
        """Opens a new connection to host ``name`` each call, outside the pool: for a caller
        that keeps its own long-lived connection (the HA manager's, with keepalive)."""
        from corral.hypervisor.libvirt import Credentials, connect  # libvirt: on use

        with self.db.session() as s:
            host = self._host(s, name)
            creds = None
            if host.username or host.secret:
                creds = Credentials(
                    host.username, self.secrets.decrypt(host.secret) if host.secret else None
                )
            uri = host.uri
        return lambda: connect(uri, creds, access=self.access)

    def release(
        self, host_name: str, *, wrote: bool = False, broken: bool = False, late: bool = False
    ) -> None:
        """Done with a pooled connection: note our own writes, drop it when it failed, forget
        it (unclosed) when a call on it never returned."""
        if late:
            self.pool.forget(host_name)
        elif broken:
            self.pool.discard(host_name)
        elif wrote:
            self.pool.touched(host_name)

    def close(self) -> None:
        self.pool.close_all()

    def open_host(self, name: str) -> Hypervisor:
        """The host's hypervisor for actions: every call bounded by the host timeout."""
        with self.db.session() as s:
            return self.bounded(self._host(s, name))

    def bounded(self, host: m.Host) -> Hypervisor:
        from corral.hypervisor.bounded import BoundedHypervisor

        name = host.name
        bounded = BoundedHypervisor(
            name,
            self._opener(host),
            self.release,
            f"{self.scope}act:{name}",
            self.access.timeout_s,
        )
        return cast(Hypervisor, bounded)

    def sync(
        self, hosts: Iterable[str] | None = None, progress: Progress | None = None
    ) -> SyncReport:
        service = SyncService(
            self.db,
            self.connector,
            self.release,
            self.clock,
            timeout_s=self.access.timeout_s,
            scope=self.scope,
        )
        return service.sync(hosts, progress)

    # -- VMs ------------------------------------------------------------------
    def list_vms(
        self,
        f: VMFilter | None = None,
        *,
        sort: str = "name",
        descending: bool = False,
        limit: int | None = None,
        cursor: str | None = None,
        count: bool = True,
    ) -> Page:
        """One page of VMs; ``count`` also counts the whole list (a second query, which at
        100,000 VMs costs more than the page itself: the API counts only when asked).

        Read by the driver (corral.inventory.listing), not the ORM: a page of 100 costs about
        half the CPU, which is most of a REST list request's own work."""
        f = f or VMFilter()
        check_sort(sort)
        after = decode_cursor(cursor) if cursor else None
        with self._reader() as reader:
            listed = reader.page(
                f,
                sort=sort,
                descending=descending,
                limit=None if limit is None else limit + 1,
                now=self.clock(),
                after=after,
                count=count,
            )
        items = listed.items if limit is None else listed.items[:limit]
        next_cursor = None
        if limit is not None and len(listed.items) > limit and items:
            last = items[-1]
            next_cursor = encode_cursor(_sort_value(last, sort), last.uuid)
        return Page(items, next_cursor, listed.total)

    def count_vms(self, f: VMFilter | None = None, *, estimate: bool = False) -> VMCount:
        """How many VMs ``f`` selects; ``estimate``: PostgreSQL's planner estimate, read
        without counting (SQLite counts)."""
        with self._reader() as reader:
            return reader.count(f or VMFilter(), now=self.clock(), estimate=estimate)

    def vm_tally(self) -> VMTally:
        """Live VMs in all and by state, in one grouped count that the live VMs' state index
        answers alone; and those without an owner and past their lease, as the VM list
        counts them. One count per figure read the table once each; one count of them all
        at once read every row (no index holds them all)."""
        live = m.VM.deleted_at.is_(None)
        with self.db.session() as s:
            q = select(m.VM.state, func.count()).where(live).group_by(m.VM.state)
            by_state = {state: int(n) for state, n in s.execute(q)}
        return VMTally(
            total=sum(by_state.values()),
            by_state=by_state,
            no_owner=self.count_vms(VMFilter(no_owner=True)).count,
            lease_expired=self.count_vms(VMFilter(expired=True)).count,
        )

    @contextmanager
    def _reader(self) -> Iterator[VMReader]:
        """A driver-level reader on a pooled connection outside a transaction (given back to
        the pool after): a page is one round trip to PostgreSQL, not three."""
        sqlite = self.db.backend == "sqlite"
        errors = driver_errors(sqlite=sqlite)
        try:
            with self.db.reading() as conn:
                yield VMReader(conn.connection, sqlite=sqlite, errors=errors)
        except errors as exc:
            raise StoreError(f"cannot read the inventory: {exc}") from None

    def vm_names(self, uuids: Iterable[str]) -> dict[str, str]:
        """UUID -> name for the VMs Corral knows (deleted ones included)."""
        wanted = sorted({u.lower() for u in uuids})
        out: dict[str, str] = {}
        with self.db.session() as s:
            for i in range(0, len(wanted), 500):
                q = select(m.VM.uuid, m.VM.name).where(m.VM.uuid.in_(wanted[i : i + 500]))
                out.update({u: n for u, n in s.execute(q).all()})
        return out

    def find_vm(self, ref: str) -> VMDetail:
        """One VM by UUID or by (unique) name, with its history."""
        with self.db.session() as s:
            vm, host = self.vm_row(s, ref)
            return _detail(s, vm, host)

    def events(
        self,
        *,
        vm: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        before: tuple[datetime, int] | None = None,
        limit: int = 100,
    ) -> list[EventView]:
        """Newest first; ``before`` (time, id) of the last event seen gives the next page."""
        with self.db.session() as s:
            q = select(m.Event, m.VM.name).outerjoin(m.VM, m.VM.uuid == m.Event.vm_uuid)
            if vm:
                q = q.where(m.Event.vm_uuid == self.vm_row(s, vm)[0].uuid)
            if kind:
                q = q.where(m.Event.kind == kind)
            if since:
                q = q.where(m.Event.at >= since)
            if before:
                at, event_id = before
                q = q.where(or_(m.Event.at < at, and_(m.Event.at == at, m.Event.id < event_id)))
            q = q.order_by(m.Event.at.desc(), m.Event.id.desc()).limit(limit)
            return [_event_view(e, name) for e, name in s.execute(q).all()]

    def set_metadata(self, ref: str, changes: dict[str, Any], *, actor: str = "cli") -> VMDetail:
        """Merge ``changes`` into the VM's latest metadata; write the domain, then the store.

        One writer at a time per VM, across threads and processes: the transaction starts by
        claiming the VM's row (see :func:`_claim`), reads what the previous writer committed,
        and keeps the claim until the store has the same values as the domain.
        """
        allowed = set(META_FIELDS) - {"created_by"}  # set once, when the VM is made
        unknown = set(changes) - allowed
        if unknown:
            raise ValidationError(f"unknown metadata field {sorted(unknown)[0]!r}.")
        cleaned = {k: _clean_meta(k, v) for k, v in changes.items()}
        with self.db.session() as s:
            uuid = self.vm_row(s, ref)[0].uuid
        with self.db.session() as s:
            vm = _claim(s, uuid)
            host_name = vm.host.name if vm.host else None
            if vm.deleted_at is not None:
                raise ConflictError(
                    f"VM {vm.name} was deleted on {vm.deleted_at:%Y-%m-%d}; its metadata is frozen."
                )
            if vm.host is None:
                raise ConflictError(f"VM {vm.name} has no host to write its metadata to.")
            old = row_to_meta(vm)
            new = replace(old, **cleaned)
            self.bounded(vm.host).set_metadata(
                vm.uuid, new, is_template=vm.is_template, revision=vm.meta_version
            )
            self.release(vm.host.name, wrote=True)
            diff = {}
            for k in changes:
                before, after = getattr(old, k), getattr(new, k)
                if before != after:
                    diff[k] = {"from": _plain(before), "to": _plain(after)}
                    setattr(vm, k, list(after) if k == "tags" else after)
            now = self.clock()
            if diff:
                vm.updated_at = now
                s.add(
                    m.Event(
                        at=now,
                        kind="metadata-changed",
                        vm_uuid=vm.uuid,
                        host_name=host_name,
                        details={**diff, "by": actor},
                    )
                )
            # The domain XML changed: the next sync must re-read it, not trust the old fingerprint.
            vm.fingerprint = ""
            s.flush()
            return _detail(s, vm, host_name)

    def list_volumes(self, *, orphaned_only: bool = False) -> list[VolumeView]:
        """Every volume once, a shared storage's volumes included: ``hosts`` lists who sees it.

        One pass over every row (the export's); :meth:`volumes_page` gives the same list a
        page at a time."""
        user_host = aliased(m.Host)
        with self.db.session() as s:
            q = (
                select(m.Volume, m.Pool, m.Host.name, m.VM.name, user_host.name)
                .join(m.Pool, m.Volume.pool_id == m.Pool.id)
                .join(m.Host, m.Pool.host_id == m.Host.id)
                .outerjoin(m.VM, m.VM.uuid == m.Volume.used_by)
                .outerjoin(user_host, user_host.id == m.VM.host_id)
                .order_by(m.Host.name, m.Pool.name, m.Volume.name)
            )
            if orphaned_only:
                q = q.where(m.Volume.used_by.is_(None))
            # The first row of a volume describes it; later rows only add hosts that see it.
            first: dict[tuple[str, str], tuple[m.Volume, str, str | None, str | None]] = {}
            seen_by: dict[tuple[str, str], list[str]] = {}
            for v, pool, host, vm_name, vm_host in s.execute(q):
                key = (pool.storage_key or f"pool:{pool.id}", v.path)
                seen_by.setdefault(key, []).append(host)
                first.setdefault(key, (v, pool.name, vm_name, vm_host))
            return [
                keyset.volume_view(v, pool_name, seen_by[key], vm_name, vm_host)
                for key, (v, pool_name, vm_name, vm_host) in first.items()
            ]

    def volumes_page(
        self,
        *,
        after: Sequence[object] | None,
        limit: int,
        orphaned_only: bool = False,
        count: bool = False,
    ) -> keyset.KeyPage[VolumeView]:
        """The volumes after the key ``after`` (host, pool, name), at most ``limit``."""
        key = keyset.check_key(after, 3)
        with self.db.session() as s:
            return keyset.volume_page(
                s, after=key, limit=limit, orphaned_only=orphaned_only, count=count
            )

    def storage_users_elsewhere(
        self, host_name: str, uuid: str, paths: Iterable[str]
    ) -> dict[str, list[str]]:
        """Which of ``paths`` a VM on another host uses (disk or backing chain), read live.

        Every other host is asked: a host that does not answer is an error, since what it
        does not say cannot be known to be unused.
        """
        wanted = set(paths)
        found: dict[str, list[str]] = {}
        if not wanted:
            return found
        with self.db.session() as s:
            others = list(s.scalars(select(m.Host).where(m.Host.name != host_name)))
        for host in sorted(others, key=lambda h: h.name):
            try:
                users = self.bounded(host).paths_in_use(exclude=uuid)
            except CorralError as exc:
                raise HostUnreachableError(
                    f"could not ask host {host.name} whether it uses the storage of VM {uuid} "
                    f"({exc.message}); nothing was deleted, try again when it answers."
                ) from None
            for path in sorted(wanted & set(users)):
                found.setdefault(path, []).extend(
                    f"{n} on {host.name}" for n in sorted(users[path])
                )
        return found

    def list_networks(self, *, unused_only: bool = False) -> list[NetworkView]:
        """Virtual networks per host, with how many live VMs have a NIC on each."""
        with self.db.session() as s:
            return list(keyset.network_page(s, unused_only=unused_only).items)

    def networks_page(
        self,
        *,
        after: Sequence[object] | None,
        limit: int,
        unused_only: bool = False,
        count: bool = False,
    ) -> keyset.KeyPage[NetworkView]:
        """The networks after the key ``after`` (host, name), at most ``limit``."""
        key = keyset.check_key(after, 2)
        with self.db.session() as s:
            return keyset.network_page(
                s, after=key, limit=limit, unused_only=unused_only, count=count
            )

    def export(self, folder: Path, fmt: str, chunk_size: int = 5000) -> list[Path]:
        """One file per table: hosts, vms (tombstones included), disks, snapshots, volumes;
        the VMs streamed ``chunk_size`` rows at a time (Settings.export_chunk_size)."""
        return export_inventory(
            self.db,
            folder,
            fmt,
            hosts=[as_row(h) for h in self.list_hosts()],
            volumes=(as_row(v) for v in self._every_volume(chunk_size)),
            chunk_size=chunk_size,
        )

    def _every_volume(self, chunk_size: int) -> Iterator[VolumeView]:
        """:meth:`list_volumes`' list read a page of ``chunk_size`` at a time, so an export
        holds one page of volumes, not every one (the pages neither repeat nor skip a row)."""
        after: Sequence[object] | None = None
        while True:
            page = self.volumes_page(after=after, limit=max(1, chunk_size))
            yield from page.items
            if page.next_key is None:
                return
            after = page.next_key

    # -- helpers --------------------------------------------------------------
    @staticmethod
    def _host(s: Any, name: str) -> m.Host:
        host = s.scalar(select(m.Host).where(m.Host.name == name))
        if host is None:
            raise NotFoundError(f"no host named {name!r}; see 'corral hosts list'.")
        return host  # type: ignore[no-any-return]

    @staticmethod
    def vm_row(s: Any, ref: str) -> tuple[m.VM, str | None]:
        """The VM (by UUID or unique live name) in session ``s``, and its host's name."""
        ref = ref.strip()
        if UUID_RE.match(ref.lower()):
            vm = s.get(m.VM, ref.lower())
            if vm is None:
                raise NotFoundError(f"no VM with UUID {ref}.")
        else:
            found = list(
                s.scalars(
                    select(m.VM).where(m.VM.name == ref).order_by(m.VM.deleted_at.is_not(None))
                )
            )
            live = [v for v in found if v.deleted_at is None]
            candidates = live or found
            if not candidates:
                raise NotFoundError(f"no VM named {ref[:100]!r}.")
            if len(live) > 1:
                raise ConflictError(f"{len(live)} VMs are named {ref!r}; give the UUID instead.")
            vm = candidates[0]
        return vm, vm.host.name if vm.host else None


def _sort_value(vm: VMSummary, sort: str) -> Any:
    """The value a keyset cursor holds for ``vm``: the column's, as the listing sorts it."""
    value = getattr(vm, sort)
    if isinstance(value, Enum):
        return value.value
    return value or "" if sort in ("owner", "department") else value


def _claim(s: Session, uuid: str) -> m.VM:
    """Bump the VM's metadata version as the transaction's first statement; the fresh row.

    The UPDATE holds PostgreSQL's row lock, or SQLite's database write lock, until commit:
    any other writer of this VM, in any thread or process, waits here and then reads what
    this one committed. The new version is what the domain's metadata is stamped with.
    """
    s.execute(
        update(m.VM).where(m.VM.uuid == uuid).values(meta_version=m.VM.meta_version + 1),
        execution_options={"synchronize_session": False},
    )
    row = s.scalar(select(m.VM).where(m.VM.uuid == uuid).execution_options(populate_existing=True))
    if row is None:
        raise NotFoundError(f"no VM with UUID {uuid}.")
    return row


#: The metadata fields that take one of a fixed set of values.
_CHOICES: dict[str, tuple[str, ...]] = {
    "environment": tuple(Environment),
    "protection_tier": tuple(ProtectionTier),
}


def _clean_meta(key: str, value: Any) -> Any:
    if value is None or value == "":
        return () if key == "tags" else None
    if key == "tags":
        items = value if isinstance(value, list | tuple) else str(value).split(",")
        tags = tuple(sorted({check_text(str(t), "a tag").strip() for t in items if str(t).strip()}))
        for t in tags:
            if len(t) > 64:
                raise ValidationError("a tag is at most 64 characters.")
        return tags
    if key == "expires_on":
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value))
        except ValueError:
            raise ValidationError(f"expiry date {value!r} is not a date like 2027-01-31.") from None
    text = check_text(str(value), key, multiline=key == "purpose").strip()
    if key in _CHOICES:  # checked here, not only in the REST schema: the CLI and pages too
        allowed = _CHOICES[key]
        if text not in allowed:
            raise ValidationError(f"{key} {text!r} is unknown; use one of {', '.join(allowed)}.")
    limit = 1024 if key == "purpose" else 256
    if len(text) > limit:
        raise ValidationError(f"{key} is at most {limit} characters.")
    return text


def _plain(v: Any) -> Any:
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, tuple):
        return list(v)
    return v


def _detail(s: Session, vm: m.VM, host_name: str | None) -> VMDetail:
    """The VM of session ``s`` with its history, oldest event first."""
    events = list(
        s.scalars(
            select(m.Event).where(m.Event.vm_uuid == vm.uuid).order_by(m.Event.at, m.Event.id)
        )
    )
    return vm_detail(vm, host_name, _history(events, vm.name))


def _history(events: list[m.Event], current_name: str) -> tuple[EventView, ...]:
    """A VM's events, oldest first, each with the name the VM had then (renames walked back)."""
    out = []
    name = current_name
    for e in reversed(events):
        if e.kind == "renamed" and isinstance(e.details.get("from"), str):
            out.append(_event_view(e, e.details.get("to") or name))
            name = e.details["from"]
        else:
            out.append(_event_view(e, name))
    return tuple(out[::-1])


def _event_view(e: m.Event, vm_name: str | None = None) -> EventView:
    return EventView(
        id=e.id,
        at=e.at,
        kind=e.kind,
        vm_uuid=e.vm_uuid,
        vm_name=vm_name,
        host=e.host_name,
        details=e.details,
    )


__all__ = [
    "EventView",
    "HostView",
    "Inventory",
    "ListedHost",
    "NetworkView",
    "OwnerMeta",
    "Page",
    "StoreError",
    "VMDetail",
    "VMFilter",
    "VMSummary",
    "VolumeView",
    "check_uuid",
]
