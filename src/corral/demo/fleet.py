"""Generate a demo fleet as plain data: hosts, VMs and what happens to them over time.

Pure and seeded: the same seed gives the same fleet. The mix follows what
sprawl studies report for unmanaged estates: a share of VMs powered off for
months, owner-less and purpose-less VMs, expired leases, old and piled-up
snapshots, templates, and disks left behind by deleted VMs.
"""

from __future__ import annotations

import hashlib
import random
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import date, timedelta

DEPARTMENTS = ("Finance", "Engineering", "Marketing", "Sales", "HR", "IT-Ops", "R&D", "Legal")
PEOPLE = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "yara",
)
ROLES = (
    "web",
    "app",
    "db",
    "cache",
    "build",
    "test",
    "report",
    "etl",
    "mail",
    "ldap",
    "vpn",
    "mon",
)
ENVIRONMENTS = ("prod", "prod", "test", "dev", "dev", "staging")
SIZES = ((1, 1024), (1, 2048), (2, 4096), (2, 8192), (4, 8192), (4, 16384), (8, 32768), (16, 65536))
SIZE_WEIGHTS = (6, 10, 18, 16, 14, 10, 5, 2)
NETWORKS = ("default", "prod-net", "dmz")

#: (name prefix, cpu model, sockets, cores, threads, MHz, memory GiB)
HOST_KINDS = (
    ("kvm-big", "Cascadelake-Server", 2, 16, 2, 2600, 512),
    ("kvm-mid", "Skylake-Server", 2, 10, 2, 2400, 256),
    ("kvm-small", "EPYC-Rome", 1, 8, 2, 2800, 128),
)


#: Share of the VMs with snapshots whose newest one is an external disk-only snapshot (a backup
#: tool's or an administrator's ``--disk-only``); the others, and all older ones, are internal.
EXTERNAL_SHARE = 0.8
#: Range of the share of its disk a VM writes per day, which its overlay takes in...
DAILY_CHANGE = (0.002, 0.02)
#: ...until it holds the VM's working set, the share of the disk that is ever rewritten (logs,
#: database pages, updates); the rest of the disk stays in the frozen image.
WORKING_SET = (0.1, 0.6)


@dataclass
class DemoSnapshot:
    name: str
    days_ago: int
    description: str
    external: bool = False  # an overlay file took the writes since (else kept in the image)
    daily_change: float = 0.0  # share of the disk written into the overlay per day
    working_set: float = 0.0  # share of the disk the overlay can grow to


@dataclass
class DemoVM:
    uuid: str
    name: str
    host: int  # index into hosts
    vcpus: int
    memory_mib: int
    disk_gib: int
    created_days_ago: int
    off_since_days_ago: int | None  # powered off since (None: running)
    paused: bool = False
    deleted_days_ago: int | None = None
    migrated: tuple[int, int] | None = None  # (days ago, from host index)
    resized: tuple[int, int] | None = None  # (days ago, old memory MiB)
    owner: str | None = None
    department: str | None = None
    purpose: str | None = None
    project: str | None = None
    environment: str | None = None
    expires_on: date | None = None
    protection_tier: str | None = None
    tags: tuple[str, ...] = ()
    template: bool = False
    backing: str | None = None  # template disk this VM was cloned from
    snapshots: list[DemoSnapshot] = field(default_factory=list)
    network: str = "default"
    mac: str = ""


@dataclass
class DemoHost:
    name: str
    cpu_model: str
    sockets: int
    cores: int
    threads: int
    mhz: int
    memory_mib: int
    orphans: list[tuple[str, int]] = field(default_factory=list)  # (volume name, GiB)


@dataclass
class DemoFleet:
    today: date
    hosts: list[DemoHost]
    vms: list[DemoVM]


