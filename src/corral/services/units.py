"""Deployed blueprints ("units") handled as one: deploy, stop, redeploy to pristine, tear down.

A unit is born when its blueprint request is provisioned (corral.services.fulfil): before its
VMs are made, it gets its own libvirt network with no forward on every host it uses (a name
unique to the unit), and its VMs are made shut off on that network. Right after they exist
each gets its pristine snapshot (internal, of its system disk: see
corral.hypervisor.libvirt.units for why), then the unit starts tier by tier in its start
order: each tier's pre hooks, its VMs started, each VM ready, its post hooks. A tier's start
delay is waited between the tier before it being up and its own pre hooks, on this one path
that deploy and redeploy share (the first tier to start waits for nothing: there is no tier
before it). VMs are made shut off, so the delay belongs to starting, not to making.

Every operation is claim, act, commit, like provisioning and the reclamation executor:

1. **claim** (one transaction): the unit's ``op`` and ``worker`` are set; refused while
   another live process works on it (a process that died is taken over);
2. **act**: each step can be repeated (a VM already off, a network already gone, a snapshot
   already taken changes nothing), so a run that died is simply done again;
3. **commit**: the unit's new state, ``op`` cleared; a failure records the reason instead.

Each of those writes is an audit entry (the ``units`` table is watched).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.domain.access import Permission, Principal
from corral.domain.blueprint import Blueprint, Tier
from corral.errors import ConflictError, CorralError, NotFoundError
from corral.hypervisor.units import UnitHost
from corral.inventory.service import Inventory
from corral.services.blueprints import tier_from_stored
from corral.services.provision import seed_volume_name
from corral.services.templates import TemplateService
from corral.services.unit_start import Starter, StartFailed
from corral.services.workers import alive, this_worker
from corral.store import models as m

DEPLOYING, RUNNING, STOPPED, FAILED, TORN_DOWN = (
    "deploying", "running", "stopped", "failed", "torn-down"
)  # fmt: skip
DEPLOY, STOP, REDEPLOY, TEARDOWN = "deploy", "stop", "redeploy", "teardown"
CREATED, REMOVED = "created", "removed"  # corral.services.fulfil's VM states

Step = Callable[[str], None]
Crash = Callable[[str], None]

_BUSY: set[int] = set()
_BUSY_LOCK = threading.Lock()


def _quiet(_line: str) -> None:
    """No progress reports."""


def _no_crash(_point: str) -> None:
    """Production: never stop on purpose (tests stop a run at a named point)."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class UnitVM:
    name: str
    tier: str
    host: str
    uuid: str
    template: str


@dataclass(frozen=True, slots=True)
class UnitView:
    """A unit as its users see it: its request, network, state and VMs in start order."""

    request_id: int
    blueprint: str
    department: str
    network: str
    hosts: tuple[str, ...]
    state: str
    op: str | None
    last_error: str | None
    vms: tuple[UnitVM, ...]


def network_name(request_id: int) -> str:
    """Unique to the unit even among Corral installations sharing a host (random suffix)."""
    return f"corral-u{request_id}-{secrets.token_hex(3)}"


