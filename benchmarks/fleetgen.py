"""Fixed, seeded test-driver fleets for the benchmarks: N hosts x M VMs as node files."""

from __future__ import annotations

import random
import uuid as uuidlib
from pathlib import Path

from lxml import etree

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
CORRAL_NS = "urn:corral:vm:1"

CPU_FIELDS = (
    ("mhz", "2600"),
    ("model", "Cascadelake-Server"),
    ("nodes", "1"),
    ("sockets", "2"),
    ("cores", "32"),
    ("threads", "2"),
    ("active", "128"),
)


def write_fleet(folder: Path, hosts: int, vms_per_host: int, seed: int = 42) -> list[Path]:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for h in range(hosts):
        node = etree.Element("node", nsmap={"test": TEST_NS})
        cpu = etree.SubElement(node, "cpu")
        for tag, val in CPU_FIELDS:
            etree.SubElement(cpu, tag).text = val
        etree.SubElement(node, "memory").text = str(4 * 1024**3)  # KiB: 4 TiB
        pool = etree.Element("pool", type="dir")
        etree.SubElement(pool, "name").text = "images"
        etree.SubElement(pool, "uuid").text = str(uuidlib.UUID(int=rng.getrandbits(128)))
        etree.SubElement(pool, "capacity", unit="TiB").text = "100"
        etree.SubElement(etree.SubElement(pool, "target"), "path").text = f"/images/h{h}"
        for i in range(vms_per_host):
            name = f"h{h:03d}-vm{i:05d}"
            d = etree.SubElement(node, "domain", type="test")
            etree.SubElement(d, "name").text = name
            etree.SubElement(d, "uuid").text = str(
                uuidlib.UUID(int=rng.getrandbits(128), version=4)
            )
            md = etree.SubElement(
                etree.SubElement(d, "metadata"), f"{{{CORRAL_NS}}}vm", nsmap={"corral": CORRAL_NS}
            )
            if rng.random() < 0.85:
                etree.SubElement(md, f"{{{CORRAL_NS}}}owner").text = f"user{rng.randrange(200)}"
            etree.SubElement(md, f"{{{CORRAL_NS}}}department").text = rng.choice(
                ["Finance", "R&D", "Sales", "HR", "IT"]
            )
            etree.SubElement(d, "memory", unit="MiB").text = str(
                rng.choice([1024, 2048, 4096, 8192, 16384])
            )
            etree.SubElement(d, "vcpu").text = str(rng.choice([1, 2, 4, 8]))
            etree.SubElement(etree.SubElement(d, "os"), "type").text = "hvm"
            dev = etree.SubElement(d, "devices")
            disk = etree.SubElement(dev, "disk", type="file", device="disk")
            etree.SubElement(disk, "source", file=f"/images/h{h}/{name}.qcow2")
            etree.SubElement(disk, "target", dev="vda", bus="virtio")
            nic = etree.SubElement(dev, "interface", type="network")
            etree.SubElement(
                nic,
                "mac",
                address=f"52:54:{h:02x}:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
            )
            etree.SubElement(nic, "source", network="default")
            etree.SubElement(d, f"{{{TEST_NS}}}runstate").text = "5" if rng.random() < 0.3 else "1"
            vol = etree.SubElement(pool, "volume", type="file")
            etree.SubElement(vol, "name").text = f"{name}.qcow2"
            etree.SubElement(vol, "capacity", unit="GiB").text = str(rng.choice([20, 40, 80]))
            etree.SubElement(
                etree.SubElement(vol, "target"), "path"
            ).text = f"/images/h{h}/{name}.qcow2"
        node.append(pool)
        path = folder / f"host{h:03d}.xml"
        path.write_bytes(etree.tostring(node))
        paths.append(path)
    return paths
