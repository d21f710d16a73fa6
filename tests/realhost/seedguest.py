"""A guest that reads its cloud-init NoCloud seed, for the provisioning real-host test.

The real-host guests are a Debian cloud kernel and a busybox initramfs, not a cloud image:
there is no cloud-init in them and none can be downloaded here. So the test gives the guest
the smallest honest NoCloud consumer instead: a second initramfs appended to the shared one
(the kernel unpacks both; ``rdinit=/prov-init`` runs ours), holding the kernel's own isofs
and cdrom modules (from the same kernel package the shared initrd was built from) and a script that
finds the disk labelled ``cidata``, mounts it as ISO 9660, sets the hostname from
``meta-data``'s ``local-hostname``, runs ``user-data`` when it is a shell script, and then
prints what it found on the serial console every second (so a reader that attaches late
still sees it). What this proves: the seed Corral built and uploaded through libvirt's
storage API reached the guest as a labelled ISO 9660 disk with the right files and contents.
It does not prove anything about cloud-init's own parsing of them.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import subprocess
import threading
from pathlib import Path
from typing import Any

REPORT = "corral-seed:"
KERNEL_DEBS = Path("/var/cache/apt/archives")

INIT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /seed
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
while read -r module; do insmod "/lib/modules/$module.ko" 2>/dev/null; done </lib/modules/order
report=/tmp/report
: >"$report"
for module in cdrom isofs; do
    insmod "/lib/modules/prov-$module.ko" 2>>"$report" ||
        echo "corral-seed: $module did not load" >>"$report"
done
for dev in /dev/vd?; do
    mount -t iso9660 -o ro "$dev" /seed 2>>/tmp/mount-errors || continue
    label=$(dd if="$dev" bs=1 skip=32808 count=32 2>/dev/null | tr -d ' ')
    [ "$label" = cidata ] || { umount /seed; continue; }
    echo "corral-seed: device=$dev label=$label" >>"$report"
    name=$(sed -n 's/^local-hostname: *//p' /seed/meta-data)
    hostname "$name"
    echo "corral-seed: hostname=$(hostname)" >>"$report"
    echo "corral-seed: instance-id=$(sed -n 's/^instance-id: *//p' /seed/meta-data)" >>"$report"
    if head -c 2 /seed/user-data | grep -q '#!'; then
        sh /seed/user-data >>"$report" 2>&1
    fi
    break
done
if ! grep -q label= "$report"; then
    echo "corral-seed: no cidata disk found among $(echo /dev/vd?)" >>"$report"
    cat /tmp/mount-errors >>"$report" 2>/dev/null
fi
while :; do cat "$report" >/dev/console; sleep 1; done
"""


def _newc_entry(name: str, data: bytes, mode: int, ino: int) -> bytes:
    """One entry of a newc cpio archive (the format the kernel unpacks into its initramfs)."""
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
    header = b"070701" + b"".join(f"{v:08x}".encode() for v in fields)
    out = header + name.encode() + b"\0"
    out += b"\0" * (-len(out) % 4)
    out += data + b"\0" * (-len(data) % 4)
    return out


def _cpio(files: dict[str, tuple[bytes, int]]) -> bytes:
    out = b"".join(
        _newc_entry(name, data, mode, i + 1) for i, (name, (data, mode)) in enumerate(files.items())
    )
    return out + _newc_entry("TRAILER!!!", b"", 0, 0)


def isofs_modules(recipe: Path, workdir: Path) -> dict[str, bytes]:
    """isofs.ko and its one dependency cdrom.ko, of the kernel the shared initrd was built
    from (its recipe names the .deb)."""
    deb_name = next(
        line.split("=", 1)[1]
        for line in recipe.read_text().splitlines()
        if line.startswith("kernel=")
    )
    deb = recipe.parent / deb_name
    if not deb.is_file():
        deb = KERNEL_DEBS / deb_name
    if not deb.is_file():
        subprocess.run(["apt-get", "download", deb_name.split("_")[0]], cwd=workdir, check=True)
        deb = next(workdir.glob(f"{deb_name.split('_')[0]}_*.deb"))
    out = workdir / "kernel"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(out)], check=True)
    return {
        name: next(out.glob(f"lib/modules/*/kernel/{where}/{name}.ko")).read_bytes()
        for where, name in (("drivers/cdrom", "cdrom"), ("fs/isofs", "isofs"))
    }


def seed_reading_initrd(shared_initrd: Path, workdir: Path) -> Path:
    """The shared initrd with our /prov-init and isofs.ko appended as a second archive."""
    modules = isofs_modules(shared_initrd.parent / "recipe", workdir)
    files = {"prov-init": (INIT.encode(), 0o100755)}
    files.update({f"lib/modules/prov-{n}.ko": (data, 0o100644) for n, data in modules.items()})
    extra = _cpio(files)
    path = workdir / "initrd-seed.img"
    path.write_bytes(shared_initrd.read_bytes() + gzip.compress(extra))
    return path


def read_console(conn: Any, dom: Any, marker: str, timeout_s: float = 180.0) -> str:
    """Attach to the serial console through libvirt and read until ``marker`` is seen.

    A blocking stream read in a thread (a non-blocking one needs libvirt's event loop); the
    guest repeats its report every second, so attaching after boot misses nothing.
    """
    import libvirt

    stream = conn.newStream(0)
    dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
    seen = io.BytesIO()
    found = threading.Event()

    def reader() -> None:
        with contextlib.suppress(libvirt.libvirtError):
            while not found.is_set():
                got = stream.recv(4096)
                if not isinstance(got, bytes) or not got:
                    return
                seen.write(got)
                if marker in seen.getvalue().decode(errors="replace"):
                    found.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    found.wait(timeout_s)
    with contextlib.suppress(libvirt.libvirtError):
        stream.abort()
    text = seen.getvalue().decode(errors="replace")
    if not found.is_set():
        raise TimeoutError(
            f"{marker!r} not seen within {timeout_s:.0f} s; console:\n{text[-2000:]}"
        )
    return text
