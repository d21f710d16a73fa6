"""Issue 9 item 7: concurrent metadata writes to one VM are never lost, in the store or the domain.

Real clients (httpx, one thread each) against a real uvicorn server; the domain is a libvirt
test-driver domain read back through virsh; both stores.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from lxml import etree

from corral.api.app import create_app
from corral.config import Settings
from corral.hypervisor.domxml import METADATA_NS
from corral.hypervisor.uri import HostAccess
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.security.token_store import TokenStore
from corral.store.db import Database

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import probe_concurrency as probe

VIRSH = shutil.which("virsh")
FIELDS = ("owner", "department", "project", "purpose")
ROUNDS = 12


def _virsh_metadata(uri: str, name: str) -> dict[str, str | None]:
    assert VIRSH is not None, "virsh (libvirt-clients) is needed"
    out = subprocess.run(
        [VIRSH, "-c", uri, "metadata", name, "--uri", METADATA_NS],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    root = etree.fromstring(out.encode())
    return {f: root.findtext(f) for f in FIELDS}


@pytest.fixture
def served(db: Database, tmp_path: Path) -> tuple[Inventory, str, str]:
    """The probe's one-VM host, synced, and a token; the server is started by each test."""
    inv = Inventory(db, SecretBox(Fernet.generate_key()), access=HostAccess(node_dir=tmp_path))
    uri = f"test://{probe.node_file(tmp_path / 'host.xml')}"
    inv.add_host("host", uri)
    inv.sync()
    return inv, uri, TokenStore(db).create("tests")


def test_four_concurrent_writers_of_different_fields_lose_nothing(
    served: tuple[Inventory, str, str], db: Database, tmp_path: Path
) -> None:
    inv, uri, token = served
    url = db.url.render_as_string(False)
    settings = Settings(home=tmp_path, database_url=url, node_dir=tmp_path)
    last: dict[str, str] = {}
    failures: list[str] = []
    in_domain = probe.libvirt_reader(uri, probe.VM_UUID)

    def writer(base_url: str, name: str) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            for i in range(ROUNDS):
                value = f"{name}-{i}"
                resp = client.patch(
                    f"/api/v1/vms/{probe.VM_UUID}/metadata",
                    json={name: value},
                    headers={"Authorization": f"Bearer {token}"},
                )
                if resp.status_code != 200:
                    failures.append(f"{name}: {resp.status_code} {resp.text[:200]}")
                    return
                last[name] = value
                if in_domain()[name] != value:  # only this thread writes this field
                    failures.append(f"{name}={value} acknowledged, missing from the domain")

    with probe.serving(create_app(inv, settings=settings)) as base_url:
        threads = [threading.Thread(target=writer, args=(base_url, f)) for f in FIELDS]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        auth = {"Authorization": f"Bearer {token}"}
        database = httpx.get(f"{base_url}/api/v1/vms/{probe.VM_UUID}", headers=auth).json()
        domain = _virsh_metadata(uri, probe.VM_NAME)
        inv.sync()
        after_sync = httpx.get(f"{base_url}/api/v1/vms/{probe.VM_UUID}", headers=auth).json()
    expected = {f: f"{f}-{ROUNDS - 1}" for f in FIELDS}
    assert last == expected
    assert {f: database[f] for f in FIELDS} == expected
    assert domain == expected
    assert {f: after_sync[f] for f in FIELDS} == expected
    history = inv.find_vm(probe.VM_UUID).history
    assert sum(e.kind == "metadata-changed" for e in history) == ROUNDS * len(FIELDS)


def test_a_sync_that_read_the_domain_before_a_write_keeps_the_write(
    served: tuple[Inventory, str, str],
) -> None:
    """A metadata write lands between a sync's read of the host and its write to the store."""
    inv, uri, _ = served
    inv.set_metadata(probe.VM_UUID, {"owner": "old"})
    writes: list[str] = []

    def write_meanwhile(_host: str, _done: int, _total: int) -> None:
        inv.set_metadata(probe.VM_UUID, {"owner": "new"})
        writes.append("new")

    inv.sync(progress=write_meanwhile)  # its read of the domain saw owner=old
    assert writes == ["new"]
    assert inv.find_vm(probe.VM_UUID).owner == "new"
    assert _virsh_metadata(uri, probe.VM_NAME)["owner"] == "new"
    inv.sync()
    assert inv.find_vm(probe.VM_UUID).owner == "new"


def test_a_hand_edit_of_the_domain_still_wins(served: tuple[Inventory, str, str]) -> None:
    """The version check keeps stale reads out, not edits made with virsh after Corral's."""
    inv, uri, _ = served
    inv.set_metadata(probe.VM_UUID, {"owner": "corral-wrote"})
    hv = inv.open_host("host")
    from corral.domain.model import OwnerMeta

    hv.set_metadata(probe.VM_UUID, OwnerMeta(owner="edited-by-hand"))  # no version stamp
    inv.release("host", wrote=True)
    inv.sync()
    assert inv.find_vm(probe.VM_UUID).owner == "edited-by-hand"
    assert _virsh_metadata(uri, probe.VM_NAME)["owner"] == "edited-by-hand"


def test_the_concurrency_probe_finds_no_error_and_no_lost_update(
    db: Database, tmp_path: Path
) -> None:
    result = probe.probe(db, 80, tmp_path)
    probe.print_table(db.backend, result)
    assert result.requests >= 70
    assert result.errors == 0, result.problems
    assert result.lost_updates == 0, result.problems
