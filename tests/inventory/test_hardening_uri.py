"""Issue 9 item 1: a host URI can never make Corral run a program, read a file or tell secrets.

The URI passes an allow-list (drivers, transports, paths, per-transport query parameters) and is
stored in a canonical spelling; SSH key and known-hosts files come from the settings only;
test-driver node files only from the node-file folder; connection errors name a short reason.
The attacks are run for real: a program that would leave a marker if libvirt ever started it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.errors import ConflictError, UnsupportedURIError, ValidationError
from corral.hypervisor.uri import HostAccess, open_uri, validate_uri
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.security.token_store import TokenStore
from corral.store import models as m
from corral.store.db import Database
from tests.conftest import Clock
from tests.freshdb import migrated_home

SOCK = "/run/libvirt/libvirt-sock"


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("qemu:///system", "qemu:///system"),
        ("qemu:///session", "qemu:///session"),
        (f"qemu+unix:///system?socket={SOCK}", f"qemu+unix:///system?socket={SOCK}"),
        (f"qemu+unix:///system?socket={SOCK}&", f"qemu+unix:///system?socket={SOCK}"),
        ("qemu+unix:///system", "qemu+unix:///system"),
        ("qemu+ssh://root@kvm-01.example.com:2222/system", None),
        ("qemu+libssh://ops@kvm-01/system", None),
        ("qemu+tls://kvm-01.example.com/system", None),
        ("qemu://kvm-01/system", None),
        ("qemu+tcp://10.0.0.7/system", None),
        ("qemu+ssh://[fd00::7]/system", None),
        ("test:///default", None),
    ],
)
def test_accepted_uris_in_canonical_spelling(given: str, canonical: str | None) -> None:
    assert validate_uri(given) == (canonical or given)


@pytest.mark.parametrize(
    "uri",
    [
        "qemu+ext:///system?command=/bin/sh",
        "QEMU+EXT:///system?command=/bin/sh",
        "qemu+ssh://kvm/system?command=/tmp/x",
        "qemu+ssh://kvm/system?netcat=/tmp/x",
        "qemu+ssh://kvm/system?keyfile=/root/.ssh/id_rsa",
        "qemu+libssh://kvm/system?known_hosts=/dev/null",
        "qemu+libssh://kvm/system?known_hosts_verify=ignore",
        "qemu+libssh://kvm/system?sshauth=privkey",
        "qemu+ssh://kvm/system?mode=legacy",
        "qemu+ssh://kvm/system?proxy=native",
        "qemu+ssh://kvm/system?no_tty=1",
        "qemu+ssh://kvm/system?socket=/run/libvirt/libvirt-sock",
        "qemu+tls://kvm/system?no_verify=1",
        "qemu+tls://kvm/system?pkipath=/root",
        "qemu+tls://kvm/system?tls_priority=NONE",
        "qemu+unix:///system?name=qemu:///embed",
        "qemu+unix:///system?socket=/x/libvirt-sock;command=/bin/sh",
        "qemu+unix:///system?socket=/x/libvirt-sock%3Bcommand%3D/bin/sh",
        "qemu+unix:///system?socket=/var/run/docker.sock",
        "qemu+unix:///system?socket=/a/../libvirt-sock",
        "qemu+unix:///system?socket=relative/libvirt-sock",
        f"qemu+unix:///system?socket={SOCK}&socket={SOCK}",
        "qemu+unix://kvm/system",
        "qemu+ssh://-oProxyCommand=sh/system",
        "qemu+ssh://-oProxyCommand@kvm/system",
        "qemu+ssh:///system",
        "qemu:///embed?root=/tmp/x",
        "qemu+ssh://kvm/system#frag",
        "qemu+ssh://kvm/sys\ntem",
        "qemu+ssh://kvm/sys\ttem",
        "xen:///system",
        "lxc:///",
        "vmware://esx/",
        "test+tcp://kvm/default",
        "test://kvm/default",
        "test:///default?x=1",
        "",
    ],
)
def test_refused_uris(uri: str) -> None:
    with pytest.raises((UnsupportedURIError, ValidationError)) as err:
        validate_uri(uri)
    assert err.value.exit_code == 2 and err.value.http_status == 422
    assert len(err.value.message.splitlines()) == 1


def test_ssh_files_come_from_the_settings_only() -> None:
    access = HostAccess(ssh_keyfile=Path("/etc/corral/id"), ssh_known_hosts=Path("/etc/corral/kh"))
    assert (
        open_uri("qemu+ssh://kvm/system", access) == "qemu+ssh://kvm/system?keyfile=/etc/corral/id"
    )
    assert open_uri("qemu+libssh://kvm/system", access) == (
        "qemu+libssh://kvm/system?keyfile=/etc/corral/id&known_hosts=/etc/corral/kh"
    )
    assert open_uri("qemu+tls://kvm/system", access) == "qemu+tls://kvm/system"
    assert open_uri("qemu+ssh://kvm/system", HostAccess()) == "qemu+ssh://kvm/system"


# -- the attacks, for real ----------------------------------------------------------------------


def _marker_program(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "ran"
    program = tmp_path / "evil.sh"
    program.write_text(f"#!/bin/sh\ntouch {marker}\n")
    program.chmod(0o755)
    return program, marker


def _corral(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORRAL_HOME": str(home), "CORRAL_HOST_TIMEOUT": "10"}
    env.pop("CORRAL_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


ATTACKS = ("qemu+ext:///system?command={p}", "qemu+ssh://localhost/system?command={p}")


@pytest.mark.parametrize("attack", ATTACKS)
def test_hosts_add_refuses_a_uri_that_runs_a_program(tmp_path: Path, attack: str) -> None:
    program, marker = _marker_program(tmp_path)
    home = migrated_home(tmp_path / "home")
    added = _corral(home, "hosts", "add", "evil", attack.format(p=program))
    assert added.returncode == 2 and added.stderr.startswith("error: ")
    _corral(home, "sync")
    assert not marker.exists()
    assert "evil" not in _corral(home, "hosts", "list").stdout


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_stored_uri_that_runs_a_program_is_never_opened(tmp_path: Path, attack: str) -> None:
    """A host registered before the allow-list existed is checked again when it is opened."""
    program, marker = _marker_program(tmp_path)
    home = tmp_path / "home"
    assert _corral(home, "hosts", "list").returncode == 0  # creates the database
    db = Database(f"sqlite:///{home / 'corral.db'}")
    with db.session() as s:
        s.add(m.Host(name="evil", uri=attack.format(p=program), created_at=Clock()()))
    db.dispose()
    synced = _corral(home, "sync")
    assert not marker.exists()
    assert synced.returncode == 5 and "host evil was not synced: " in synced.stderr


# -- node files -----------------------------------------------------------------------------


@pytest.fixture
def fenced(db: Database, tmp_path: Path) -> tuple[Inventory, Path]:
    """An inventory whose node-file folder is tmp_path/allowed (a sibling folder is not)."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    access = HostAccess(node_dir=allowed)
    return Inventory(db, SecretBox(Fernet.generate_key()), Clock(), access), allowed


