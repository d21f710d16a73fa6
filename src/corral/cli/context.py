"""The settings and services a command needs, built once per process from the settings."""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from corral.config import Settings, load_settings

if TYPE_CHECKING:
    from corral.engines.costing import CostModel
    from corral.inventory.service import Inventory
    from corral.security.token_store import TokenStore
    from corral.services.audit import AuditLog
    from corral.services.stores import MetricsStore
    from corral.services.users import UserService

_flags: dict[str, Any] = {}


def set_flags(**flags: Any) -> None:
    """Settings given as command-line flags (highest precedence); before the first use."""
    _flags.update({k: v for k, v in flags.items() if v is not None})
    settings.cache_clear()


@functools.cache
def settings() -> Settings:
    return load_settings(flags=_flags)


@functools.cache
def inventory() -> Inventory:
    """The inventory on the settings' database; its writes are audited as the OS user's."""
    from corral.inventory.service import Inventory

    record_writes_as_os_user()
    return Inventory.from_settings(settings())


def os_user() -> str:
    """The login of the user running the command (not a setting: who is at the keyboard)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"


def record_writes_as_os_user() -> None:
    """The local CLI acts as the administrator of the database it opens (docs/auth.md)."""
    from corral.domain.access import Role
    from corral.services.audit import Actor, set_actor

    user = os_user()
    set_actor(Actor(user=user, roles=Role.admin.value, origin=f"cli:{user}"))


@functools.cache
def users() -> UserService:
    from corral.services.users import UserService

    return UserService(inventory().db)


@functools.cache
def audit_log() -> AuditLog:
    from corral.services.audit import AuditLog

    return AuditLog(inventory().db)


@functools.cache
def tokens() -> TokenStore:
    from corral.security.token_store import TokenStore

    return TokenStore(inventory().db)


def metrics_store(url: str | None = None) -> MetricsStore:
    """The metrics store of the settings (or the one a --store flag names), opened once."""
    return _store_for(url or settings().metrics_url)


@functools.cache
def _store_for(url: str) -> MetricsStore:
    from corral.services.stores import open_metrics_store

    return open_metrics_store(url)


def cost_model(path: str | None = None) -> CostModel:
    """The cost model a --cost-model flag names, else the setting's, else the shipped one."""
    from pathlib import Path

    from corral.engines.costing import load_cost_model

    chosen = Path(path) if path else settings().cost_model
    return load_cost_model(chosen)
