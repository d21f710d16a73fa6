"""Approved request -> VMs: claim, make, commit, so a retried or crashed run never makes two.

1. **claim** (one transaction, under the decisions lock): the placement engine chooses a host
   for each VM among the hosts whose pool holds the template's image, on the running fleet
   plus every *other* request's reservation. The VMs' names (derived from the request, so a
   rerun finds them) and hosts are written to ``request_vms``, the request's reservation moves
   to those hosts and the request becomes ``provisioning``. No host: the request fails with
   the reason, and its reservation is released.
2. **make**: each VM not made yet is made by :class:`ProvisionService` with the request's
   owner, department, purpose, environment and lease in its metadata. A VM whose making had
   started in a run that died is first looked for on its host (libvirt may have defined it
   before the run died: it is taken as it is, started if it is not running) and what that run
   left of it (its disk and seed volumes, named after the VM) is removed before it is made
   again. Each VM made is recorded at once.
3. **commit**: the request becomes ``provisioned`` with its VMs' UUIDs; its reservation goes.

A blueprint's VMs are a unit (corral.services.units): its isolated network is made on their
hosts before step 2, they are made shut off on it, and after step 3 each gets its pristine
snapshot and the unit starts in its start order.

A VM that cannot be made undoes the request's VMs made so far (a request gets all of its VMs
or none); the request fails with the reason its requester reads and the reservation is
released. A run that finds the request ``provisioning`` resumes at step 2, unless the process
that claimed it is still working on it.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import NamedTuple, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.domain.blueprint import Part
from corral.domain.provision import ProvisionSpec, Template
from corral.domain.requests import RequestState
from corral.engines.approval import Booked, CapacityStatus, Slot, place_new_vms
from corral.engines.planning.model import VM
from corral.engines.planning.placement.filters.image import ImageFilter
from corral.errors import ConflictError, CorralError, NotFoundError
from corral.hypervisor.provision import Provisioner
from corral.services.provision import ProvisionService, disk_volume_name, seed_volume_name
from corral.services.quotas import decision_session, lock_decisions
from corral.services.requests import (
    EXTENSION,
    RequestService,
    RequestView,
    move_request,
    parts_of,
    request_view,
)
from corral.services.units import UnitService
from corral.services.workers import alive, this_worker
from corral.store import models as m

log = logging.getLogger(__name__)
S = RequestState
GB, GIB = 10**9, 2**30
CLAIMED, MAKING, CREATED, REMOVED = "claimed", "making", "created", "removed"

#: The requests this process is provisioning now (a job and a command of one server, twice).
_BUSY: set[int] = set()
_BUSY_LOCK = threading.Lock()

Crash = Callable[[str], None]
Step = Callable[[str], None]


def _no_crash(_point: str) -> None:
    """Production: never stop on purpose (tests stop the run at a named point)."""


def _quiet(_line: str) -> None:
    """No progress reports."""


def vm_name(base: str, request_id: int, n: int) -> str:
    """A request's n-th VM: the template's name, the request id and n (a valid libvirt name
    and hostname), so a rerun of the request finds the same VM."""
    stem = re.sub(r"[^A-Za-z0-9-]+", "-", base).strip("-")[:40] or "vm"
    return f"{stem}-r{request_id}-{n}"


class _Slot(NamedTuple):
    """A VM's host and the part (tier) it belongs to."""

    slot: Slot
    part: Part


