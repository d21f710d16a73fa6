"""How many live VMs have a NIC on each network of a host, kept as rows (host, network, count).

A page of networks reads its rows' counts by an index lookup on (host, network); counting them
there from every VM's NIC list (JSON) read a quarter of a 100,000-VM fleet's rows for a page of
100 networks. The rows of a host are counted again here, from the store, in the transaction
that changed what they count: the sync does it for the hosts where a VM came, went, moved or
changed its NICs, or whose networks changed (corral.inventory.netusers); any other change of a
VM's life, host or NICs calls :func:`recount` for its hosts. A host's rows go with it (foreign
key, on delete cascade); a network none uses has no row.

Which network a NIC is on is judged by the database, as the page once did for itself: the
counts are what that count gave (tests/inventory/test_network_users.py holds them to it).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.orm import Session

#: Hosts recounted per statement (SQLite binds at most a few thousand values).
HOST_CHUNK = 500

#: Which network a NIC is on: the one its <source network=…> names whatever the NIC's type
#: (a bridge-mode network gives type='bridge'), a type='network' NIC's source, or the
#: network of the host whose bridge a type='bridge' NIC is on.
_NIC_NETWORK = """coalesce(
      nullif({network}, ''),
      CASE WHEN {type} = 'network' THEN {source} END,
      CASE WHEN {type} = 'bridge' AND {source} <> '' THEN
        (SELECT max(b.name) FROM networks b WHERE b.host_id = v.host_id AND b.bridge = {source})
      END)"""
#: (host, network, live VMs with a NIC on it), of the hosts ``:hosts`` names; a NIC on no
#: network (a bridge of no network, a direct or user NIC) is not counted.
_USERS = """
SELECT host_id, network, vm_count FROM (
  SELECT v.host_id AS host_id, {network} AS network, count(DISTINCT v.uuid) AS vm_count
  FROM vms v {nics}
  WHERE v.deleted_at IS NULL AND v.host_id IN :hosts
  GROUP BY v.host_id, {network}
) counted WHERE network IS NOT NULL
"""
_USERS_PG = _USERS.format(
    nics="CROSS JOIN LATERAL json_array_elements(CASE WHEN json_typeof(v.nics) = 'array'"
    " THEN v.nics ELSE '[]'::json END) AS nic(value)",
    network=_NIC_NETWORK.format(
        network="(nic.value ->> 'network')",
        type="(nic.value ->> 'type')",
        source="(nic.value ->> 'source')",
    ),
)
_USERS_SQLITE = _USERS.format(
    nics="JOIN json_each(CASE WHEN json_type(v.nics) = 'array' THEN v.nics ELSE '[]' END) AS nic",
    network=_NIC_NETWORK.format(
        network="json_extract(nic.value, '$.network')",
        type="json_extract(nic.value, '$.type')",
        source="json_extract(nic.value, '$.source')",
    ),
)
#: Two recounts of one host in concurrent transactions (a VM moved between two poller shards'
#: hosts) each write the rows they counted: the later one's stand, neither fails.
_WRITE = """
INSERT INTO host_network_users (host_id, network, vm_count)
{users}
ON CONFLICT (host_id, network) DO UPDATE SET vm_count = excluded.vm_count
"""
_CLEAR = "DELETE FROM host_network_users WHERE host_id IN :hosts"


def recount(s: Session | Connection, host_ids: Iterable[int | None]) -> None:
    """Count these hosts' network users again from their live VMs' NICs and their networks,
    replacing their rows (after the session's pending changes are written)."""
    ids = sorted({i for i in host_ids if i is not None})
    if not ids:
        return
    if isinstance(s, Session):
        s.flush()
    dialect = s.get_bind().dialect if isinstance(s, Session) else s.dialect
    postgresql = dialect.name == "postgresql"
    if postgresql:
        # The planner takes each NIC list for 100 rows, so it guesses millions and compiles
        # the query (JIT, ~150 ms for a few hundred VMs): more than running it.
        s.execute(text("SET LOCAL jit = off"))
    write = text(_WRITE.format(users=_USERS_PG if postgresql else _USERS_SQLITE))
    for i in range(0, len(ids), HOST_CHUNK):
        chunk = ids[i : i + HOST_CHUNK]
        s.execute(text(_CLEAR).bindparams(bindparam("hosts", chunk, expanding=True)))
        s.execute(write.bindparams(bindparam("hosts", chunk, expanding=True)))


__all__ = ["recount"]