class UnitService:
    def __init__(
        self,
        inventory: Inventory,
        *,
        starter: Starter | None = None,
        clock: Callable[[], datetime] = _now,
        crash: Crash = _no_crash,
        grace_s: float = 60.0,
    ) -> None:
        self.inventory = inventory
        self.db = inventory.db
        self.starter = starter or Starter()
        self.clock = clock
        self.crash = crash
        self.grace_s = grace_s
        self.templates = TemplateService(inventory.db)

    # -- reading -------------------------------------------------------------------------
    def get(self, request_id: int, who: Principal) -> UnitView:
        with self.db.session() as s:
            return _view(s, self._visible(s, request_id, who))

    def all(self, who: Principal) -> list[UnitView]:
        seen = who.visible_departments(Permission.request_read)
        with self.db.session() as s:
            q = select(m.UnitRow).order_by(m.UnitRow.request_id)
            if seen is not None:
                q = q.where(m.UnitRow.department.in_(seen))
            return [_view(s, r) for r in s.scalars(q)]

    # -- deploy (called by corral.services.fulfil) ------------------------------------------
    def prepare(self, request_id: int, hosts: set[str], say: Step = _quiet) -> str:
        """Claim the deploy and give the unit its network on each of ``hosts``; its name."""
        with self.db.session() as s:
            row = s.scalar(select(m.UnitRow).where(m.UnitRow.request_id == request_id))
            if row is None:
                row = self._new(s, request_id)
            row.op, row.worker, row.updated_at = DEPLOY, this_worker(), self.clock()
            row.hosts = sorted(set(row.hosts) | hosts)
            name = row.network
        for host in sorted(hosts):
            if self._host(host).ensure_isolated_network(name):
                say(f"network {name}: created on {host}")
        self.crash("network")
        return name

    def deployed(self, request_id: int, say: Step = _quiet) -> UnitView:
        """The unit's VMs exist: their pristine snapshots, then the unit starts."""
        with self.db.session() as s:
            row = _unit(s, request_id)
            if row.state != DEPLOYING:
                return _view(s, row)

        def act() -> str:
            self._take_pristine(request_id, say)
            return self._start_all(request_id, say)

        return self._finish(request_id, act)

    def discard(
        self, request_id: int, reason: str, say: Step = _quiet, *, keep_networks: bool = False
    ) -> list[str]:
        """A deploy that failed: the unit is torn down with the reason, its networks removed
        from every host that answers (``keep_networks``: its VMs that could not be rolled
        back still use them, and the unit is failed instead). What stayed on a host that did
        not answer, as "network N on H"."""
        with self.db.session() as s:
            row = s.scalar(select(m.UnitRow).where(m.UnitRow.request_id == request_id))
            if row is None:
                return []
            name, hosts = row.network, list(row.hosts)
        left = [] if keep_networks else self._remove_networks(name, hosts, say)
        with self.db.session() as s:
            row = _unit(s, request_id)
            row.state = FAILED if keep_networks else TORN_DOWN
            row.op, row.updated_at = None, self.clock()
            row.last_error = reason + (f" Not removed: {', '.join(left)}." if left else "")
        return left

    # -- the operations ---------------------------------------------------------------------
    def stop(self, request_id: int, who: Principal, say: Step = _quiet) -> UnitView:
        """Power the unit's VMs off, in reverse start order."""
        return self._operate(request_id, who, STOP, lambda: self._stop_all(request_id, say))

    def redeploy(self, request_id: int, who: Principal, say: Step = _quiet) -> UnitView:
        """Every VM back to its pristine snapshot, then the unit starts in order."""

        def act() -> str:
            self._take_pristine(request_id, say)  # a deploy cut short before it took them all
            for vm in self._vms(request_id):
                self._host(vm.host).revert_pristine(vm.uuid)
                say(f"{vm.name}: reverted to its pristine state")
                self.crash(f"{vm.name}:reverted")
            return self._start_all(request_id, say)

        return self._operate(request_id, who, REDEPLOY, act)

    def teardown(self, request_id: int, who: Principal, say: Step = _quiet) -> UnitView:
        """Delete the unit's VMs (domains and their volumes) and its network."""
        return self._operate(request_id, who, TEARDOWN, lambda: self._teardown(request_id, say))

    def _operate(
        self, request_id: int, who: Principal, op: str, act: Callable[[], str]
    ) -> UnitView:
        with _BUSY_LOCK:
            if request_id in _BUSY:
                raise ConflictError(f"unit {request_id} is busy with another operation.")
            _BUSY.add(request_id)
        try:
            self._claim(request_id, who, op)
            self.crash(f"{op}:claimed")
            return self._finish(request_id, act)
        finally:
            with _BUSY_LOCK:
                _BUSY.discard(request_id)

    def _claim(self, request_id: int, who: Principal, op: str) -> None:
        with self.db.session() as s:
            row = self._visible(s, request_id, who, Permission.request_create)
            if row.state == TORN_DOWN:
                raise ConflictError(f"unit {request_id} was torn down; nothing is left of it.")
            if row.op is not None and row.worker != this_worker() and alive(row.worker):
                raise ConflictError(
                    f"unit {request_id} is busy ({row.op}, process {row.worker}); wait for it."
                )
            row.op, row.worker, row.updated_at = op, this_worker(), self.clock()

    def _finish(self, request_id: int, act: Callable[[], str]) -> UnitView:
        """Run ``act`` (it returns the new state) and commit it, or record the failure."""
        error: str | None = None
        try:
            reached = act()
        except StartFailed as exc:
            reached, error = FAILED, exc.reason
        except CorralError as exc:
            reached, error = FAILED, exc.message
        with self.db.session() as s:
            row = _unit(s, request_id)
            row.state = reached
            row.op, row.last_error, row.updated_at = None, error, self.clock()
            return _view(s, row)

    # -- the acts ---------------------------------------------------------------------------
    def _take_pristine(self, request_id: int, say: Step) -> None:
        """Each VM's pristine snapshot, where it has none yet. All are taken before the unit
        first starts, so a VM without one has never been started by Corral."""
        for vm in self._vms(request_id):
            try:
                if self._host(vm.host).take_pristine(vm.uuid):
                    say(f"{vm.name}: pristine snapshot taken")
            except CorralError as exc:
                raise StartFailed(
                    f"{vm.name} on {vm.host}: no pristine snapshot: {exc.message}"
                ) from None
            self.crash(f"{vm.name}:pristine")

    def _start_all(self, request_id: int, say: Step) -> str:
        with self.db.session() as s:
            row = _unit(s, request_id)
            tiers = [tier_from_stored(t) for t in row.tiers]
            name, blueprint = row.network, row.blueprint
        vms = self._vms(request_id)
        for n, tier in enumerate(_start_order(blueprint, tiers, vms)):
            mine = [v for v in vms if v.tier == tier.name]
            if n and tier.start_delay_s > 0:
                say(f"tier {tier.name}: waiting {tier.start_delay_s:g} s after the tier before it")
                self.starter.sleep(tier.start_delay_s)
            env = {
                "CORRAL_UNIT": str(request_id),
                "CORRAL_NETWORK": name,
                "CORRAL_TIER": tier.name,
                "CORRAL_VMS": ",".join(v.name for v in mine),
            }
            for hook in tier.pre:
                self.starter.run_hook(hook, env, f"tier {tier.name}'s pre")
            for vm in mine:
                self._start_one(tier, vm)
                say(f"{vm.name}: started and ready")
            for hook in tier.post:
                self.starter.run_hook(hook, env, f"tier {tier.name}'s post")
            self.crash(f"{tier.name}:started")
        self._sync({v.host for v in vms})
        return RUNNING

    def _start_one(self, tier: Tier, vm: UnitVM) -> None:
        """Start ``vm`` and wait until it is ready; StartFailed names its tier, VM and host."""
        try:
            host = self._host(vm.host)
            if host.run_state(vm.uuid) != "running":
                host.start(vm.uuid)
            self.starter.wait_ready(tier.ready, vm.name, _running(host, vm.uuid))
        except CorralError as exc:
            raise StartFailed(
                f"tier {tier.name}: {vm.name} on {vm.host} did not start: {exc.message}"
            ) from None
        except StartFailed as exc:
            raise StartFailed(f"tier {tier.name}: {vm.name} on {vm.host}: {exc.reason}") from None

    def _stop_all(self, request_id: int, say: Step) -> str:
        vms = self._vms(request_id)
        for vm in reversed(vms):
            host = self._host(vm.host)
            if host.run_state(vm.uuid) == "running":
                say(f"{vm.name}: {host.power_off(vm.uuid, grace_s=self.grace_s)}")
        self._sync({v.host for v in vms})
        return STOPPED

    def _teardown(self, request_id: int, say: Step) -> str:
        for vm in reversed(self._vms(request_id)):
            host = self._host(vm.host)
            host.delete_vm(vm.uuid, delete_storage=True)
            self._delete_seed(host, vm)
            with self.db.session() as s:
                for r in s.scalars(select(m.RequestVMRow).where(m.RequestVMRow.name == vm.name)):
                    r.state = REMOVED
            say(f"{vm.name}: deleted from {vm.host}")
            self.crash(f"{vm.name}:deleted")
        with self.db.session() as s:
            row = _unit(s, request_id)
            name, hosts = row.network, list(row.hosts)
        left = self._remove_networks(name, hosts, say)
        if left:
            raise ConflictError(
                f"{', '.join(left)} not removed (the host did not answer); tear the unit "
                "down again once it does."
            )
        self._sync(set(hosts))
        return TORN_DOWN

    # -- helpers ----------------------------------------------------------------------------
    def _new(self, s: Session, request_id: int) -> m.UnitRow:
        req = s.get(m.VMRequest, request_id)
        if req is None or not req.blueprint:
            raise NotFoundError(f"request {request_id} is not a blueprint request.")
        bp = s.scalar(select(m.BlueprintRow).where(m.BlueprintRow.name == req.blueprint))
        row = m.UnitRow(
            request_id=request_id,
            blueprint=req.blueprint,
            department=req.department,
            network=network_name(request_id),
            hosts=[],
            tiers=list(bp.tiers) if bp is not None else [],
            state=DEPLOYING,
            op=DEPLOY,
            worker=this_worker(),
            updated_at=self.clock(),
        )
        s.add(row)
        s.flush()
        return row

    def _visible(
        self,
        s: Session,
        request_id: int,
        who: Principal,
        permission: Permission = Permission.request_read,
    ) -> m.UnitRow:
        row = s.scalar(select(m.UnitRow).where(m.UnitRow.request_id == request_id))
        if row is None or not who.sees(permission, row.department):
            raise NotFoundError(
                f"no unit of request {request_id} among those you may see; "
                "'corral blueprint units' lists them."
            )
        return row

    def _vms(self, request_id: int) -> list[UnitVM]:
        with self.db.session() as s:
            rows = s.scalars(
                select(m.RequestVMRow)
                .where(m.RequestVMRow.request_id == request_id, m.RequestVMRow.state == CREATED)
                .order_by(m.RequestVMRow.seq)
            )
            return [
                UnitVM(r.name, r.tier, r.host, r.uuid or "", r.template) for r in rows if r.uuid
            ]

    def _host(self, name: str) -> UnitHost:
        return cast(UnitHost, self.inventory.open_host(name))

    def _delete_seed(self, host: UnitHost, vm: UnitVM) -> None:
        """A unit's seed is read-only, so deleting the VM leaves it: it goes by name."""
        try:
            pool = self.templates.get(vm.template).pool
        except NotFoundError:
            return  # the template is gone, and with it where its pool was
        host.delete_volume(pool, seed_volume_name(vm.name))

    def _remove_networks(self, name: str, hosts: list[str], say: Step) -> list[str]:
        """Remove the network from each host that answers; those it stayed on."""
        left = []
        for host in hosts:
            try:
                if self._host(host).remove_network(name):
                    say(f"network {name}: removed from {host}")
            except CorralError as exc:
                say(f"network {name}: not removed from {host}: {exc.message}")
                left.append(f"network {name} on {host}")
        return left

    def _sync(self, hosts: set[str]) -> None:
        if hosts:
            # the next sync reads them if this one fails; the unit's state is already right
            with contextlib.suppress(CorralError):
                self.inventory.sync(sorted(hosts))


