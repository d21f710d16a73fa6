"""Corral: one place to see, control and plan a fleet of virtual machines."""

from corral.errors import (
    AuthError,
    ConfigError,
    ConflictError,
    CorralError,
    ForbiddenError,
    HostUnreachableError,
    HypervisorError,
    NodeFileError,
    NotFoundError,
    StoreError,
    UnsupportedURIError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "ConfigError",
    "ConflictError",
    "CorralError",
    "ForbiddenError",
    "HostUnreachableError",
    "HypervisorError",
    "NodeFileError",
    "NotFoundError",
    "StoreError",
    "UnsupportedURIError",
    "ValidationError",
    "__version__",
]
