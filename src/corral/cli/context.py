"""Build the services a command needs from the environment, once per process."""

from __future__ import annotations

import functools

from corral.config import Settings, load_settings
from corral.inventory.service import Inventory
from corral.security.token_store import TokenStore


@functools.cache
def settings() -> Settings:
    return load_settings()


@functools.cache
def inventory() -> Inventory:
    return Inventory.from_settings(settings())


@functools.cache
def tokens() -> TokenStore:
    return TokenStore(inventory().db)