class _Refused(Exception):
    """The provisioning service could not make a VM (and rolled it back): the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PlannedVM:
    """One VM of a request as claimed: its name, host and size, and whether it exists."""

    id: int
    seq: int
    tier: str
    name: str
    template: str
    host: str
    vcpus: int
    memory_mib: int
    disk_gb: float
    state: str
    uuid: str | None


class RequestProvisioner:
    """Turns an approved request into its VMs (or into a failure that leaves nothing)."""

    def __init__(
        self,
        requests: RequestService,
        provisioner: ProvisionService,
        *,
        crash: Crash = _no_crash,
        units: UnitService | None = None,
    ) -> None:
        self.requests = requests
        self.provisioner = provisioner
        self.db = requests.db
        self.clock = requests.clock
        self.crash = crash
        self.units = units or UnitService(provisioner.inventory, clock=requests.clock)

    # -- the entry point ---------------------------------------------------------------------
    def provision(self, request_id: int, actor: str, on_step: Step | None = None) -> RequestView:
        """Make the VMs of an approved request, or resume a run that stopped; a request
        already provisioned or failed is returned as it is (a retry makes nothing)."""
        say = on_step or _quiet
        with _BUSY_LOCK:
            if request_id in _BUSY:
                raise ConflictError(f"request {request_id} is being provisioned right now.")
            _BUSY.add(request_id)
        try:
            plan = self._claim(request_id, actor)
            if plan is None:
                self._unit_deployed(request_id, say)  # a run that died before the unit started
                return self.requests_view(request_id)
            say(f"request {request_id}: " + ", ".join(f"{p.name} on {p.host}" for p in plan))
            self.crash("claimed")
            network = self._unit_network(request_id, plan, say)
            failure = self._make_all(plan, request_id, say, network)
            if failure is not None:
                return self._fail(request_id, actor, failure, say)
            self.crash("made")
            view = self._commit(request_id, actor)
            self._unit_deployed(request_id, say)
            return view
        finally:
            with _BUSY_LOCK:
                _BUSY.discard(request_id)

    def ready(self, request_id: int) -> None:
        """Refuse at once a request with nothing to make (before a job is started for it)."""
        with self.db.session() as s:
            row = _request(s, request_id)
            if row.kind == EXTENSION or row.state not in (S.approved.value, S.provisioning.value):
                raise ConflictError(
                    f"request {request_id} is {row.state}; only an approved request (or one "
                    "whose provisioning stopped) is provisioned."
                )

    def requests_view(self, request_id: int) -> RequestView:
        with self.db.session() as s:
            return request_view(s, _request(s, request_id))

    def planned(self, request_id: int) -> list[PlannedVM]:
        """The VMs claimed for a request, in the order they are made."""
        with self.db.session() as s:
            return _planned(s, request_id)

    # -- 1. claim ------------------------------------------------------------------------------
    def _claim(self, request_id: int, actor: str) -> list[PlannedVM] | None:
        """The VMs to make (claimed now, or by a run that stopped); None when nothing is left
        to do (provisioned, or failed here for want of a host)."""
        with decision_session(self.db) as s:
            row = _request(s, request_id)
            lock_decisions(s, row.department)
            s.refresh(row)
            state = S(row.state)
            if row.kind == EXTENSION:
                raise ConflictError(f"request {request_id} extends a lease; it makes no VM.")
            if state in (S.provisioned, S.failed):
                return None
            if state is S.provisioning:
                return self._take_over(s, request_id)
            if state is not S.approved:
                raise ConflictError(
                    f"request {request_id} is {state.value}; only an approved request is "
                    "provisioned."
                )
            slots, reason = self._place(s, row)
            now = self.clock()
            if reason is not None:
                row.failure_reason = reason
                move_request(s, row, S.failed, actor, "failed", now, reason)
                return None
            self._book(s, row, slots, now)
            where = ", ".join(f"{x.slot.vm} on {x.slot.host}" for x in slots)
            move_request(s, row, S.provisioning, actor, "provisioning", now, where)
            s.flush()
            return _planned(s, request_id)

    def _take_over(self, s: Session, request_id: int) -> list[PlannedVM]:
        """Resume a run that stopped; refuse while the process that claimed it still runs."""
        rows = s.scalars(select(m.RequestVMRow).where(m.RequestVMRow.request_id == request_id))
        me = this_worker()
        for r in rows:
            if r.worker and r.worker != me and alive(r.worker):
                raise ConflictError(
                    f"request {request_id} is being provisioned by process {r.worker}; "
                    "wait for it to finish."
                )
            r.worker = me
        return _planned(s, request_id)

    def _place(self, s: Session, row: m.VMRequest) -> tuple[list[_Slot], str | None]:
        """Hosts for the request's VMs (tier by tier, each among the hosts holding its
        template's image), or the reason there are none."""
        booked = _booked_by_others(s, row.id)
        found: list[_Slot] = []
        for part in parts_of(row):
            try:
                template = self.provisioner.templates.get(part.template)
            except NotFoundError:
                return [], f"template {part.template} is not in the catalog (any more)."
            holders = image_hosts(s, template)
            if not holders:
                return [], (
                    f"no host holds template {template.name}'s image ({template.pool}/"
                    f"{template.volume}); copy it to a host's pool and sync, then request again."
                )
            base = part.tier or part.template
            vms = [
                VM(vm_name(base, row.id, n + 1), part.size.vcpus, part.size.memory_mib)
                for n in range(part.count)
            ]
            verdict = place_new_vms(
                self.requests.base_state(),
                booked,
                vms,
                failures=self.requests.rules.ha_failures,
                extra=(ImageFilter(holders, f"{template.pool}/{template.volume}"),),
            )
            ok = verdict.status is CapacityStatus.placed or (
                verdict.status is CapacityStatus.breaks_ha
                and row.capacity_status == CapacityStatus.breaks_ha.value  # the approvers knew
            )
            if not ok:
                return [], "no host can take the VMs now: " + "; ".join(verdict.reasons) + "."
            found.extend(_Slot(slot, part) for slot in verdict.slots)
            booked += [Booked(x.host, x.vcpus, x.memory_mib) for x in verdict.slots]
        return found, None

    def _book(self, s: Session, row: m.VMRequest, slots: Sequence[_Slot], now: datetime) -> None:
        """Write the VMs to make and move the request's reservation to their hosts."""
        for r in s.scalars(
            select(m.RequestReservation).where(m.RequestReservation.request_id == row.id)
        ):
            s.delete(r)
        me = this_worker()
        for n, (slot, part) in enumerate(slots):
            s.add(
                m.RequestReservation(
                    request_id=row.id,
                    host=slot.host,
                    vm=slot.vm,
                    vcpus=slot.vcpus,
                    memory_mib=slot.memory_mib,
                    disk_gb=part.size.disk_gb,
                )
            )
            s.add(
                m.RequestVMRow(
                    request_id=row.id,
                    seq=n,
                    tier=part.tier,
                    name=slot.vm,
                    template=part.template,
                    host=slot.host,
                    vcpus=slot.vcpus,
                    memory_mib=slot.memory_mib,
                    disk_gb=part.size.disk_gb,
                    state=CLAIMED,
                    worker=me,
                    updated_at=now,
                )
            )
        row.placement = [{"vm": x.slot.vm, "host": x.slot.host} for x in slots]

    # -- 2. make -------------------------------------------------------------------------------
    def _unit_network(self, request_id: int, plan: list[PlannedVM], say: Step) -> str | None:
        """A blueprint's VMs are a unit: its isolated network on their hosts (made shut off,
        they start as a unit once each has its pristine snapshot)."""
        with self.db.session() as s:
            if not _request(s, request_id).blueprint:
                return None
        return self.units.prepare(request_id, {p.host for p in plan}, say)

    def _unit_deployed(self, request_id: int, say: Step) -> None:
        with self.db.session() as s:
            row = _request(s, request_id)
            if not row.blueprint or row.state != S.provisioned.value:
                return
        self.units.deployed(request_id, say)

    def _make_all(
        self, plan: list[PlannedVM], request_id: int, say: Step, network: str | None = None
    ) -> str | None:
        """Make every VM not made yet, in order; the reason of the first that fails."""
        with self.db.session() as s:
            row = _request(s, request_id)
            spec_of = _spec_maker(row, self.clock().date(), network)
        for vm in plan:
            if vm.state == CREATED:
                continue
            try:
                uuid = self._make(vm, spec_of, say)
            except CorralError as exc:
                return f"{vm.name} on {vm.host}: {exc.message}"
            except _Refused as exc:
                return exc.reason
            self._set(vm.id, CREATED, uuid)
            say(f"{vm.name}: made on {vm.host} ({uuid})")
            self.crash(f"{vm.name}:created")
        return None

    def _make(self, vm: PlannedVM, spec_of: Callable[[PlannedVM], ProvisionSpec], say: Step) -> str:
        """The VM's UUID once it exists (made now, or found made by a run that stopped)."""
        if vm.state == MAKING:
            found = self._recover(vm)
            if found is not None:
                say(f"{vm.name}: found on {vm.host}, made by a run that stopped")
                return found
        else:
            self._set(vm.id, MAKING)
        self.crash(f"{vm.name}:making")

        def step(done: str) -> None:
            say(f"{vm.name}: {done}")
            self.crash(f"{vm.name}:{done}")

        result = self.provisioner.provision(spec_of(vm), step)
        if result.ok and result.uuid is not None:
            return result.uuid
        reason = f"{vm.name} on {vm.host}: {result.reason}"
        if result.leftovers:
            reason += f" (left on the host: {', '.join(result.leftovers)})"
        raise _Refused(reason)

    def _recover(self, vm: PlannedVM) -> str | None:
        """A VM a stopped run was making: its UUID if libvirt has it (started if it is not
        running); else what that run left of it (its volumes) is removed."""
        host = self.provisioner.inventory.open_host(vm.host)
        hv = cast(Provisioner, host)
        uuid = hv.domain_named(vm.name)
        if uuid is not None:
            if host.run_state(uuid) != "running":
                host.start(uuid)
            self.provisioner.inventory.sync([vm.host])
            return uuid
        pool = self.provisioner.templates.get(vm.template).pool
        for volume in (disk_volume_name(vm.name), seed_volume_name(vm.name)):
            if hv.delete_volume(pool, volume):
                log.info("removed %s/%s left by a stopped run", pool, volume)
        return None

    def _set(self, vm_id: int, state: str, uuid: str | None = None) -> None:
        with self.db.session() as s:
            row = s.get(m.RequestVMRow, vm_id)
            if row is None:
                return
            row.state = state
            if uuid is not None:
                row.uuid = uuid
            row.updated_at = self.clock()

    # -- 3. commit, or undo --------------------------------------------------------------------
    def _commit(self, request_id: int, actor: str) -> RequestView:
        with self.db.session() as s:
            row = _request(s, request_id)
            if row.state != S.provisioning.value:
                return request_view(s, row)  # another run finished it
            uuids = [p.uuid for p in _planned(s, request_id) if p.uuid]
            row.provisioned_vms = uuids
            move_request(
                s, row, S.provisioned, actor, "provisioned", self.clock(), ", ".join(uuids)
            )
            return request_view(s, row)

    def _fail(self, request_id: int, actor: str, reason: str, say: Step) -> RequestView:
        """Undo the VMs made so far, then fail the request (its reservation is released)."""
        left = self._undo(request_id, say)
        if left:
            reason += f" Not removed (delete by hand): {', '.join(left)}."
        # a unit's networks go with its VMs (where VMs stayed, so do they; the unit is failed)
        networks = self.units.discard(request_id, reason, say, keep_networks=bool(left))
        if networks:
            reason += f" Not removed (the host did not answer): {', '.join(networks)}."
        say(f"request {request_id} failed: {reason}")
        with self.db.session() as s:
            row = _request(s, request_id)
            row.failure_reason = reason
            move_request(s, row, S.failed, actor, "failed", self.clock(), reason)
            return request_view(s, row)

    def _undo(self, request_id: int, say: Step) -> list[str]:
        """Delete the request's VMs made so far (domain, disk, seed); what could not go."""
        left: list[str] = []
        hosts: set[str] = set()
        for vm in reversed(self.planned(request_id)):
            if vm.state != CREATED or vm.uuid is None:
                continue
            try:
                hv = cast(Provisioner, self.provisioner.inventory.open_host(vm.host))
                hv.delete_vm(vm.uuid, delete_storage=False)
                pool = self.provisioner.templates.get(vm.template).pool
                for volume in (disk_volume_name(vm.name), seed_volume_name(vm.name)):
                    hv.delete_volume(pool, volume)
            except CorralError as exc:
                log.warning("could not remove %s: %s", vm.name, exc.message)
                left.append(f"{vm.name} on {vm.host}")
                continue
            hosts.add(vm.host)
            self._set(vm.id, REMOVED)
            say(f"{vm.name}: removed from {vm.host}")
        if hosts:
            try:
                self.provisioner.inventory.sync(sorted(hosts))
            except CorralError as exc:
                log.warning("inventory not updated after the rollback: %s", exc.message)
        return left


