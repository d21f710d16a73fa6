"""Issue 16's scale targets that are not sync, in one table: export, REST list pages, exact HA.

    .venv/bin/python benchmarks/bench_scale.py [--pg-url URL] [--vms 100000] [--hosts 200]
        [--clients 50] [--seconds 20] [--skip export,page,rest,ha] [--lists vms,hosts,...]
        [--src /work/main/src --src src] [--page-rounds 5]

The fleet is the HA benchmark's (bench_ha_scale.make_fleet, seed 16): 200 hosts each filled to
its own target of 50-80 % (a few 90 %) of memory and vCPUs, 100,000 VMs of a six-flavour mix.
Its rows (hosts; VMs with one or two disks, a NIC and, for one VM in five, snapshots; owners and
departments drawn with seed 17) go straight into the database through the project's bulk store
path (corral.store.bulk), on SQLite and, given a URL, PostgreSQL.

- export: ``corral export --format csv`` and ``--format json`` in a fresh process (start-up
  included), its wall time and peak RSS. Target 10 s.
- REST: ``corral serve`` (uvicorn with the ``api_workers`` setting) in its own process; 50
  clients over real HTTP, each walking ``GET /api/v1/vms`` pages of 100 (a filter, then the
  next cursor, five pages deep; pages are not counted, as the API answers them unless asked)
  for a fixed time after a warm-up. Target >= 300 req/s and
  p99 <= 200 ms. The clients share the machine's cores with the server: by default they are
  wrk's (a C load generator, a few per cent of a core), else (``--load httpx``, or no wrk
  installed) Python clients in this process, which cost about as much CPU as the server.
- Other lists (``--lists vms,hosts,volumes,networks,web-vms``): the same load on ``GET
  /api/v1/hosts``, ``/volumes`` and ``/networks`` (walks of five pages of 100 from the first
  page or a random host's first row; volumes and networks add each host's pools, its VMs'
  disks as volumes, a share of ISO images every host sees, and two networks) and on the web
  VM list (a signed-in session walking a department's running VMs, 50 a page). ``--src``
  twice (main's ``src``, then this checkout's) runs each list against both trees back to
  back on the same rows and prints their ratio.
- In-process pages (``--lists`` hosts, networks, volumes; ``--skip page`` leaves them out):
  ``Inventory.hosts_page``, ``networks_page`` (and with ``unused_only``) and ``volumes_page``
  (and ``orphaned_only``), 100 rows a page, in a fresh process running each ``--src`` tree on
  the same rows: the first page and 20 hosts' first rows, ``--page-rounds`` times; the median
  and p90 wall time and this process's CPU time of a page (the database's work is in the wall
  time only), and the ratio of the two trees.
- HA: the exact policy on the HA benchmark's fleets, k=2 on 200 hosts / 100,000 VMs and k=1 on
  10,000 hosts / 100,000 VMs, each in a child process stopped after ``--ha-timeout`` s.
  Target 60 s each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import httpx
import psutil
from bench_ha_scale import make_fleet
from benchdb import fresh_database
from sqlalchemy import select

from corral.security.token_store import TokenStore
from corral.store import models as m
from corral.store.bulk import bulk_insert
from corral.store.db import Database
from corral.store.network_users import recount

DEPTS = ["Finance", "R&D", "Sales", "HR", "IT", "Legal", "Marketing", "Ops"]
EXPORT_TARGET_S = 10.0
RATE_TARGET = 300.0
P99_TARGET_MS = 200.0
HA_TARGET_S = 60.0


# -- the fleet in the database ---------------------------------------------------------------
def load_fleet(db: Database, n_hosts: int, n_vms: int, storage: bool = False) -> None:
    """The HA benchmark's fleet as inventory rows, written by the bulk store path; with
    ``storage``, each host's pools, volumes and networks too (see :func:`storage_rows`)."""
    fleet = make_fleet(n_hosts, n_vms)
    rng = random.Random(17)
    now = datetime.now(UTC)
    host_rows = [
        {
            "id": i + 1,
            "name": h.name,
            "uri": f"test:///nodes/{h.name}.xml",
            "status": "ok",
            "created_at": now,
            "cpu_features": [],
            "storage_fingerprint": "",
            "cpus": h.cores * h.threads_per_core,
            "threads_per_core": h.threads_per_core,
            "mhz": h.cpu_mhz,
            "memory_mib": h.memory_mib,
            "last_sync_at": now,
        }
        for i, h in enumerate(fleet.hosts)
    ]
    host_id = {h["name"]: h["id"] for h in host_rows}
    volumes: list[dict[str, Any]] = []
    with db.session() as s:
        bulk_insert(s, m.Host, host_rows)
        if storage:
            storage_rows(s, host_rows, now)
        chunk: list[dict[str, Any]] = []
        for vm in fleet.vms:
            row = _vm_row(vm.name, vm.vcpus, vm.memory_mib, host_id[vm.host or ""], rng, now)
            chunk.append(row)
            if storage:
                volumes += _disk_volumes(row, now)
            if len(chunk) == 10_000:
                bulk_insert(s, m.VM, chunk)
                chunk = []
        bulk_insert(s, m.VM, chunk)
        for i in range(0, len(volumes), 20_000):
            bulk_insert(s, m.Volume, volumes[i : i + 20_000])
        if storage:  # the networks' VM counts a sync keeps, for rows written around it
            recount(s, [h["id"] for h in host_rows])
    db.analyze()


