"""The demo's self-service walk: a template in the catalog, a request, its approval, its VM.

The demo's generated pools are full (their volumes add up to more than the test driver's
fixed pool size, so a clone there fails with "Not enough free space"): the catalog gets a
pool of its own on the first host, holding one small base image, and the template is made
from it. A requester of the busiest department asks for one small VM; the rules decide (an
approver of the department approves what they leave pending) and the VM is made on the host
holding the image, as any approved request is.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from lxml import etree

from corral.config import Settings
from corral.demo.nodefile import write_node_file
from corral.domain.access import Principal, Role
from corral.domain.provision import Template
from corral.domain.requests import RequestState, Size
from corral.errors import ConflictError
from corral.inventory.service import Inventory
from corral.services.request_setup import request_provisioner, request_service
from corral.services.requests import RequestSpec
from corral.services.templates import TemplateService

POOL = "catalog"
IMAGE = "demo-tiny.qcow2"
TEMPLATE = Template(name="demo-tiny", pool=POOL, volume=IMAGE, vcpus=1, memory_mib=256,
                    network="default")  # fmt: skip


def add_catalog_pool(node_file: Path) -> None:
    """A small pool with the catalog's base image, in a demo host's node file."""
    safe = etree.XMLParser(resolve_entities=False, no_network=True)  # the demo's own file
    node = etree.parse(str(node_file), safe).getroot()
    if any(p.findtext("name") == POOL for p in node.iterfind("pool")):
        return
    pool = etree.SubElement(node, "pool", type="dir")
    etree.SubElement(pool, "name").text = POOL
    etree.SubElement(pool, "uuid").text = "0d000000-0000-4000-8000-00000000c0c0"
    etree.SubElement(etree.SubElement(pool, "target"), "path").text = "/var/lib/libvirt/catalog"
    vol = etree.SubElement(pool, "volume", type="file")
    etree.SubElement(vol, "name").text = IMAGE
    etree.SubElement(vol, "capacity", unit="GiB").text = "1"
    etree.SubElement(vol, "allocation", unit="MiB").text = "16"
    target = etree.SubElement(vol, "target")
    etree.SubElement(target, "path").text = f"/var/lib/libvirt/catalog/{IMAGE}"
    etree.SubElement(target, "format", type="qcow2")
    write_node_file(node_file, node)


def walk_a_request(
    inv: Inventory, settings: Settings, host: str, node_file: Path, department: str
) -> dict[str, Any]:
    """Catalog, request, decision, VM: what the demo prints of each."""
    add_catalog_pool(node_file)
    inv.release(host, broken=True)  # the pooled connection still holds the old file
    inv.sync([host])
    templates = TemplateService(inv.db, settings.boot_dir)
    with contextlib.suppress(ConflictError):  # an earlier demo run added it
        templates.add(TEMPLATE)
    requests = request_service(inv, settings)
    asker = Principal("demo-requester", frozenset({Role.requester}), frozenset({department}))
    spec = RequestSpec(TEMPLATE.name, 1, Size(1, 256, 1.0), asker.user, department,
                       "demo: a request walked to a running VM", "dev", 14)  # fmt: skip
    view = requests.create(spec, asker, submit=True)
    if view.state is RequestState.pending:
        approver = Principal("demo-approver", frozenset({Role.approver}), frozenset({department}))
        view = requests.approve(view.id, approver)
    if view.state is RequestState.approved:
        view = request_provisioner(inv, settings, requests).provision(view.id, "demo-approver")
    decided = [f"{d.actor}: {d.action}" for d in view.decisions]
    made = [inv.find_vm(u) for u in view.provisioned_vms]
    return {
        "template": f"{TEMPLATE.name} ({POOL}/{IMAGE} on {host})",
        "request": view.id,
        "department": department,
        "monthly_cost": view.monthly_cost,
        "decisions": ", ".join(decided),
        "state": view.state.value,
        "reason": view.failure_reason or "",
        "vms": ", ".join(f"{v.name} on {v.host} ({v.state})" for v in made),
    }
