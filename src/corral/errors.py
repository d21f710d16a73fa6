"""Corral's exceptions: one small tree, one clear sentence each.

Every error a user can cause or meet carries a stable ``code`` (the problem+json
``type`` suffix of the API), the HTTP status the API answers with, the CLI's
``exit_code``, and a message that says what went wrong and what to do::

    CorralError                                     exit 1
    ├── ConfigError            bad settings, cost model, fleet file ...      2
    ├── ValidationError        bad input from a user or a file               2
    │   └── NodeFileError      a malformed libvirt test-driver node file     2
    ├── NotFoundError          a host, VM, token ... that does not exist     3
    ├── ConflictError          the thing already exists / a state forbids it 4
    ├── AuthError              missing or invalid bearer token               2
    │   └── ForbiddenError     valid token, but not allowed to do this       2
    ├── HypervisorError        libvirt said no                               5
    │   ├── UnsupportedURIError   a URI Corral does not accept               2
    │   └── HostUnreachableError  the host did not answer                    5
    │       └── HostTimeoutError   ... within the host timeout                   5
    └── StoreError             the database failed                           1

The CLI's exit statuses, as the README lists them: 0 success; 1 a bug (or a
failure Corral cannot name, such as a database error); 2 bad input, validation
or configuration (command-line usage errors too); 3 not found; 4 conflict;
5 an unreachable host or a hypervisor that refused (``corral sync`` exits 5
after syncing the hosts that did answer); 130 interrupted.
"""

from __future__ import annotations


class CorralError(Exception):
    """Base of every error Corral raises on purpose."""

    code = "corral-error"
    http_status = 500
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(CorralError):
    code = "config-invalid"
    http_status = 400
    exit_code = 2


class ValidationError(CorralError):
    code = "validation-failed"
    http_status = 422
    exit_code = 2


class NodeFileError(ValidationError):
    code = "node-file-invalid"


class NotFoundError(CorralError):
    code = "not-found"
    http_status = 404
    exit_code = 3


class ConflictError(CorralError):
    code = "conflict"
    http_status = 409
    exit_code = 4


class AuthError(CorralError):
    code = "unauthorized"
    http_status = 401
    exit_code = 2


class ForbiddenError(AuthError):
    code = "forbidden"
    http_status = 403


class HypervisorError(CorralError):
    code = "hypervisor-error"
    http_status = 502
    exit_code = 5


class UnsupportedURIError(HypervisorError):
    code = "uri-unsupported"
    http_status = 422
    exit_code = 2


class HostUnreachableError(HypervisorError):
    code = "host-unreachable"
    http_status = 503


class HostTimeoutError(HostUnreachableError):
    """The host did not answer within the host timeout (it may still act if it wakes)."""


class StoreError(CorralError):
    code = "store-error"
    http_status = 500
