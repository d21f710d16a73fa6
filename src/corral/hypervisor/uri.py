"""Check a libvirt connection URI against an allow-list before anything is opened.

A libvirt URI can make the client run programs (``ext`` transport, ``command=``,
``netcat=``), read key files (``keyfile=``, ``pkipath=``) or turn off checks
(``no_verify=``, ``known_hosts_verify=``). A URI reaches Corral from anyone who
may register a host, so only what Corral supports passes, everything else is
refused: the drivers and transports in ``_TRANSPORTS``, the paths in ``_PATHS``,
and per transport only the query parameters in ``_PARAMS``. Key files and
known-hosts files come from Corral's settings (``HostAccess``) and are added by
``open_uri`` when a connection is opened, never taken from the URI.

The accepted URI is rebuilt from its parsed parts (``urlsplit``, checked parts,
``urlencode``), so what libvirt parses is exactly what was checked: libvirt
splits query parameters on ``;`` as well as ``&`` and un-escapes ``%XX``, Python
does neither, and such characters are refused or escaped here.

A test-driver node file (``test:///PATH``) is read only from ``HostAccess.node_dir``,
after resolving symlinks and ``..``; ``test:///default`` is always allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from corral.errors import UnsupportedURIError, ValidationError

if TYPE_CHECKING:
    from corral.config import Settings

MAX_URI_CHARS = 2048
#: transports per driver; "" is the local daemon (qemu:///system) or TLS with a host name.
_TRANSPORTS: dict[str, frozenset[str]] = {
    "qemu": frozenset({"", "unix", "ssh", "libssh", "tls", "tcp"}),
    "test": frozenset({""}),
}
_PATHS: dict[str, frozenset[str]] = {"qemu": frozenset({"/system", "/session"})}
#: query parameters a user may give, per transport; values must match _SAFE_VALUE.
_PARAMS: dict[str, frozenset[str]] = {"unix": frozenset({"socket"})}
#: the daemon sockets ``socket=`` may name (anything else is not a libvirt daemon).
_SOCKET_NAMES = frozenset(
    {"libvirt-sock", "libvirt-sock-ro", "virtqemud-sock", "virtqemud-sock-ro"}
)
_SSH_TRANSPORTS = frozenset({"ssh", "libssh"})
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+,=@~-]*$")
_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?:\.(?!-)[A-Za-z0-9-]{1,63})*\.?$")
_IPV6 = re.compile(r"^\[[0-9A-Fa-f:.]+\]$")
_USERNAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")
_EXAMPLES = "qemu:///system, qemu+ssh://kvm-01/system or test:///path/to/node.xml"


@dataclass(frozen=True, slots=True)
class HostAccess:
    """What Corral allows in, and adds to, a host URI; from the settings, never from a URI.

    ``node_dir``: the only folder test-driver node files may be read from (None: no node
    files at all, only ``test:///default``). ``ssh_keyfile`` and ``ssh_known_hosts`` are
    added to ssh URIs when a connection is opened. ``timeout_s`` bounds each host's answer.
    """

    node_dir: Path | None = None
    ssh_keyfile: Path | None = None
    ssh_known_hosts: Path | None = None
    timeout_s: float = 15.0

    @classmethod
    def from_settings(cls, settings: Settings) -> HostAccess:
        return cls(
            node_dir=settings.node_files_dir,
            ssh_keyfile=settings.ssh_keyfile,
            ssh_known_hosts=settings.ssh_known_hosts,
            timeout_s=settings.host_timeout_s,
        )


#: For Corral's own code opening a URI it wrote itself (tests, the adapter): node files anywhere.
TRUSTED = HostAccess(node_dir=Path("/"))


def validate_uri(uri: str, access: HostAccess = TRUSTED) -> str:
    """The URI in Corral's canonical spelling when it passes the allow-list, else one clear error.

    Passwords inside the URI are refused: they would end up in logs and in the
    store in clear. Credentials are given separately and stored encrypted.
    """
    uri = uri.strip()
    if not uri or len(uri) > MAX_URI_CHARS or not uri.isprintable() or " " in uri:
        raise ValidationError(
            f"a host URI must be a libvirt URI of at most {MAX_URI_CHARS} printable characters "
            "without spaces."
        )
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise ValidationError(f"the host URI is not a valid URI; use e.g. {_EXAMPLES}.") from None
    driver, _, transport = parts.scheme.partition("+")
    if transport not in _TRANSPORTS.get(driver, ()):
        raise UnsupportedURIError(
            f"unsupported libvirt URI scheme {parts.scheme[:40]!r}; Corral accepts the drivers "
            f"qemu and test over the transports unix, ssh, libssh, tls and tcp: {_EXAMPLES}."
        )
    if parts.password is not None:
        raise ValidationError(
            "put no password in the URI; give it with --username and --password-stdin instead."
        )
    if parts.fragment or uri.endswith("#"):
        raise ValidationError("a host URI takes no #fragment.")
    if driver == "test":
        return _test_uri(parts.netloc, parts.path, parts.query, access)
    netloc = _netloc(parts.username, parts.hostname, port, transport)
    path = parts.path
    if path not in _PATHS[driver]:
        allowed = " or ".join(sorted(_PATHS[driver]))
        raise UnsupportedURIError(f"a {driver} URI ends in {allowed}, not {path[:60]!r}.")
    return _join(parts.scheme, netloc, path, _query(parts.query, transport))


def _netloc(user: str | None, host: str | None, port: int | None, transport: str) -> str:
    """user@host:port, each part checked (a host or user starting with '-' would be an ssh flag)."""
    if transport == "unix":
        if host or user or port:
            raise ValidationError("a qemu+unix URI names no host: qemu+unix:///system?socket=…")
        return ""
    if transport == "" and not (host or user or port):
        return ""  # the local daemon: qemu:///system
    if not host:
        raise ValidationError(f"a qemu+{transport or 'tls'} URI needs a host name.")
    if not (_HOSTNAME.match(host) or (":" in host and _IPV6.match(f"[{host}]"))):
        raise ValidationError("the host name in the URI may hold only letters, digits, - and .")
    netloc = f"[{host}]" if ":" in host else host
    if user is not None:
        if not _USERNAME.match(user):
            raise ValidationError(
                "the user name in the URI may hold only letters, digits, '.', '_' and '-'."
            )
        netloc = f"{user}@{netloc}"
    return f"{netloc}:{port}" if port else netloc


def _query(query: str, transport: str) -> str:
    allowed = _PARAMS.get(transport, frozenset())
    pairs = parse_qsl(query, keep_blank_values=True)
    names = [name for name, _ in pairs]
    for name in names:
        if name not in allowed:
            shown = ", ".join(sorted(allowed)) or "none"
            raise UnsupportedURIError(
                f"the URI parameter {name[:40]!r} is not accepted for this transport "
                f"(accepted: {shown}); SSH keys and known_hosts come from Corral's settings."
            )
    if len(set(names)) != len(names):
        raise ValidationError("a host URI parameter may be given only once.")
    for name, value in pairs:
        if name == "socket":
            _check_socket(value)
    return _encode(sorted(pairs))


def _check_socket(value: str) -> None:
    if not _SAFE_PATH.match(value) or "/../" in f"{value}/" or "/./" in f"{value}/":
        raise ValidationError(
            "socket= must be an absolute path of letters, digits and . _ - / (no '..')."
        )
    if Path(value).name not in _SOCKET_NAMES:
        names = ", ".join(sorted(_SOCKET_NAMES))
        raise ValidationError(f"socket= must name a libvirt daemon socket ({names}).")


def _test_uri(netloc: str, path: str, query: str, access: HostAccess) -> str:
    if netloc or query:
        raise ValidationError("a test:/// URI takes an absolute path and nothing else.")
    if path == "/default":
        return "test:///default"
    if not _SAFE_PATH.match(path):
        raise ValidationError(
            "a node file path may hold only letters, digits and . _ - / + , = @ ~ "
            "(test:///abs/path/node.xml)."
        )
    return f"test://{node_file(path, access)}"


def node_file(path: str, access: HostAccess) -> Path:
    """The resolved node file, when it lies inside the node-file folder; else ValidationError."""
    if access.node_dir is None:
        raise ValidationError(
            "test-driver node files are not enabled here; only test:///default is accepted."
        )
    folder = access.node_dir.resolve()
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(folder):
        raise ValidationError(
            f"a test-driver node file must be inside {folder} (the setting CORRAL_NODE_DIR)."
        )
    return resolved


def open_uri(canonical: str, access: HostAccess) -> str:
    """The URI libvirt is given: the canonical one plus the SSH files of the settings."""
    parts = urlsplit(canonical)
    transport = parts.scheme.partition("+")[2]
    if transport not in _SSH_TRANSPORTS:
        return canonical
    extra: list[tuple[str, str]] = []
    if access.ssh_keyfile is not None:
        extra.append(("keyfile", str(access.ssh_keyfile)))
    if access.ssh_known_hosts is not None and transport == "libssh":
        extra.append(("known_hosts", str(access.ssh_known_hosts)))
    query = _encode([*parse_qsl(parts.query), *extra])
    return _join(parts.scheme, parts.netloc, parts.path, query)


def _join(scheme: str, netloc: str, path: str, query: str) -> str:
    """scheme://netloc/path?query; urlunsplit would drop the // of an empty netloc."""
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")


def _encode(pairs: list[tuple[str, str]]) -> str:
    """name=value&... with everything but letters, digits, '/' and ``_.-~`` escaped."""
    return urlencode(pairs, safe="/", quote_via=quote)


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
