"""The fingerprints a sync compares are hashed in fewer calls, and are the digests they were.

A VM's fingerprint and a host's storage fingerprint are stored: were either digest to change,
the first sync after an upgrade would take every VM (or every host's storage) for changed
and write it again. The former ways of hashing them, one update a part, are the oracle.
"""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.domain.model import NetworkFacts, PoolFacts, VolumeFacts
from corral.hypervisor.libvirt.reading import _fingerprint
from corral.inventory.sync import _storage_fingerprint

words = st.text(max_size=12)  # any characters: NUL, and letters that take several bytes
sizes = st.integers(0, 2**62)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(words, max_size=8))
def test_a_vm_fingerprint_is_the_digest_of_one_update_a_part(parts: list[str]) -> None:
    former = hashlib.blake2b(digest_size=16)
    for part in parts:
        former.update(part.encode())
        former.update(b"\0")
    assert _fingerprint(parts) == former.hexdigest()


volumes = st.builds(
    VolumeFacts, name=words, path=words, capacity_bytes=sizes, allocation_bytes=sizes
)
pools = st.builds(
    PoolFacts,
    name=words,
    uuid=words,
    type=st.just("dir"),
    path=st.none() | words,
    active=st.booleans(),
    capacity_bytes=sizes,
    allocation_bytes=sizes,
    available_bytes=sizes,
    volumes=st.lists(volumes, max_size=4).map(tuple),
)
networks = st.builds(
    NetworkFacts,
    name=words,
    uuid=words,
    active=st.booleans(),
    bridge=st.none() | words,
    forward_mode=st.none() | words,
)


@settings(max_examples=200, deadline=None)
@given(pools=st.lists(pools, max_size=3).map(tuple), nets=st.lists(networks, max_size=2))
def test_a_storage_fingerprint_is_the_digest_of_one_update_a_volume(
    pools: tuple[PoolFacts, ...], nets: list[NetworkFacts]
) -> None:
    former = hashlib.blake2b(digest_size=16)
    for p in pools:
        former.update(repr((p.name, p.active, p.capacity_bytes, p.allocation_bytes)).encode())
        for v in p.volumes:
            former.update(f"{v.name}\0{v.allocation_bytes}\0{v.capacity_bytes}\0".encode())
    former.update(repr(tuple(nets)).encode())
    assert _storage_fingerprint(pools, tuple(nets)) == former.hexdigest()