def generate(
    seed: int = 7, n_vms: int = 150, n_hosts: int = 6, today: date | None = None
) -> DemoFleet:
    rng = random.Random(seed)
    today = today or date.today()
    hosts = [
        DemoHost(
            f"{kind[0]}-{i // len(HOST_KINDS) + 1:02d}",
            kind[1],
            kind[2],
            kind[3],
            kind[4],
            kind[5],
            kind[6] * 1024,
        )
        for i, kind in ((i, HOST_KINDS[i % len(HOST_KINDS)]) for i in range(n_hosts))
    ]
    vms: list[DemoVM] = []
    n_templates = max(2, n_vms // 20)
    for i in range(n_templates):
        vms.append(_template(rng, i, len(hosts)))
    for i in range(n_vms - n_templates):
        vms.append(
            _vm(rng, i, [h.memory_mib for h in hosts], today, [v for v in vms if v.template])
        )
    for h in hosts:  # disks left behind by VMs deleted long ago
        for k in range(rng.randint(2, 5)):
            h.orphans.append(
                (
                    f"old-{rng.choice(ROLES)}-{rng.randint(100, 999)}-{k}.qcow2",
                    rng.choice((20, 40, 80, 100, 200)),
                )
            )
    return DemoFleet(today=today, hosts=hosts, vms=vms)


def _unit(text: str) -> float:
    """A number in [0, 1) fixed by ``text``: snapshot kinds are drawn without moving ``rng``,
    so the rest of the fleet stays what the same seed always gave."""
    return int(hashlib.blake2b(text.encode(), digest_size=4).hexdigest(), 16) / 2**32


def _externalise_newest(vm: DemoVM) -> None:
    newest = vm.snapshots[-1]
    if _unit(vm.uuid + "/external") < EXTERNAL_SHARE:
        low, high = DAILY_CHANGE
        newest.external = True
        newest.daily_change = low + (high - low) * _unit(vm.uuid + "/change")
        low, high = WORKING_SET
        newest.working_set = low + (high - low) * _unit(vm.uuid + "/working-set")


def _uuid(rng: random.Random) -> str:
    return str(uuidlib.UUID(int=rng.getrandbits(128), version=4))


def _mac(rng: random.Random) -> str:
    return "52:54:00:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3))


def _template(rng: random.Random, i: int, n_hosts: int) -> DemoVM:
    os_name = ("rhel9", "ubuntu2204", "debian12", "win2022", "rocky9", "sles15")[i % 6]
    return DemoVM(
        uuid=_uuid(rng),
        name=f"tmpl-{os_name}" + (f"-v{i // 6 + 1}" if i >= 6 else ""),
        host=i % n_hosts,
        vcpus=2,
        memory_mib=4096,
        disk_gib=40,
        created_days_ago=rng.randint(400, 900),
        off_since_days_ago=rng.randint(200, 400),
        owner="it-ops",
        department="IT-Ops",
        purpose=f"golden image {os_name}",
        environment="prod",
        tags=("template", os_name),
        template=True,
        mac=_mac(rng),
    )


def _vm(
    rng: random.Random, i: int, capacity: list[int], today: date, templates: list[DemoVM]
) -> DemoVM:
    n_hosts = len(capacity)
    role = rng.choice(ROLES)
    dept = rng.choice(DEPARTMENTS)
    vcpus, mem = rng.choices(SIZES, SIZE_WEIGHTS)[0]
    created = int(rng.triangular(1, 1100, 120))
    env = rng.choice(ENVIRONMENTS)
    vm = DemoVM(
        uuid=_uuid(rng),
        name=f"{dept.lower().replace('&', '')[:5]}-{role}-{i + 1:03d}",
        host=rng.choices(range(n_hosts), weights=capacity)[0],
        vcpus=vcpus,
        memory_mib=mem,
        disk_gib=rng.choice((20, 40, 60, 80, 100, 200, 500)),
        created_days_ago=created,
        off_since_days_ago=None,
        owner=rng.choice(PEOPLE),
        department=dept,
        purpose=f"{role} server for {dept}",
        project=f"{dept.lower()[:3]}-{rng.choice(('atlas', 'orion', 'nova', 'zeus', 'apollo'))}",
        environment=env,
        protection_tier=(
            "replicated"
            if env == "prod" and role == "db"
            else "restart"
            if env == "prod"
            else "backup-only"
        ),
        tags=tuple(sorted({role, env})),
        network=rng.choice(NETWORKS),
        mac=_mac(rng),
    )
    r = rng.random()
    if r < 0.30:  # powered off: most for months, a few recently
        vm.off_since_days_ago = min(
            created,
            int(rng.choice((rng.uniform(1, 20), rng.uniform(30, 400), rng.uniform(60, 300)))),
        )
    elif r < 0.33:
        vm.paused = True
    if rng.random() < 0.15:
        vm.owner = None
    if rng.random() < 0.18:
        vm.purpose = None
    if env in ("dev", "test") and rng.random() < 0.7:
        vm.expires_on = today + timedelta(days=rng.randint(-120, 240))
    if rng.random() < 0.28:
        for k in range(rng.choice((1, 1, 2, 3, 6, 9))):
            age = rng.randint(0, max(1, created - 1))
            vm.snapshots.append(
                DemoSnapshot(
                    f"snap-{k + 1}",
                    age,
                    rng.choice(("before patch", "pre-upgrade", "backup", "test")),
                )
            )
        vm.snapshots.sort(key=lambda s: -s.days_ago)
        _externalise_newest(vm)
    if templates and rng.random() < 0.35:
        vm.backing = rng.choice(templates).name
    if rng.random() < 0.04 and created > 40:
        vm.deleted_days_ago = rng.randint(1, min(150, created - 1))
    if rng.random() < 0.08 and created > 30 and n_hosts > 1:
        vm.migrated = (
            rng.randint(1, min(170, created - 1)),
            (vm.host + 1 + rng.randrange(n_hosts - 1)) % n_hosts,
        )
    if rng.random() < 0.06 and created > 30:
        vm.resized = (rng.randint(1, min(170, created - 1)), max(512, vm.memory_mib // 2))
    return vm
