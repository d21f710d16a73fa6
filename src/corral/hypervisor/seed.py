"""The cloud-init NoCloud seed: an ISO 9660 image labelled ``cidata``.

cloud-init's NoCloud data source looks for a file system labelled ``cidata`` and reads
``meta-data``, ``user-data`` and (when present) ``network-config`` from its root. The image
is built in memory with pycdlib (no ``genisoimage`` process, no temporary files), with Rock
Ridge and Joliet names so that every guest sees the long, dashed file names.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pycdlib
import yaml

from corral.domain.provision import CloudInit

VOLUME_LABEL = "cidata"
#: The files of a seed: ISO 9660 level-1 name, the long name guests see.
_FILES = (
    ("METADATA.;1", "meta-data"),
    ("USERDATA.;1", "user-data"),
    ("NETCONF.;1", "network-config"),
)
EMPTY_USER_DATA = "#cloud-config\n{}\n"


@dataclass(frozen=True, slots=True)
class SeedDocuments:
    """The seed's files as text, before they are packed (what a test or a reader checks)."""

    meta_data: str
    user_data: str
    network_config: str | None = None


def seed_documents(instance_id: str, fallback_hostname: str, ci: CloudInit) -> SeedDocuments:
    """meta-data names the instance, its hostname and SSH keys; user-data is passed as given."""
    meta: dict[str, object] = {
        "instance-id": instance_id,
        "local-hostname": ci.hostname or fallback_hostname,
    }
    if ci.ssh_authorized_keys:
        meta["public-keys"] = [k.strip() for k in ci.ssh_authorized_keys]
    network = None
    if ci.network_config is not None:
        network = yaml.safe_dump(ci.network_config, sort_keys=False)
    return SeedDocuments(
        meta_data=yaml.safe_dump(meta, sort_keys=False),
        user_data=ci.user_data if ci.user_data is not None else EMPTY_USER_DATA,
        network_config=network,
    )


def build_seed_iso(docs: SeedDocuments) -> bytes:
    """The ISO image holding ``docs``, labelled ``cidata``."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=VOLUME_LABEL)
    contents = (docs.meta_data, docs.user_data, docs.network_config)
    for (iso_name, long_name), text in zip(_FILES, contents, strict=True):
        if text is None:
            continue
        data = text.encode()
        iso.add_fp(
            io.BytesIO(data),
            len(data),
            f"/{iso_name}",
            rr_name=long_name,
            joliet_path=f"/{long_name}",
        )
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()


def read_seed_iso(image: bytes) -> dict[str, str]:
    """The files of a seed image by their long names, and its label under ``label``."""
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(image))
    try:
        found = {"label": iso.pvd.volume_identifier.decode().strip()}
        for _iso_name, long_name in _FILES:
            out = io.BytesIO()
            try:
                iso.get_file_from_iso_fp(out, rr_path=f"/{long_name}")
            except pycdlib.pycdlibexception.PyCdlibInvalidInput:
                continue
            found[long_name] = out.getvalue().decode()
        return found
    finally:
        iso.close()


__all__ = ["SeedDocuments", "build_seed_iso", "read_seed_iso", "seed_documents"]
