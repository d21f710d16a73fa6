"""Fixtures for tests against real libvirtd hosts with tiny TCG guests.

The hosts come from ``bash scripts/realhosts.sh up``, which writes var/realhosts/env; the same
keys in the environment take precedence. Every test in this folder gets the ``realhost`` marker
(so ``pytest -m "not realhost"`` leaves them out) and ``requires("realhost")``: without hosts
it is skipped with the command to run, and under CI=true or CORRAL_REQUIRE_REALHOST=1 it fails
(tests/requires.py): CI must never pass by skipping the only tests that touch a hypervisor.
"""

from __future__ import annotations

import os
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from guest import GuestFactory, RealhostEnv, remove_pool, start_dir_pool
from tests.requires import Resource, register, requires

if TYPE_CHECKING:
    from haset import HARig, PrivateHosts

    from corral.store.db import Database

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
UP_COMMAND = "bash scripts/realhosts.sh up"
REQUIRED_KEYS = ("CORRAL_REALHOST_URIS", "CORRAL_GUEST_KERNEL", "CORRAL_GUEST_INITRD")
NETWORK_KEY = "CORRAL_REALHOST_NETWORK"


#: Fixtures that start a private set of hosts (scripts/realhosts.sh with its own state folder).
OWN_HOST_FIXTURES = frozenset({"private_hosts", "private_host"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.realhost)
            item.add_marker(pytest.mark.requires(Resource.realhost))
            if OWN_HOST_FIXTURES & set(getattr(item, "fixturenames", ())):
                # They kill and freeze only daemons of their own, so scripts/test.sh runs them
                # beside the other tests instead of after them.
                item.add_marker(pytest.mark.own_hosts)


def env_file_path() -> Path:
    state_dir = os.environ.get("CORRAL_REALHOSTS_DIR")
    return (Path(state_dir) if state_dir else REPO_ROOT / "var" / "realhosts") / "env"


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines as written by realhosts.sh; blank lines and # comments ignored."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip().strip("'\"")
    return values


def _raw_values() -> dict[str, str] | str:
    """The settings from the environment, else the env file; a reason string if neither."""
    if all(os.environ.get(key) for key in REQUIRED_KEYS):
        return {key: os.environ[key] for key in (*REQUIRED_KEYS, NETWORK_KEY) if key in os.environ}
    path = env_file_path()
    if not path.is_file():
        return f"no real libvirt hosts ({path} not found); run: {UP_COMMAND}"
    values = parse_env_file(path)
    missing = [key for key in REQUIRED_KEYS if not values.get(key)]
    if missing:
        return f"{path} lacks {', '.join(missing)}; run: {UP_COMMAND}"
    return values


def _unreachable(uris: tuple[str, ...]) -> str | None:
    try:
        import libvirt
    except ImportError:
        return "libvirt-python is not installed; run: .venv/bin/pip install -e '.[dev]'"
    for uri in uris:
        try:
            libvirt.open(uri).close()
        except libvirt.libvirtError as exc:
            return f"real host {uri} does not answer ({exc}); run: {UP_COMMAND}"
    return None


def load_realhost_env() -> RealhostEnv | str:
    """The hosts' settings, checked to answer; a reason string when they cannot be used."""
    values = _raw_values()
    if isinstance(values, str):
        return values
    env = RealhostEnv(
        uris=tuple(uri for uri in values["CORRAL_REALHOST_URIS"].split(",") if uri),
        kernel=Path(values["CORRAL_GUEST_KERNEL"]),
        initrd=Path(values["CORRAL_GUEST_INITRD"]),
        network=values.get(NETWORK_KEY) or None,
    )
    for artifact in (env.kernel, env.initrd):
        if not artifact.is_file():
            return f"guest artifact {artifact} not found; run: {UP_COMMAND}"
    return _unreachable(env.uris) or env


_loaded: list[RealhostEnv | str] = []


def _realhost_env() -> RealhostEnv | str:
    """The hosts, looked for once per run."""
    if not _loaded:
        _loaded.append(load_realhost_env())
    return _loaded[0]


def _missing_hosts() -> str | None:
    env = _realhost_env()
    return env if isinstance(env, str) else None


register(Resource.realhost, _missing_hosts)


@pytest.fixture(scope="session")
def realhost_env() -> RealhostEnv:
    requires(Resource.realhost)
    env = _realhost_env()
    assert not isinstance(env, str)
    return env


@pytest.fixture(scope="session")
def realhost_uris(realhost_env: RealhostEnv) -> list[str]:
    return list(realhost_env.uris)


@pytest.fixture
def libvirt_conns(realhost_uris: list[str]) -> Iterator[list[Any]]:
    """One open libvirt connection per host, in the order of realhost_uris."""
    import libvirt

    conns = [libvirt.open(uri) for uri in realhost_uris]
    try:
        yield conns
    finally:
        for conn in conns:
            conn.close()


@pytest.fixture
def guest_factory(
    realhost_env: RealhostEnv,
    libvirt_conns: list[Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GuestFactory]:
    """``guest_factory(host_index, load=..., disk_mib=...)`` -> a running Guest, removed after."""
    factory = GuestFactory(realhost_env, libvirt_conns, tmp_path_factory.mktemp("guests"))
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture
def pool(libvirt_conns: list[Any], tmp_path: Path) -> Iterator[Any]:
    """A transient dir pool on host 0; whatever volumes are left in it are deleted afterwards."""
    name = f"corral-t-pool-{uuidlib.uuid4().hex[:8]}"
    created = start_dir_pool(libvirt_conns[0], name, tmp_path / "pool")
    yield created
    remove_pool(created)


@pytest.fixture
def private_hosts(realhost_env: RealhostEnv) -> Iterator[PrivateHosts]:
    """A private set of three hosts, ha1 to ha3 (haset.py), taken down afterwards."""
    from haset import private_hosts_of  # imports libvirt: not before a test needs it

    with private_hosts_of(realhost_env) as hosts:
        yield hosts


@pytest.fixture
def ha(
    private_hosts: PrivateHosts, realhost_env: RealhostEnv, db: Database, tmp_path: Path
) -> HARig:
    """A test's rig on its own three hosts (haset.py); parametrize ``db`` for its database."""
    from haset import HARig

    return HARig(private_hosts, realhost_env, db, tmp_path)