def image_hosts(s: Session, template: Template) -> frozenset[str]:
    """The hosts whose pool of the template's pool name holds its volume (last sync)."""
    q = (
        select(m.Host.name)
        .join(m.Pool, m.Pool.host_id == m.Host.id)
        .join(m.Volume, m.Volume.pool_id == m.Pool.id)
        .where(m.Pool.name == template.pool, m.Volume.name == template.volume)
    )
    return frozenset(s.scalars(q))


def _booked_by_others(s: Session, request_id: int) -> list[Booked]:
    r = m.RequestReservation
    rows = s.execute(select(r.host, r.vcpus, r.memory_mib).where(r.request_id != request_id))
    return [Booked(host, float(vcpus), float(mib)) for host, vcpus, mib in rows]


def _spec_maker(
    row: m.VMRequest, today: date, network: str | None = None
) -> Callable[[PlannedVM], ProvisionSpec]:
    """The provisioning spec of each VM: the request's people, purpose and lease; a unit's
    VMs on the unit's network, made shut off."""
    expires = today + timedelta(days=row.lease_days)
    tier_networks = {p.tier: p.networks for p in parts_of(row)} if network else {}
    owner, department, requester = row.owner, row.department, row.requester
    purpose, environment, request_id = row.purpose, row.environment, row.id

    def spec(vm: PlannedVM) -> ProvisionSpec:
        return ProvisionSpec(
            name=vm.name,
            template=vm.template,
            host=vm.host,
            owner=owner,
            department=department,
            created_by=requester,
            expires_on=expires,
            vcpus=vm.vcpus,
            memory_mib=vm.memory_mib,
            disk_gib=math.ceil(vm.disk_gb * GB / GIB) if vm.disk_gb > 0 else None,
            purpose=purpose,
            environment=environment,
            request_id=request_id,
            network=network,
            extra_networks=tier_networks.get(vm.tier, ()),
            start=network is None,
            seed_readonly=network is not None,
        )

    return spec


def _request(s: Session, request_id: int) -> m.VMRequest:
    row = s.get(m.VMRequest, request_id)
    if row is None:
        raise NotFoundError(f"no request {request_id}; see 'corral request list'.")
    return row


def _planned(s: Session, request_id: int) -> list[PlannedVM]:
    rows = s.scalars(
        select(m.RequestVMRow)
        .where(m.RequestVMRow.request_id == request_id)
        .order_by(m.RequestVMRow.seq)
    )
    return [
        PlannedVM(
            r.id,
            r.seq,
            r.tier,
            r.name,
            r.template,
            r.host,
            r.vcpus,
            r.memory_mib,
            r.disk_gb,
            r.state,
            r.uuid,
        )
        for r in rows
    ]


__all__ = ["PlannedVM", "RequestProvisioner", "image_hosts", "vm_name"]
