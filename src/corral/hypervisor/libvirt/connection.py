"""Opening a connection: the URI checks, credentials and one clear error when it fails."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt

from corral.errors import HostTimeoutError, HostUnreachableError, HypervisorError, NodeFileError
from corral.hypervisor import deadline
from corral.hypervisor.libvirt.hypervisor import LibvirtHypervisor
from corral.hypervisor.libvirt.nodefile import NodeFileHypervisor, _check_node_file
from corral.hypervisor.uri import (
    TRUSTED,
    HostAccess,
    is_test_file_uri,
    open_uri,
    redact,
    test_file_path,
    validate_uri,
)

log = logging.getLogger(__name__)

_quiet_once = threading.Lock()
_quiet_done = False


def quiet_libvirt() -> None:
    """libvirt prints every error to stderr by default; Corral reports them itself."""
    global _quiet_done
    with _quiet_once:
        if not _quiet_done:
            libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
            _quiet_done = True


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never show the password
        return (
            f"Credentials(username={self.username!r}, password={'***' if self.password else None})"
        )


#: What a reader is told when a connection fails: the reason, never libvirt's text (it
#: names files, sockets and users) and never whether a file exists. Details go to the log.
NODE_FILE_FAILED = "the node file could not be loaded"
_OPEN_REASONS = {
    libvirt.VIR_ERR_AUTH_FAILED: "authentication failed",
    libvirt.VIR_ERR_AUTH_CANCELLED: "authentication failed",
    libvirt.VIR_ERR_AUTH_UNAVAILABLE: "authentication failed",
}


def connect(
    uri: str,
    credentials: Credentials | None = None,
    timeout: float | None = None,
    *,
    access: HostAccess = TRUSTED,
) -> LibvirtHypervisor:
    """Open a connection within the timeout, or raise one clear error saying why not.

    The URI is checked against the allow-list of ``corral.hypervisor.uri`` (with the
    node-file folder of ``access``) every time, so a URI stored before a rule existed is
    refused too. The errors name a short reason only; libvirt's own text goes to the log.
    """
    quiet_libvirt()
    uri = validate_uri(uri, access)
    wait_s = access.timeout_s if timeout is None else timeout
    if is_test_file_uri(uri):
        _usable_node_file(uri, whole=False)
    target = open_uri(uri, access)

    def _open() -> libvirt.virConnect:
        if credentials and (credentials.username or credentials.password):
            return libvirt.openAuth(target, _auth(credentials), 0)
        return libvirt.open(target)

    outcome = deadline.call(f"open:{uri}", _open, wait_s)
    if outcome.status is not deadline.Status.DONE:
        log.info("host %s did not answer within %.0f s", redact(uri), wait_s)
        raise HostTimeoutError(f"the host did not answer within {wait_s:g} s.")
    if isinstance(outcome.error, libvirt.libvirtError):
        if is_test_file_uri(uri):
            _usable_node_file(uri, whole=True)  # says why, when the file is the reason
        raise _open_error(uri, outcome.error) from None
    if outcome.error is not None:
        raise outcome.error
    assert outcome.value is not None
    if is_test_file_uri(uri):
        return NodeFileHypervisor(uri, outcome.value)
    return LibvirtHypervisor(uri, outcome.value)


def _usable_node_file(uri: str, *, whole: bool) -> None:
    """A test-driver URI's node file checked (see nodefile._check_node_file): why it is not
    usable goes to the log, and the error raised says only that it failed."""
    try:
        _check_node_file(Path(test_file_path(uri)), whole=whole)
    except NodeFileError as exc:
        log.info("cannot open %s: %s", redact(uri), exc.message)
        raise NodeFileError(f"{NODE_FILE_FAILED}.") from None


def _auth(creds: Credentials) -> list[Any]:
    def callback(cred_list: list[list[Any]], _data: object) -> int:
        for cred in cred_list:
            if cred[0] == libvirt.VIR_CRED_AUTHNAME:
                cred[4] = creds.username or ""
            elif cred[0] == libvirt.VIR_CRED_PASSPHRASE:
                cred[4] = creds.password or ""
        return 0

    return [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE], callback, None]


def _open_error(uri: str, exc: libvirt.libvirtError) -> HypervisorError | NodeFileError:
    msg = (exc.get_error_message() or str(exc)).strip().rstrip(".")
    log.info("cannot open %s: %s", redact(uri), msg)
    if is_test_file_uri(uri):
        return NodeFileError(f"{NODE_FILE_FAILED}.")
    reason = _OPEN_REASONS.get(exc.get_error_code(), "the connection failed")
    return HostUnreachableError(f"{reason}.")
