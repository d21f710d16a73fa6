"""Validate libvirt connection URIs before anything is opened."""

from __future__ import annotations

from urllib.parse import urlsplit

from corral.errors import UnsupportedURIError, ValidationError

#: libvirt drivers Corral speaks to, with their transports.
_DRIVERS = {"test", "qemu", "xen", "lxc", "esx", "gsx", "vpx", "hyperv", "bhyve", "vz", "ch"}
_TRANSPORTS = {"", "unix", "ssh", "libssh", "libssh2", "tcp", "tls", "ext"}


def validate_uri(uri: str) -> str:
    """Return the URI unchanged when Corral can use it, else raise one clear error.

    Passwords inside the URI are refused: they would end up in logs and in the
    store in clear. Credentials are given separately and stored encrypted.
    """
    uri = uri.strip()
    if not uri or len(uri) > 2048:
        raise ValidationError(
            "a host URI must be a non-empty libvirt URI of at most 2048 characters."
        )
    parts = urlsplit(uri)
    driver, _, transport = parts.scheme.partition("+")
    if driver not in _DRIVERS or transport not in _TRANSPORTS:
        raise UnsupportedURIError(
            f"unsupported libvirt URI scheme {parts.scheme!r}; use e.g. qemu:///system, "
            "qemu+ssh://host/system or test:///path/to/node.xml."
        )
    if parts.password:
        raise ValidationError(
            "put no password in the URI; give it with --username and --password-stdin instead."
        )
    if driver == "test" and parts.netloc and transport == "":
        raise ValidationError("a test:/// URI takes an absolute path: test:///abs/path/node.xml.")
    return uri


def is_test_file_uri(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "test" and parts.path not in ("", "/default")


def test_file_path(uri: str) -> str:
    return urlsplit(uri).path


def redact(uri: str) -> str:
    """The URI without any user information, fit for logs and messages."""
    parts = urlsplit(uri)
    if parts.username is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return parts._replace(netloc=host).geturl()
