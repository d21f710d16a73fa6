"""Hosts, VMs, events, volumes and networks."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status

from corral.api.deps import InventoryDep, require, vm_target
from corral.api.pagination import (
    Cursor,
    Limit,
    Page,
    PageJSON,
    SortKey,
    decode_cursor,
    encode_cursor,
    page_json,
)
from corral.api.problems import error_responses
from corral.api.schemas import (
    EventPublic,
    HostCreate,
    HostImportRequest,
    HostImportResult,
    HostPublic,
    Line,
    MetadataUpdate,
    NetworkPublic,
    SyncRequest,
    SyncResult,
    VMCountPublic,
    VMCountQuery,
    VMDetail,
    VMListQuery,
    VMPublic,
    VMQuery,
    VolumePublic,
)
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.domain.model import EventKind
from corral.errors import ForbiddenError, NotFoundError, ValidationError
from corral.inventory import views
from corral.inventory.filters import VMFilter
from corral.inventory.hosts_file import HostEntry
from corral.inventory.keyset import KeyPage
from corral.inventory.service import check_uuid

router = APIRouter(prefix="/api/v1", tags=["inventory"])

CountAll = Annotated[
    bool, Query(description="Count the whole list too ('total'); not counted unless asked.")
]
UUIDPath = Annotated[Line, Path(max_length=64, description="The VM's libvirt UUID.")]
Short = Annotated[Line | None, Query(max_length=256)]


@router.get("/hosts", response_model=Page[HostPublic], responses=error_responses(422))
def list_hosts(
    inv: InventoryDep,
    _who: Annotated[Principal, require(Perm.fleet_read)],
    limit: Limit = 100,
    cursor: Cursor = None,
    count: CountAll = False,
) -> Page[Any]:
    """Hosts by name, a page at a time (keyset paging, read so in the database)."""
    page = inv.hosts_page(after=_after(cursor), limit=limit, count=count)
    return _page(page)


@router.post(
    "/hosts",
    response_model=HostPublic,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 401, 409, 413, 422),
)
def add_host(
    body: HostCreate, inv: InventoryDep, _who: Annotated[Principal, require(Perm.fleet_operate)]
) -> views.HostView:
    return inv.add_host(body.name, body.uri, body.username, body.password)


@router.post(
    "/host-imports",
    response_model=HostImportResult,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 401, 413, 422),
)
def import_hosts(
    body: HostImportRequest,
    inv: InventoryDep,
    _who: Annotated[Principal, require(Perm.fleet_operate)],
) -> HostImportResult:
    entries = [HostEntry(h.name, h.uri, h.username, i + 1) for i, h in enumerate(body.hosts)]
    done = inv.import_hosts(entries, skip_existing=body.skip_existing)
    return HostImportResult(added=len(done.added), skipped=list(done.skipped))


@router.delete(
    "/hosts/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 404, 409, 422),
)
def remove_host(
    name: Annotated[Line, Path(max_length=64)],
    inv: InventoryDep,
    _who: Annotated[Principal, require(Perm.fleet_operate)],
) -> None:
    inv.remove_host(name)


@router.post("/sync", response_model=SyncResult, responses=error_responses(401, 404, 413, 422))
def sync(
    inv: InventoryDep,
    _who: Annotated[Principal, require(Perm.fleet_operate)],
    body: SyncRequest | None = None,
) -> dict[str, Any]:
    return inv.sync(body.hosts if body else None).as_dict()


@router.get("/vms", response_model=Page[VMPublic], responses=error_responses(401, 422))
def list_vms(
    inv: InventoryDep,
    who: Annotated[Principal, require(Perm.vm_read)],
    query: Annotated[VMListQuery, Query()],
) -> PageJSON:
    """A page of VMs and the cursor of the next (keyset paging: pages stay right while VMs
    come and go). Not counted unless ``count=true``: at 100,000 VMs a count costs more than
    the page; ``GET /api/v1/vms/count`` counts, or estimates, the same filter."""
    page = inv.list_vms(
        _vm_filter(query, who),
        sort=query.sort,
        descending=query.order == "desc",
        limit=query.limit,
        cursor=query.cursor,
        count=query.count,
    )
    return page_json(page.items, page.next_cursor, page.total)


@router.get("/vms/count", response_model=VMCountPublic, responses=error_responses(401, 422))
def count_vms(
    inv: InventoryDep,
    who: Annotated[Principal, require(Perm.vm_read)],
    query: Annotated[VMCountQuery, Query()],
) -> VMCountPublic:
    """How many VMs the filter selects (of those the caller may see)."""
    counted = inv.count_vms(_vm_filter(query, who), estimate=query.estimate)
    return VMCountPublic(count=counted.count, exact=counted.exact)


def _vm_filter(query: VMQuery, who: Principal) -> VMFilter:
    return VMFilter(
        host=query.host,
        state=query.state,
        owner=query.owner,
        department=query.department,
        project=query.project,
        environment=query.environment,
        tag=query.tag,
        search=query.q,
        no_owner=query.no_owner,
        no_purpose=query.no_purpose,
        template=query.template,
        older_than_days=query.older_than_days,
        off_for_days=query.off_for_days,
        expired=query.expired,
        only_deleted=query.deleted,
        departments=who.visible_departments(Perm.vm_read),
    )


@router.get("/vms/{uuid}", response_model=VMDetail, responses=error_responses(401, 404, 422))
def get_vm(
    uuid: UUIDPath, inv: InventoryDep, _who: Annotated[Principal, require(Perm.vm_read, vm_target)]
) -> views.VMDetail:
    return inv.find_vm(check_uuid(uuid))


@router.patch(
    "/vms/{uuid}/metadata",
    response_model=VMDetail,
    responses=error_responses(401, 404, 409, 413, 422, 502, 503),
)
def update_metadata(
    uuid: UUIDPath,
    body: MetadataUpdate,
    inv: InventoryDep,
    who: Annotated[Principal, require(Perm.vm_annotate, vm_target)],
) -> views.VMDetail:
    changes = body.model_dump(exclude_unset=True, mode="json")
    return inv.set_metadata(check_uuid(uuid), changes, actor=f"api:{who.user}")


@router.get("/events", response_model=Page[EventPublic], responses=error_responses(401, 404, 422))
def events(
    inv: InventoryDep,
    who: Annotated[Principal, require(Perm.vm_read)],
    vm: Annotated[Line | None, Query(max_length=64)] = None,
    kind: EventKind | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[Any]:
    """Newest first. A department-scoped caller names one VM of theirs (``vm``)."""
    if who.visible_departments(Perm.vm_read) is not None:
        if vm is None:
            raise ForbiddenError("name one of your VMs with 'vm'; the whole fleet's are not yours.")
        if not who.sees(Perm.vm_read, inv.find_vm(check_uuid(vm)).department):
            raise NotFoundError("no such object among those you may see.")
    before = _event_cursor(cursor) if cursor else None
    rows = inv.events(vm=check_uuid(vm) if vm else None, kind=kind, before=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    next_cursor = encode_cursor((last.at.isoformat(), last.id)) if more and last else None
    return Page[Any](items=rows, next_cursor=next_cursor, total=None)


def _event_cursor(cursor: str) -> tuple[datetime, int]:
    key = decode_cursor(cursor)
    try:
        at, event_id = key
        if isinstance(at, str) and isinstance(event_id, int):
            return datetime.fromisoformat(at), event_id
    except ValueError:
        pass
    raise ValidationError("the pagination cursor is not valid; start again without one.")


@router.get("/networks", response_model=Page[NetworkPublic], responses=error_responses(422))
def networks(
    inv: InventoryDep,
    _who: Annotated[Principal, require(Perm.fleet_read)],
    unused: bool = False,
    limit: Limit = 100,
    cursor: Cursor = None,
    count: CountAll = False,
) -> Page[Any]:
    """Networks by host and name, a page at a time."""
    page = inv.networks_page(after=_after(cursor), limit=limit, unused_only=unused, count=count)
    return _page(page)


@router.get("/volumes", response_model=Page[VolumePublic], responses=error_responses(422))
def volumes(
    inv: InventoryDep,
    _who: Annotated[Principal, require(Perm.fleet_analyse)],
    orphaned: bool = False,
    limit: Limit = 100,
    cursor: Cursor = None,
    count: CountAll = False,
) -> Page[Any]:
    """Volumes by host, pool and name (a shared storage's once), a page at a time."""
    page = inv.volumes_page(after=_after(cursor), limit=limit, orphaned_only=orphaned, count=count)
    return _page(page)


def _after(cursor: str | None) -> SortKey | None:
    return decode_cursor(cursor) if cursor else None


def _page(page: KeyPage[Any]) -> Page[Any]:
    next_cursor = encode_cursor(page.next_key) if page.next_key is not None else None
    return Page[Any](items=list(page.items), next_cursor=next_cursor, total=page.total)
