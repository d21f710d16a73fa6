"""Hosts, VMs, events, volumes and networks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status

from corral.api.deps import Actor, InventoryDep
from corral.api.schemas import (
    EventPublic,
    HostCreate,
    HostPublic,
    MetadataUpdate,
    SyncRequest,
    VMDetail,
    VMPage,
)
from corral.inventory.filters import VMFilter
from corral.inventory.service import check_uuid

router = APIRouter(prefix="/api/v1", tags=["inventory"])

UUIDPath = Annotated[str, Path(max_length=64, description="The VM's libvirt UUID.")]
Short = Annotated[str | None, Query(max_length=256)]


@router.get("/hosts", response_model=list[HostPublic])
def list_hosts(inv: InventoryDep) -> list[dict[str, Any]]:
    return inv.list_hosts()


@router.post("/hosts", response_model=HostPublic, status_code=status.HTTP_201_CREATED)
def add_host(body: HostCreate, inv: InventoryDep, _actor: Actor) -> dict[str, Any]:
    return inv.add_host(body.name, body.uri, body.username, body.password)


@router.delete("/hosts/{name}", status_code=status.HTTP_204_NO_CONTENT)
def remove_host(
    name: Annotated[str, Path(max_length=64)], inv: InventoryDep, _actor: Actor
) -> None:
    inv.remove_host(name)


@router.post("/sync")
def sync(inv: InventoryDep, _actor: Actor, body: SyncRequest | None = None) -> dict[str, Any]:
    return inv.sync(body.hosts if body else None).as_dict()


@router.get("/vms", response_model=VMPage)
def list_vms(
    inv: InventoryDep,
    host: Short = None,
    state: Short = None,
    owner: Short = None,
    department: Short = None,
    project: Short = None,
    environment: Short = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[
        str | None, Query(max_length=256, description="Text in name, UUID or purpose.")
    ] = None,
    no_owner: bool = False,
    no_purpose: bool = False,
    template: bool | None = None,
    older_than_days: Annotated[int | None, Query(ge=0, le=36500)] = None,
    off_for_days: Annotated[int | None, Query(ge=0, le=36500)] = None,
    expired: bool = False,
    deleted: bool = False,
    sort: Literal[
        "name",
        "state",
        "vcpus",
        "memory_mib",
        "created_at",
        "state_since",
        "owner",
        "department",
        "disk_bytes",
    ] = "name",
    order: Literal["asc", "desc"] = "asc",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> dict[str, Any]:
    f = VMFilter(
        host=host,
        state=state,
        owner=owner,
        department=department,
        project=project,
        environment=environment,
        tag=tag,
        search=q,
        no_owner=no_owner,
        no_purpose=no_purpose,
        template=template,
        older_than_days=older_than_days,
        off_for_days=off_for_days,
        expired=expired,
        only_deleted=deleted,
    )
    page = inv.list_vms(f, sort=sort, descending=order == "desc", limit=limit, cursor=cursor)
    return {"items": page.items, "next_cursor": page.next_cursor, "total": page.total}


@router.get("/vms/{uuid}", response_model=VMDetail)
def get_vm(uuid: UUIDPath, inv: InventoryDep) -> dict[str, Any]:
    return inv.find_vm(check_uuid(uuid))


@router.patch("/vms/{uuid}/metadata", response_model=VMDetail)
def update_metadata(
    uuid: UUIDPath, body: MetadataUpdate, inv: InventoryDep, actor: Actor
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True, mode="json")
    inv.set_metadata(check_uuid(uuid), changes, actor=f"api:{actor}")
    return inv.find_vm(check_uuid(uuid))


@router.get("/events", response_model=list[EventPublic])
def events(
    inv: InventoryDep,
    vm: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return inv.events(vm=check_uuid(vm) if vm else None, kind=kind, limit=limit)


@router.get("/networks")
def networks(inv: InventoryDep, unused: bool = False) -> list[dict[str, Any]]:
    return inv.list_networks(unused_only=unused)


@router.get("/volumes")
def volumes(inv: InventoryDep, orphaned: bool = False) -> list[dict[str, Any]]:
    return inv.list_volumes(orphaned_only=orphaned)
