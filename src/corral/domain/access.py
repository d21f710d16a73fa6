"""Who may do what: roles, permissions, and the one decision function.

The policy is data (``GRANTS``) and one pure function (``decide``) of a principal, a
permission and the department of the object acted on; routes only declare the permission
they need (``corral.api.deps.require``). Department scoping: a requester or approver holds
department-scoped grants, so they see only objects of their departments (lists are filtered,
another department's object answers 404, as if it did not exist); every other role holds
fleet-wide grants. An object with no department belongs to no requester or approver.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    requester = "requester"
    approver = "approver"
    operator = "operator"
    admin = "admin"
    auditor = "auditor"


class Permission(StrEnum):
    """One thing a caller may do; every REST route and CLI command needs exactly one."""

    #: Read the fleet's shape: hosts, networks, volumes, metrics, health, policies.
    fleet_read = "fleet.read"
    #: Run the planners and reports over the whole fleet (they name every department's VMs).
    fleet_analyse = "fleet.analyse"
    #: Register or remove hosts, sync, submit and cancel jobs.
    fleet_operate = "fleet.operate"
    #: Read VMs, their events and their reclamation cases.
    vm_read = "vm.read"
    #: Change a VM's ownership metadata.
    vm_annotate = "vm.annotate"
    #: Open a reclamation case or run the reclamation scheduler.
    reclaim_flag = "reclaim.flag"
    #: An owner's step on a case: confirm or extend.
    reclaim_respond = "reclaim.respond"
    #: An approver's step on a case: approve, restore, cancel.
    reclaim_decide = "reclaim.decide"
    #: Read jobs, settings and savings.
    ops_read = "ops.read"
    #: Read the audit log.
    audit_read = "audit.read"
    #: Manage users, their roles and departments, and tokens.
    users_manage = "users.manage"
    #: Who am I: every authenticated caller.
    self_read = "self.read"
    #: Create VMs on a host from a template, and change the template catalog (issue 10 item 5).
    vm_provision = "vm.provision"
    #: Read VM requests and the department quotas they are checked against.
    request_read = "request.read"
    #: Draft, quote, submit and cancel a VM request.
    request_create = "request.create"
    #: Approve or deny a VM request (never one's own).
    request_decide = "request.decide"
    #: Set a department's quota.
    quota_manage = "quota.manage"


class Reach(StrEnum):
    """How far a grant reaches: the caller's departments, or the whole fleet."""

    department = "department"
    fleet = "fleet"


_D, _F = Reach.department, Reach.fleet
P = Permission

#: What each role may do, and how far. Reviewed in docs/auth.md; the role x route matrix
#: test (tests/auth/route_matrix.yaml) checks every route against it.
GRANTS: dict[Role, dict[Permission, Reach]] = {
    Role.requester: {
        P.self_read: _F,
        P.fleet_read: _F,
        P.vm_read: _D,
        P.vm_annotate: _D,
        P.reclaim_respond: _D,
        P.request_read: _D,
        P.request_create: _D,
    },
    Role.approver: {
        P.self_read: _F,
        P.fleet_read: _F,
        P.vm_read: _D,
        P.vm_annotate: _D,
        P.reclaim_respond: _D,
        P.reclaim_decide: _D,
        P.request_read: _D,
        P.request_create: _D,
        P.request_decide: _D,
    },
    # Operators run the fleet; deciding requests and setting quotas is governance.
    Role.operator: {
        p: _F
        for p in P
        if p not in (P.audit_read, P.users_manage, P.request_decide, P.quota_manage)
    },
    Role.auditor: {
        p: _F
        for p in (
            *(P.self_read, P.fleet_read, P.fleet_analyse, P.vm_read, P.ops_read, P.audit_read),
            P.request_read,
        )
    },
    Role.admin: {p: _F for p in P},
}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a user, the roles they hold and their departments."""

    user: str
    roles: frozenset[Role]
    departments: frozenset[str]

    def reach(self, permission: Permission) -> Reach | None:
        """The widest reach any of the roles gives for ``permission``; None when none does."""
        reaches = {GRANTS[r].get(permission) for r in self.roles} - {None}
        if Reach.fleet in reaches:
            return Reach.fleet
        return Reach.department if reaches else None

    def visible_departments(self, permission: Permission) -> frozenset[str] | None:
        """None for the whole fleet, else the departments whose objects the caller sees."""
        return None if self.reach(permission) is Reach.fleet else self.departments

    def sees(self, permission: Permission, department: str | None) -> bool:
        """Whether an object of ``department`` is in the caller's view (lists are narrowed)."""
        return decide(self, permission, Target(department))

    @property
    def role_names(self) -> str:
        return ",".join(sorted(self.roles))


@dataclass(frozen=True, slots=True)
class Target:
    """The object acted on, as far as the policy cares: its department (None: nobody's)."""

    department: str | None


def decide(principal: Principal, permission: Permission, target: Target | None = None) -> bool:
    """May ``principal`` use ``permission``, on ``target`` when one is named?

    Without a target (a list, a new object) only the grant is checked; the caller's lists are
    then narrowed by ``visible_departments``. An object without a department is reached only
    by a fleet-wide grant.
    """
    reach = principal.reach(permission)
    if reach is None:
        return False
    if reach is Reach.fleet or target is None:
        return True
    return target.department is not None and target.department in principal.departments


def local_administrator(os_user: str) -> Principal:
    """The local command line acts as the administrator of the database it opens."""
    return Principal(user=os_user, roles=frozenset({Role.admin}), departments=frozenset())