#: Pools per host: 1 (its own images pool, id = host id) + the shared ISO storage's.
ISO_VOLUMES = 20


def storage_rows(s: Any, host_rows: list[dict[str, Any]], now: datetime) -> None:
    """Per host: a local images pool (its VMs' disks go there), the ISO share every host
    mounts (one NFS export, ``ISO_VOLUMES`` images, listed once), a 'default' network every
    VM's NIC is on and an 'isolated' one nobody uses."""
    n = len(host_rows)
    pools, nets, isos = [], [], []
    for h in host_rows:
        for pid, name, key in (
            (h["id"], "images", f"path:dir:/var/lib/libvirt/images:{2**40 + h['id']}"),
            (n + h["id"], "iso", "source:netfs:nas.example:/export/iso"),
        ):
            pools.append(
                {
                    "id": pid,
                    "host_id": h["id"],
                    "name": name,
                    "uuid": str(uuidlib.UUID(int=pid)),
                    "type": "dir",
                    "path": f"/var/lib/libvirt/{name}",
                    "active": True,
                    "capacity_bytes": 2**40,
                    "allocation_bytes": 2**39,
                    "available_bytes": 2**39,
                    "storage_key": key,
                }
            )
        isos += [
            {
                "pool_id": n + h["id"],
                "name": f"os-{k:02d}.iso",
                "path": f"/var/lib/libvirt/iso/os-{k:02d}.iso",
                "capacity_bytes": 2**32,
                "allocation_bytes": 2**32,
                "format": "raw",
                "backing_path": None,
                "used_by": None,
                "first_seen_at": now,
            }
            for k in range(ISO_VOLUMES)
        ]
        nets += [
            {
                "host_id": h["id"],
                "name": name,
                "uuid": str(uuidlib.uuid4()),
                "active": True,
                "bridge": bridge,
                "forward_mode": mode,
            }
            for name, bridge, mode in (("default", "virbr0", "nat"), ("isolated", None, None))
        ]
    bulk_insert(s, m.Pool, pools)
    bulk_insert(s, m.Network, nets)
    bulk_insert(s, m.Volume, isos)


