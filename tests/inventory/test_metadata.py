"""Ownership metadata: in the domain's <metadata>, seen by virsh, survives losing the database."""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from lxml import etree

from corral.domain.model import OwnerMeta
from corral.errors import ConflictError, ValidationError
from corral.hypervisor.domxml import METADATA_NS, build_metadata, parse_metadata
from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.store.db import Database
from tests.inventory.conftest import Clock


def test_metadata_element_round_trip() -> None:
    meta = OwnerMeta(
        owner="bob",
        department="R&D <lab>",
        purpose="quotes \" and ' and ]]>",
        project="atlas",
        environment="dev",
        expires_on=date(2027, 3, 1),
        protection_tier="restart",
        tags=("a", "b"),
    )
    element = etree.fromstring(build_metadata(meta, is_template=True))
    element.tag = f"{{{METADATA_NS}}}{element.tag}"
    back, template = parse_metadata(element)
    assert back == meta and template is True


@pytest.mark.requires("virsh")
def test_set_metadata_visible_to_virsh_and_survives_db_loss(
    inventory: Inventory, nodes: Path, clock: Clock, tmp_path: Path
) -> None:
    uri = f"test://{nodes / 'host-a.xml'}"
    inventory.add_host("host-a", uri)
    inventory.sync()
    inventory.set_metadata(
        "db-01",
        {"owner": "dana", "department": "Finance", "expires_on": "2027-01-31", "tags": "db,prod"},
    )
    out = subprocess.run(
        ["virsh", "-c", uri, "metadata", "db-01", "--uri", METADATA_NS],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    root = etree.fromstring(out.encode())
    assert root.findtext("owner") == "dana"
    assert root.findtext("department") == "Finance"
    assert root.findtext("expires-on") == "2027-01-31"
    assert [t.text for t in root.iterfind("tags/tag")] == ["db", "prod"]
    history = inventory.find_vm("db-01").history
    assert history[-1].kind == "metadata-changed"
    assert history[-1].details["owner"] == {"from": None, "to": "dana"}

    # Corral's database is lost: a brand-new one re-discovers the VM with its owner.
    fresh = Inventory(
        Database(f"sqlite:///{tmp_path / 'new.db'}"),
        SecretBox(Fernet.generate_key()),
        clock,
        HostAccess(node_dir=tmp_path),
    )
    fresh.db.migrate()
    fresh.add_host("host-a", uri)
    fresh.sync()
    again = fresh.find_vm("db-01")
    assert (again.owner, again.department, again.expires_on, again.tags) == (
        "dana",
        "Finance",
        date(2027, 1, 31),
        ("db", "prod"),
    )


def test_metadata_changed_outside_corral_is_picked_up(
    inventory: Inventory, nodes: Path, clock: Clock
) -> None:
    inventory.add_host("host-a", f"test://{nodes / 'host-a.xml'}")
    inventory.sync()
    hv = inventory.open_host("host-a")
    uuid = inventory.find_vm("web-01").uuid
    hv.set_metadata(
        uuid,
        OwnerMeta(
            owner="zoe",
            department="Finance",
            purpose="public web front end",
            environment="prod",
            tags=("web",),
        ),
    )
    hv.close()
    clock.advance(minutes=1)
    report = inventory.sync()
    assert report.events == {"metadata-changed": 1}
    assert inventory.find_vm(uuid).owner == "zoe"


def test_bad_metadata_changes_nothing(inventory: Inventory, nodes: Path) -> None:
    path = nodes / "host-a.xml"
    inventory.add_host("host-a", f"test://{path}")
    inventory.sync()
    before_file = path.read_bytes()
    before = inventory.find_vm("web-01")
    with pytest.raises(ValidationError, match="expiry date"):
        inventory.set_metadata("web-01", {"owner": "eve", "expires_on": "next tuesday"})
    with pytest.raises(ValidationError, match="unknown metadata field"):
        inventory.set_metadata("web-01", {"colour": "blue"})
    with pytest.raises(ValidationError, match="environment 'production-ish' is unknown"):
        inventory.set_metadata("web-01", {"environment": "production-ish"})  # the CLI's path
    with pytest.raises(ValidationError, match="protection_tier 'gold' is unknown"):
        inventory.set_metadata("web-01", {"protection_tier": "gold"})
    assert path.read_bytes() == before_file
    assert inventory.find_vm("web-01") == before


def test_metadata_of_deleted_vm_is_frozen(inventory: Inventory, nodes: Path) -> None:
    path = nodes / "host-a.xml"
    inventory.add_host("host-a", f"test://{path}")
    inventory.sync()
    tree = etree.parse(str(path))
    for d in tree.getroot().iterfind("domain"):
        if d.findtext("name") == "old-build":
            tree.getroot().remove(d)
    tree.write(str(path))
    inventory.sync()
    with pytest.raises(ConflictError, match="deleted"):
        inventory.set_metadata("old-build", {"owner": "x"})