def test_node_files_only_from_the_node_folder(fenced: tuple[Inventory, Path], nodes: Path) -> None:
    inv, allowed = fenced
    (allowed / "host-a.xml").write_bytes((nodes / "host-a.xml").read_bytes())
    (allowed / "escape.xml").symlink_to(nodes / "host-b.xml")
    outside = [
        f"test://{nodes / 'host-b.xml'}",
        f"test://{allowed}/../nodes/host-b.xml",
        f"test://{allowed / 'escape.xml'}",
        "test:///etc/passwd",
    ]
    for uri in outside:
        with pytest.raises(ValidationError, match="must be inside"):
            inv.add_host("probe", uri)
    inside = inv.add_host("a", f"test://{allowed}/./sub/../host-a.xml")
    assert inside.uri == f"test://{(allowed / 'host-a.xml').resolve()}"
    assert inv.add_host("d", "test:///default").uri == "test:///default"
    assert inv.sync().hosts[0].status == "ok"


def test_no_node_files_without_a_node_folder(db: Database, nodes: Path) -> None:
    inv = Inventory(db, SecretBox(Fernet.generate_key()), Clock(), HostAccess(node_dir=None))
    with pytest.raises(ValidationError, match="not enabled"):
        inv.add_host("a", f"test://{nodes / 'host-a.xml'}")


def test_a_reader_learns_nothing_about_files(fenced: tuple[Inventory, Path]) -> None:
    """A missing, a malformed and a non-node file fail alike, and name no path."""
    inv, allowed = fenced
    (allowed / "broken.xml").write_text("<node><domain>")
    (allowed / "other.xml").write_text("<notanode/>")
    for name in ("missing", "broken", "other"):
        inv.add_host(name, f"test://{allowed / name}.xml")
    inv.sync()
    errors = {h.name: h.last_error for h in inv.list_hosts()}
    assert set(errors.values()) == {"the node file could not be loaded."}


def _problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    return body


def test_api_refuses_bad_uris_alike(fenced: tuple[Inventory, Path], tmp_path: Path) -> None:
    inv, _ = fenced
    token = TokenStore(inv.db).create("tests")
    client = TestClient(create_app(inv))
    auth = {"Authorization": f"Bearer {token}"}

    def add(uri: str) -> Any:
        return client.post("/api/v1/hosts", json={"name": "probe", "uri": uri}, headers=auth)

    exists = _problem(add("test:///etc/passwd"), 422)
    absent = _problem(add("test:///etc/no-such-file"), 422)
    assert exists["code"] == absent["code"] == "validation-failed"
    assert exists["detail"] == absent["detail"]
    program, marker = _marker_program(tmp_path)
    assert _problem(add(f"qemu+ext:///system?command={program}"), 422)["code"] == "uri-unsupported"
    assert _problem(add(f"qemu+ssh://h/system?command={program}"), 422)["code"] == "uri-unsupported"
    assert not marker.exists()
    assert client.get("/api/v1/hosts", headers=auth).json()["items"] == []


def test_errors_name_the_kind_only(inventory: Inventory, tmp_path: Path) -> None:
    """A refused socket: the reason, not libvirt's text (which names the path)."""
    socket = tmp_path / "nobody" / "libvirt-sock"
    added = inventory.add_host("gone", f"qemu+unix:///system?socket={socket}")
    assert added.last_error == "the connection failed."
    assert inventory.sync().hosts[0].error == "the connection failed."
    with pytest.raises(ConflictError, match="host 'gone' is already registered"):
        inventory.add_host("gone2", f"qemu+unix:///system?socket={socket}&")