def _start_order(blueprint: str, tiers: list[Tier], vms: list[UnitVM]) -> tuple[Tier, ...]:
    """The stored tiers' start order; tiers no longer described (a blueprint removed before
    its unit was made) start in the order their VMs were made."""
    known = {t.name for t in tiers}
    extra = [Tier(v.tier, "-") for v in vms if v.tier not in known]
    unique = list({t.name: t for t in [*tiers, *extra]}.values())
    return Blueprint(blueprint, tuple(unique)).start_order()


def _running(host: UnitHost, uuid: str) -> Callable[[], bool]:
    return lambda: host.run_state(uuid) == "running"


def _unit(s: Session, request_id: int) -> m.UnitRow:
    row = s.scalar(select(m.UnitRow).where(m.UnitRow.request_id == request_id))
    if row is None:
        raise NotFoundError(f"request {request_id} has no unit.")
    return row


def _view(s: Session, row: m.UnitRow) -> UnitView:
    vms = s.scalars(
        select(m.RequestVMRow)
        .where(m.RequestVMRow.request_id == row.request_id, m.RequestVMRow.state == CREATED)
        .order_by(m.RequestVMRow.seq)
    )
    return UnitView(
        request_id=row.request_id,
        blueprint=row.blueprint,
        department=row.department,
        network=row.network,
        hosts=tuple(row.hosts),
        state=row.state,
        op=row.op,
        last_error=row.last_error,
        vms=tuple(UnitVM(v.name, v.tier, v.host, v.uuid or "", v.template) for v in vms),
    )


__all__ = ["UnitService", "UnitVM", "UnitView", "network_name"]