def _disk_volumes(vm: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """A VM's disks as volumes of its host's images pool (the pool's id is the host's)."""
    return [
        {
            "pool_id": vm["host_id"],
            "name": d["path"].rsplit("/", 1)[-1],
            "path": d["path"],
            "capacity_bytes": d["capacity_bytes"],
            "allocation_bytes": d["allocation_bytes"],
            "format": "qcow2",
            "backing_path": None,
            "used_by": vm["uuid"],
            "first_seen_at": now,
        }
        for d in vm["disks"]
    ]


def _vm_row(
    name: str, vcpus: int, mib: int, host_id: int, rng: random.Random, now: datetime
) -> dict[str, Any]:
    uuid = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
    created = now - timedelta(days=rng.randint(1, 1500))
    disks = [
        {
            "target": f"vd{chr(97 + d)}",
            "device": "disk",
            "path": f"/var/lib/libvirt/images/{name}-{d}.qcow2",
            "format": "qcow2",
            "bus": "virtio",
            "capacity_bytes": rng.choice([20, 40, 80, 200]) * 2**30,
            "allocation_bytes": rng.randint(1, 20) * 2**30,
            "backing_path": None,
        }
        for d in range(rng.choice([1, 1, 2]))
    ]
    snaps = [
        {
            "name": f"snap{k}",
            "created_at": (created + timedelta(days=k + 1)).isoformat(),
            "state": "shutoff",
            "parent": f"snap{k - 1}" if k else None,
            "description": None,
            "kind": "internal",
            "files": [],
            "frozen": [],
            "size_bytes": None,
        }
        for k in range(rng.choice([1, 2]) if rng.random() < 0.2 else 0)
    ]
    mac = ":".join(f"{rng.randrange(256):02x}" for _ in range(3))
    return {
        "uuid": uuid,
        "name": name,
        "host_id": host_id,
        "state": rng.choice(["running"] * 7 + ["shutoff"] * 3),
        "state_since": created,
        "vcpus": vcpus,
        "memory_max_mib": mib,
        "memory_mib": mib,
        "autostart": True,
        "persistent": True,
        "is_template": False,
        "disks": disks,
        "nics": [
            {"mac": f"52:54:00:{mac}", "type": "network", "source": "default", "model": "virtio"}
        ],
        "snapshots": snaps,
        "snapshot_count": len(snaps),
        "disk_bytes": sum(d["capacity_bytes"] for d in disks),
        "owner": None if rng.random() < 0.1 else f"user{rng.randrange(500)}",
        "department": rng.choice(DEPTS),
        "tags": [],
        "created_at": created,
        "first_seen_at": created,
        "updated_at": now,
        "fingerprint": "",
    }


# -- export --------------------------------------------------------------------------------
#: The source tree the server and the export run by default: this checkout's.
OWN_SRC = Path(__file__).resolve().parent.parent / "src"


def corral_env(home: Path, url: str, src: Path = OWN_SRC, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    env.update({"CORRAL_HOME": str(home), "CORRAL_DATABASE_URL": url, **extra})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), os.environ.get("PYTHONPATH")) if p)
    return env


