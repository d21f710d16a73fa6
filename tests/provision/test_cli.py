"""``corral template`` and ``corral provision`` end to end, in a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import libvirt

from tests.provision.conftest import NODE

CORRAL = [sys.executable, "-m", "corral"]
CATALOG = """\
templates:
  - name: debian-12
    pool: images
    volume: debian-12.qcow2
    vcpus: 2
    memory_mib: 2048
    network: lan
  - name: tight
    pool: tight
    volume: debian-12.qcow2
"""


def run(home: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORRAL_HOME": str(home), "CORRAL_NODE_DIR": str(home.parent)}
    env.pop("CORRAL_DATABASE_URL", None)
    proc = subprocess.run([*CORRAL, *args], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == code, proc.stdout + proc.stderr
    return proc


def test_catalog_provision_and_failure(tmp_path: Path) -> None:
    home = tmp_path / "home"
    node = tmp_path / "host-p.xml"
    shutil.copy(NODE, node)
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    run(home, "hosts", "add", "p1", f"test://{node}")
    run(home, "template", "import", str(tmp_path / "catalog.yaml"))
    listed = json.loads(run(home, "template", "list", "-o", "json").stdout)
    assert [t["name"] for t in listed] == ["debian-12", "tight"]
    again = run(home, "template", "import", str(tmp_path / "catalog.yaml"), code=4)
    assert "already exists; nothing was added" in again.stderr
    key = tmp_path / "net.yaml"
    key.write_text("version: 2\nethernets:\n  eth0:\n    dhcp4: true\n")
    made = run(
        home, "provision", "create", "web-20", "-t", "debian-12", "--host", "p1",
        "--owner", "alice", "--department", "red", "--expires", "2027-01-31",
        "--ssh-key", "ssh-ed25519 AAAAC3Nza alice@x", "--network-config", str(key), "-o", "json",
    )  # fmt: skip
    result = json.loads(made.stdout)
    assert result["status"] == "succeeded" and result["uuid"]
    conn = libvirt.open(f"test://{node}")
    assert conn.lookupByName("web-20").UUIDString() == result["uuid"]
    vms = json.loads(run(home, "vms", "-o", "json").stdout)
    web = next(v for v in vms if v["name"] == "web-20")
    assert (web["owner"], web["expires_on"]) == ("alice", "2027-01-31")
    failed = run(
        home, "provision", "create", "web-21", "-t", "tight", "--host", "p1",
        "--owner", "alice", "--department", "red", code=5,
    )  # fmt: skip
    assert "Not enough free space" in failed.stderr and "Traceback" not in failed.stderr
    history = json.loads(run(home, "provision", "list", "-o", "json").stdout)
    assert [(h["name"], h["status"]) for h in history] == [
        ("web-21", "failed"),
        ("web-20", "succeeded"),
    ]
    assert json.loads(run(home, "provision", "clean", "1", "-o", "json").stdout)["leftovers"] == []
    assert "no provisioning attempt 99" in run(home, "provision", "clean", "99", code=3).stderr
    # A template from a VM in the inventory: its first disk's pool volume.
    run(home, "template", "add", "from-web", "--from-vm", "web-20")
    shown = json.loads(run(home, "template", "show", "from-web", "-o", "json").stdout)
    assert (shown["pool"], shown["volume"], shown["vcpus"]) == ("images", "web-20.qcow2", 2)
    run(home, "template", "remove", "tight")
    bad = run(home, "template", "add", "x", "--pool", "images", code=2)
    assert "--pool and --volume" in bad.stderr
