"""Corral's exceptions: one small tree, one clear sentence each.

Every error a user can cause or meet carries a stable ``code`` (used as the
problem+json ``type`` suffix by the API and as the exit status family by the
CLI) and a message that says what went wrong and what to do::

    CorralError
    ├── ConfigError            bad settings, cost model, fleet file ...
    ├── ValidationError        bad input from a user or a file
    │   └── NodeFileError      a malformed libvirt test-driver node file
    ├── NotFoundError          a host, VM, token ... that does not exist
    ├── ConflictError          the thing already exists / a state forbids it
    ├── AuthError              missing or invalid bearer token
    │   └── ForbiddenError     valid token, but not allowed to do this
    ├── HypervisorError        libvirt said no
    │   ├── UnsupportedURIError   a URI scheme Corral does not speak
    │   └── HostUnreachableError  the host did not answer
    └── StoreError             the database failed
"""

from __future__ import annotations


class CorralError(Exception):
    """Base of every error Corral raises on purpose."""

    code = "corral-error"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(CorralError):
    code = "config-invalid"
    http_status = 400


class ValidationError(CorralError):
    code = "validation-failed"
    http_status = 422


class NodeFileError(ValidationError):
    code = "node-file-invalid"


class NotFoundError(CorralError):
    code = "not-found"
    http_status = 404


class ConflictError(CorralError):
    code = "conflict"
    http_status = 409


class AuthError(CorralError):
    code = "unauthorized"
    http_status = 401


class ForbiddenError(AuthError):
    code = "forbidden"
    http_status = 403


class HypervisorError(CorralError):
    code = "hypervisor-error"
    http_status = 502


class UnsupportedURIError(HypervisorError):
    code = "uri-unsupported"
    http_status = 400


class HostUnreachableError(HypervisorError):
    code = "host-unreachable"
    http_status = 503


class StoreError(CorralError):
    code = "store-error"
    http_status = 500