def timed_export(home: Path, url: str, fmt: str) -> tuple[float, float, float, int]:
    """Wall and CPU seconds, peak RSS (MiB) and bytes written of one ``corral export``."""
    out = home / f"export-{fmt}"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "export", "--format", fmt, str(out)],
        env=corral_env(home, url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"export failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    size = sum(p.stat().st_size for p in out.iterdir())
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, size


# -- REST ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    home: Path, url: str, port: int, workers: str | None, src: Path = OWN_SRC
) -> subprocess.Popen[bytes]:
    extra = {"CORRAL_API_WORKERS": workers} if workers else {}
    with open(home / "server.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "corral", "serve", "--port", str(port)],
            env=corral_env(home, url, src, **extra),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the server did not answer /healthz within 120 s")


class Tally:
    """Latencies in the measured window; every request and every failed one."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.sent = 0
        self.errors = 0


async def _client(
    http: httpx.AsyncClient, rng: random.Random, stop: float, warm: float, tally: Tally
) -> None:
    while time.monotonic() < stop:
        params: dict[str, Any] = {"state": "running", "department": rng.choice(DEPTS)}
        params.update(limit=100, sort="name")
        for _page in range(5):
            t0 = time.monotonic()
            tally.sent += 1
            try:
                resp = await http.get("/api/v1/vms", params=params)
            except httpx.TransportError:
                tally.errors += 1
                break
            t1 = time.monotonic()
            if resp.status_code != 200:
                tally.errors += 1
                break
            if t0 >= warm and t1 <= stop:
                tally.times.append(t1 - t0)
            cursor = resp.json()["next_cursor"]
            if not cursor or time.monotonic() >= stop:
                break
            params["cursor"] = cursor


async def _load(port: int, token: str, clients: int, seconds: float) -> Tally:
    tally = Tally()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, limits=limits, timeout=60
    ) as http:
        warm = time.monotonic() + 3
        stop = warm + seconds
        await asyncio.gather(
            *(_client(http, random.Random(c), stop, warm, tally) for c in range(clients))
        )
    return tally


#: The start of a walk of a department's VMs in wrk's Lua: the departments, a URL encoder.
LUA_DEPTS = """
local depts = {{DEPTS}}
local function enc(s)
  local hex = function(c) return string.format("%%%02X", string.byte(c)) end
  return (s:gsub("[^%w%-_%.~]", hex))
end
local walk = {page = 0, dept = depts[1]}
""".replace("{DEPTS}", ", ".join(f'"{d}"' for d in DEPTS))

#: wrk's clients walk the pages as ``_client`` does: a department's first page, then up to
#: four more by cursor (one walk per connection at a time).
WRK_SCRIPT = (
    LUA_DEPTS
    + """
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CORRAL_BENCH_TOKEN")
request = function()
  local path = "/api/v1/vms?state=running&department=" .. enc(walk.dept) .. "&limit=100&sort=name"
  if walk.cursor then path = path .. "&cursor=" .. walk.cursor end
  return wrk.format("GET", path)
end
response = function(status, headers, body)
  local c = body:match('"next_cursor":"([^"]+)"')
  walk.page = walk.page + 1
  if c and walk.page < 5 then walk.cursor = c
  else walk = {page = 0, dept = depts[math.random(#depts)]} end
end
"""
)


#: The other lists' walks: from the first page or a random host's first row on (a cursor
#: of that host's name), up to five pages of 100 by the next cursor.
WALK_SCRIPT = """
local starts = {{STARTS}}
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CORRAL_BENCH_TOKEN")
local walk
local function begin()
  local c = starts[math.random(#starts)]
  walk = {page = 0, cursor = c ~= "" and c or nil}
end
begin()
request = function()
  local path = "{PATH}?limit=100"
  if walk.cursor then path = path .. "&cursor=" .. walk.cursor end
  return wrk.format("GET", path)
end
response = function(status, headers, body)
  local c = body:match('"next_cursor":"([^"]+)"')
  walk.page = walk.page + 1
  if c and walk.page < 5 then walk.cursor = c else begin() end
end
"""

#: The web VM list, walked as the REST one: a department's running VMs, then the next links.
WEB_SCRIPT = (
    LUA_DEPTS
    + """
wrk.headers["Cookie"] = "corral_session=" .. os.getenv("CORRAL_BENCH_COOKIE")
request = function()
  if walk.next then return wrk.format("GET", walk.next) end
  return wrk.format("GET", "/vms?state=running&department=" .. enc(walk.dept) .. "&sort=name")
end
response = function(status, headers, body)
  local n = body:match('href="(/vms%?[^"]*cursor=[^"]+)" rel="next"')
  walk.page = walk.page + 1
  if n and walk.page < 5 then walk.next = (n:gsub("&amp;", "&"))
  else walk = {page = 0, dept = depts[math.random(#depts)]} end
end
"""
)

#: The lists the REST section can load (``--lists``), and the API path of each.
LIST_PATHS = {
    "vms": "/api/v1/vms",
    "hosts": "/api/v1/hosts",
    "volumes": "/api/v1/volumes",
    "networks": "/api/v1/networks",
    "web-vms": "/vms",
}


def walk_script(listing: str, host_names: list[str]) -> str:
    """The wrk script of ``listing``; the walks of hosts, volumes and networks start at the
    first page or at one of 20 hosts' first rows (fixed seed)."""
    if listing == "vms":
        return WRK_SCRIPT
    if listing == "web-vms":
        return WEB_SCRIPT
    from corral.api.pagination import encode_cursor

    width = {"hosts": 1, "networks": 2, "volumes": 3}[listing]
    picked = random.Random(16).sample(host_names, min(20, len(host_names)))
    starts = ['""'] + [f'"{encode_cursor((h,) + ("",) * (width - 1))}"' for h in picked]
    return WALK_SCRIPT.replace("{STARTS}", ", ".join(starts)).replace("{PATH}", LIST_PATHS[listing])


def web_cookie(port: int, token: str) -> str:
    """A web session of the token's user, signed in through the form as a browser is."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as web:
        form = web.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        if csrf is None:
            raise SystemExit("the sign-in page has no form token")
        done = web.post("/login", data={"csrf": csrf.group(1), "token": token, "next": "/"})
        if done.status_code != 303 or "corral_session" not in web.cookies:
            raise SystemExit(f"signing in to the web pages failed: {done.status_code}")
        return str(web.cookies["corral_session"])


def wrk_load(
    port: int, env: dict[str, str], clients: int, seconds: float, home: Path, script_text: str
) -> Tally:
    """The load from wrk (a C program: its few CPU milliseconds are not the server's), after
    a 3 s warm-up run; latencies from its percentiles, so ``Tally.times`` holds p50 and p99."""
    script = home / "pages.lua"
    script.write_text(script_text)
    env = {**os.environ, **env}
    base = ["wrk", "-t2", f"-c{clients}", "--timeout", "30s", "--latency", "-s", str(script)]
    url = f"http://127.0.0.1:{port}"
    subprocess.run([*base, "-d3s", url], env=env, capture_output=True, check=True)
    out = subprocess.run(
        [*base, f"-d{seconds:.0f}s", url], env=env, capture_output=True, text=True, check=True
    ).stdout
    tally = Tally()
    for line in out.splitlines():
        words = line.split()
        if "requests in" in line:
            tally.sent = int(words[0])
        elif words[:1] in (["50%"], ["99%"]):
            tally.times.append(_wrk_seconds(words[1]))
        elif words[:1] == ["Non-2xx"]:
            tally.errors += int(words[-1])
        elif words[:2] == ["Socket", "errors:"]:
            tally.errors += sum(int(w.rstrip(",")) for w in words[3::2])
    return tally


def _wrk_seconds(text: str) -> float:
    for unit, scale in (("us", 1e-6), ("ms", 1e-3), ("s", 1.0), ("m", 60.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    raise ValueError(text)


def _cpu_seconds(pid: int) -> float:
    """CPU time of the server process and its worker processes so far."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return sum(sum(p.cpu_times()[:2]) for p in procs)


@dataclass(frozen=True)
class Rate:
    """One list under load: requests a second, p50 and p99 (ms), the server's CPU
    milliseconds per request (what the rate would be on idle cores) and failed requests."""

    rate: float
    p50: float
    p99: float
    cpu_ms: float
    errors: int


def rest_rate(
    home: Path,
    url: str,
    token: str,
    args: argparse.Namespace,
    listing: str = "vms",
    src: Path = OWN_SRC,
    host_names: list[str] | None = None,
) -> Rate:
    """``clients`` concurrent clients walking ``listing`` on a server running ``src``."""
    port = free_port()
    server = start_server(home, url, port, args.workers, src)
    try:
        if args.load == "wrk":
            env = {"CORRAL_BENCH_TOKEN": token}
            if listing == "web-vms":
                env["CORRAL_BENCH_COOKIE"] = web_cookie(port, token)
            script = walk_script(listing, host_names or [])
            wrk_load(port, env, args.clients, 1, home, script)  # warm-up: connections, caches
            cpu0 = _cpu_seconds(server.pid)
            tally = wrk_load(port, env, args.clients, args.seconds, home, script)
        else:
            if listing != "vms":
                raise SystemExit("--load httpx walks the VM list only; use wrk for --lists")
            cpu0 = _cpu_seconds(server.pid)
            tally = asyncio.run(_load(port, token, args.clients, args.seconds))
        cpu = _cpu_seconds(server.pid) - cpu0
    finally:
        server.kill()
        server.wait()
    per_request = 1000 * cpu / max(tally.sent, 1)
    if args.load == "wrk":
        p50, p99 = tally.times
        return Rate(tally.sent / args.seconds, p50 * 1000, p99 * 1000, per_request, tally.errors)
    q = statistics.quantiles(tally.times, n=100)
    return Rate(
        len(tally.times) / args.seconds, q[49] * 1000, q[98] * 1000, per_request, tally.errors
    )


# -- one page, in process -------------------------------------------------------------------
#: The lists timed in process (``--lists``): the Inventory method, its key's width, its flags.
IN_PROCESS: dict[str, tuple[str, int, dict[str, bool]]] = {
    "hosts": ("hosts_page", 1, {}),
    "networks": ("networks_page", 2, {}),
    "volumes": ("volumes_page", 3, {}),
}
PAGE_CHILD = """
import random, statistics, time
from cryptography.fernet import Fernet
from corral.inventory.service import Inventory
from corral.security.secrets import SecretBox
from corral.store.db import Database
inv = Inventory(Database({url!r}), SecretBox(Fernet.generate_key()))
page = getattr(inv, {method!r})
hosts = {hosts!r}
picked = random.Random(16).sample(hosts, min(20, len(hosts)))
starts = [None] + [(h,) + ("",) * ({width} - 1) for h in picked]
for after in starts[:3]:  # warm-up: connections, statements, caches
    page(after=after, limit=100, **{flags!r})
walls, cpus = [], []
for _ in range({rounds}):
    for after in starts:
        t0, c0 = time.perf_counter(), time.process_time()
        page(after=after, limit=100, **{flags!r})
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
print(statistics.median(walls) * 1000, statistics.quantiles(walls, n=10)[-1] * 1000,
      statistics.median(cpus) * 1000, len(walls))
"""


@dataclass(frozen=True)
class PageTime:
    median_ms: float
    p90_ms: float
    cpu_ms: float  # this process's: the database server's work is in the wall time only
    pages: int


def page_time(
    url: str, listing: str, flags: dict[str, bool], src: Path, host_names: list[str], rounds: int
) -> PageTime:
    """Pages of 100 of ``listing`` read by ``Inventory`` in a process running ``src``: the
    first page and 20 hosts' first rows (fixed seed), ``rounds`` times each."""
    method, width, _ = IN_PROCESS[listing]
    code = PAGE_CHILD.format(
        url=url, method=method, hosts=host_names, width=width, flags=flags, rounds=rounds
    )
    env = corral_env(Path(tempfile.gettempdir()), url, src)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    median, p90, cpu, pages = done.stdout.split()
    return PageTime(float(median), float(p90), float(cpu), int(pages))


def page_rows(
    label: str, url: str, host_names: list[str], args: argparse.Namespace
) -> list[tuple[str, str, str, str, str]]:
    rows: list[tuple[str, str, str, str, str]] = []
    for listing in (x for x in args.lists if x in IN_PROCESS):
        variants = [({}, "")] + [({k: True}, f" {k}") for k in _FILTERS.get(listing, ())]
        for flags, named in variants:
            measured = []
            for src in args.src:
                p = page_time(url, listing, flags, src, host_names, args.page_rounds)
                measured.append(p)
                rows.append(
                    (
                        f"one page of 100 {listing}{named}, in process{_src_label(src, args)}",
                        label,
                        f"median {p.median_ms:.1f} ms, p90 {p.p90_ms:.1f} ms, "
                        f"{p.cpu_ms:.1f} CPU ms ({p.pages} pages)",
                        "-",
                        "-",
                    )
                )
            if len(measured) == 2:
                first, last = measured
                rows.append(
                    (
                        f"  ratio {_src_name(args.src[1])} / {_src_name(args.src[0])}",
                        label,
                        f"median x{last.median_ms / first.median_ms:.3f}, "
                        f"p90 x{last.p90_ms / first.p90_ms:.3f}, "
                        f"CPU x{last.cpu_ms / first.cpu_ms:.3f}",
                        "",
                        "",
                    )
                )
    return rows


#: The filters of a list timed on their own too.
_FILTERS = {"networks": ("unused_only",), "volumes": ("orphaned_only",)}


# -- HA ------------------------------------------------------------------------------------
HA_CHILD = """
import sys, time
sys.path.insert(0, {bench!r})
from bench_ha_scale import make_fleet
from corral.engines.planning import make_policy
fleet = make_fleet({hosts}, {vms})
t0, c0 = time.perf_counter(), time.process_time()
report = make_policy("exact").evaluate(fleet, {k})
d = report.details
print(time.perf_counter() - t0, time.process_time() - c0, d["scenarios_checked"],
      d["failing_scenarios_count"])
"""


def timed_ha(hosts: int, vms: int, k: int, timeout: float) -> tuple[float | None, str]:
    code = HA_CHILD.format(bench=str(Path(__file__).parent), hosts=hosts, vms=vms, k=k)
    env = corral_env(Path(tempfile.gettempdir()), "sqlite://")
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return None, f"stopped after {timeout:.0f} s"
    wall, cpu, scenarios, failing = done.stdout.split()
    return float(wall), f"({float(cpu):.1f} s CPU), {scenarios} scenarios, {failing} failing"


# -- the table -----------------------------------------------------------------------------
def run_database(
    label: str, url: str, reset_pg: bool, home: Path, args: argparse.Namespace
) -> list[tuple[str, str, str, str, str]]:
    rows: list[tuple[str, str, str, str, str]] = []
    db = fresh_database(url, reset_pg)
    t0 = time.perf_counter()
    load_fleet(db, args.hosts, args.vms, storage=bool({"volumes", "networks"} & set(args.lists)))
    token = TokenStore(db).create("bench-scale")
    print(f"{label}: fleet of {args.vms:,} VMs written in {time.perf_counter() - t0:.1f} s")
    if "export" not in args.skip:
        db.dispose()
        for fmt in ("csv", "json"):
            wall, cpu, rss, size = timed_export(home, url, fmt)
            rows.append(
                (
                    f"export --format {fmt}, {args.vms:,} VMs",
                    label,
                    f"{wall:.1f} s ({cpu:.1f} s CPU), peak {rss:.0f} MiB, "
                    f"{size / 2**20:.0f} MiB written",
                    f"<= {EXPORT_TARGET_S:.0f} s",
                    _met(wall <= EXPORT_TARGET_S),
                )
            )
    with db.session() as s:
        host_names = sorted(s.scalars(select(m.Host.name)))
    db.dispose()
    if "page" not in args.skip:
        rows += page_rows(label, url, host_names, args)
    if "rest" not in args.skip:
        for listing in args.lists:
            measured: list[Rate] = []
            for src in args.src:  # back to back: each tree's server on the same rows
                r = rest_rate(home, url, token, args, listing, src, host_names)
                measured.append(r)
                target = listing != "web-vms"
                rows.append(
                    (
                        f"{_list_label(listing)}, {args.clients} clients ({args.load}), "
                        f"{args.vms:,} VMs{_src_label(src, args)}",
                        label,
                        f"{r.rate:.0f} req/s, p50 {r.p50:.0f} ms, p99 {r.p99:.0f} ms; server "
                        f"{r.cpu_ms:.1f} CPU ms/request; {r.errors} failed",
                        f">= {RATE_TARGET:.0f} req/s, p99 <= {P99_TARGET_MS:.0f} ms"
                        if target
                        else "-",
                        _met(r.rate >= RATE_TARGET and r.p99 <= P99_TARGET_MS) if target else "-",
                    )
                )
            if len(measured) == 2:
                rows.append(
                    (
                        f"  ratio {_src_name(args.src[1])} / {_src_name(args.src[0])}",
                        label,
                        _ratio(*measured),
                        "",
                        "",
                    )
                )
    return rows


def _ratio(first: Rate, last: Rate) -> str:
    if first.rate == 0 or first.p99 == 0:
        return f"the first answered no request in the window; the second {last.rate:.0f} req/s"
    return (
        f"req/s x{last.rate / first.rate:.2f}, p99 x{last.p99 / first.p99:.2f}, "
        f"CPU ms/request x{last.cpu_ms / first.cpu_ms:.3f}"
    )


def _list_label(listing: str) -> str:
    if listing == "web-vms":
        return "web VM list pages (/vms, 50 a page)"
    return f"REST list pages {LIST_PATHS[listing]}"


def _src_name(src: Path) -> str:
    """A source tree's label: its checkout's folder name (main, or a helper's worktree)."""
    return src.resolve().parent.name


def _src_label(src: Path, args: argparse.Namespace) -> str:
    return f" [{_src_name(src)}]" if len(args.src) > 1 else ""


def _met(ok: bool) -> str:
    return "yes" if ok else "no"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pg-url", default=os.environ.get("CORRAL_TEST_PG_URL"))
    ap.add_argument("--vms", type=int, default=100_000)
    ap.add_argument("--hosts", type=int, default=200)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--workers", default=None, help="CORRAL_API_WORKERS for the server")
    ap.add_argument(
        "--load",
        choices=("wrk", "httpx"),
        default="wrk" if shutil.which("wrk") else "httpx",
        help="the REST load generator: wrk (C, default when installed) or httpx in this process",
    )
    ap.add_argument("--ha-timeout", type=float, default=180.0)
    ap.add_argument("--skip", default="", help="comma-separated: export, page, rest, ha, sqlite")
    ap.add_argument("--page-rounds", type=int, default=5, help="rounds of the in-process page walk")
    ap.add_argument(
        "--lists",
        default="vms",
        help=f"comma-separated lists the REST section loads: {', '.join(LIST_PATHS)} "
        "(volumes or networks add each host's pools, volumes and networks to the fleet)",
    )
    ap.add_argument(
        "--src",
        action="append",
        type=Path,
        help="a source tree the server runs (give two, e.g. main's src then this one's, to "
        "compare them back to back on the same rows with their ratio); default this checkout's",
    )
    args = ap.parse_args()
    args.skip = set(filter(None, args.skip.split(",")))
    args.lists = [x for x in args.lists.split(",") if x]
    unknown = set(args.lists) - set(LIST_PATHS)
    if unknown:
        ap.error(f"unknown list {sorted(unknown)[0]!r}; choose among {', '.join(LIST_PATHS)}")
    args.src = args.src or [OWN_SRC]
    rows: list[tuple[str, str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if "sqlite" not in args.skip:
            (root / "sqlite").mkdir()
            url = f"sqlite:///{root / 'sqlite' / 'corral.db'}"
            rows += run_database("SQLite", url, False, root / "sqlite", args)
        if args.pg_url:
            (root / "pg").mkdir()
            rows += run_database("PostgreSQL", args.pg_url, True, root / "pg", args)
    if "ha" not in args.skip:
        for hosts, k in ((200, 2), (10_000, 1)):
            wall, what = timed_ha(hosts, args.vms, k, args.ha_timeout)
            took = f"> {args.ha_timeout:.0f} s" if wall is None else f"{wall:.1f} s"
            rows.append(
                (
                    f"exact HA k={k}, {hosts:,} hosts, {args.vms:,} VMs",
                    "(engine)",
                    f"{took} {what}",
                    f"<= {HA_TARGET_S:.0f} s",
                    _met(wall is not None and wall <= HA_TARGET_S),
                )
            )
    print(
        f"\nScale targets of issue 16 (not sync); load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    widths = [max(len(r[i]) for r in rows) for i in range(5)] if rows else [0] * 5
    head = ("what", "database", "measured", "target", "met")
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=True)]
    for row in (head, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
