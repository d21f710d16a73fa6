"""Direct-boot kernels and initrds come only from the configured boot folder on the hosts.

The hypervisor reads a template's kernel and initrd as root and hands them to the guest, so a
template naming /etc/shadow would copy the host's password hashes into a VM its requester owns.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from corral.api.app import create_app
from corral.config import Settings
from corral.domain.access import Role
from corral.domain.provision import ProvisionStatus
from corral.errors import ValidationError
from corral.inventory.service import Inventory
from corral.security.token_store import TokenStore
from corral.services.provision import ProvisionService
from corral.services.templates import TemplateService
from corral.services.users import UserService
from corral.store import models as m
from tests.provision.conftest import HOST, TEMPLATE, domain_names, spec, volume_names

BOOT = Path("/srv/corral-boot")
OUTSIDE = (
    "/etc/shadow",
    "/srv/corral-boot/../../etc/shadow",
    "/srv/corral-boot/./vmlinuz",
    "/srv/corral-boot//vmlinuz",
    "/srv/corral-boot/",
    "/srv/corral-boot",
    "/srv/corral-bootleg/vmlinuz",
    "srv/corral-boot/vmlinuz",
    "/srv/corral-boot/vm\nlinuz",
)


@pytest.mark.parametrize("path", OUTSIDE)
@pytest.mark.parametrize("field", ["kernel", "initrd"])
def test_a_boot_file_outside_the_boot_folder_is_refused(
    inventory: Inventory, field: str, path: str
) -> None:
    templates = TemplateService(inventory.db, boot_dir=BOOT)
    extra = {"kernel": "/srv/corral-boot/vmlinuz"} if field == "initrd" else {}
    with pytest.raises(ValidationError):
        templates.add(replace(TEMPLATE, **{field: path}, **extra))
    with pytest.raises(ValidationError):
        templates.add_mapping({"name": "x", "pool": "p", "volume": "v", field: path, **extra}, "t")
    assert templates.all() == []


def test_without_a_boot_folder_direct_kernel_boot_is_off(inventory: Inventory) -> None:
    templates = TemplateService(inventory.db)
    with pytest.raises(ValidationError, match=r"direct kernel boot is off.*CORRAL_BOOT_DIR"):
        templates.add(replace(TEMPLATE, kernel="/boot/vmlinuz"))
    templates.add(TEMPLATE)  # disk boot needs no folder
    with pytest.raises(ValidationError):
        templates.update(TEMPLATE.name, kernel="/etc/shadow")
    assert templates.get(TEMPLATE.name).kernel is None


def test_a_file_under_the_boot_folder_is_accepted(inventory: Inventory) -> None:
    templates = TemplateService(inventory.db, boot_dir=BOOT)
    added = templates.add(
        replace(TEMPLATE, kernel="/srv/corral-boot/deb/vmlinuz", initrd="/srv/corral-boot/i.img")
    )
    assert templates.get(TEMPLATE.name) == added


def test_a_template_from_another_boot_folder_provisions_nothing(
    inventory: Inventory, node: Path
) -> None:
    """The folder setting changed since the template was stored: checked again when used."""
    inventory.add_host(HOST, f"test://{node}")
    TemplateService(inventory.db, boot_dir=Path("/old")).add(
        replace(TEMPLATE, kernel="/old/vmlinuz")
    )
    before = volume_names(node, "images")
    service = ProvisionService(inventory, TemplateService(inventory.db, boot_dir=BOOT))
    result = service.provision(spec("web-30"))
    assert result.status is ProvisionStatus.failed
    assert "boot folder" in (result.reason or "")
    assert volume_names(node, "images") == before
    assert "web-30" not in domain_names(node)


@pytest.fixture
def operator(inventory: Inventory, tmp_path: Path) -> Iterator[tuple[TestClient, dict]]:
    UserService(inventory.db).add("op-1", roles=[Role.operator.value], departments=["red"])
    store = TokenStore(inventory.db)
    headers = {"Authorization": f"Bearer {store.create('op-token', 'op-1')}"}
    app = create_app(inventory, store, settings=Settings(home=tmp_path / "home"))
    yield TestClient(app), headers
    app.state.jobs.shutdown(wait=True)


def test_rest_refuses_a_host_file_as_kernel(
    operator: tuple[TestClient, dict], inventory: Inventory
) -> None:
    client, auth = operator
    body = {"name": "steal", "pool": "images", "volume": "debian-12.qcow2", "kernel": "/etc/shadow"}
    answer = client.post("/api/v1/templates", json=body, headers=auth)
    assert answer.status_code == 422
    assert "direct kernel boot is off" in answer.text
    with inventory.db.session() as s:
        assert s.scalar(select(m.TemplateRow.id)) is None
