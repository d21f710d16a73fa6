"""Bad input of every kind gets one clear error and loses nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from corral.errors import (
    ConflictError,
    NodeFileError,
    NotFoundError,
    UnsupportedURIError,
    ValidationError,
)
from corral.hypervisor.libvirt import connect
from corral.hypervisor.uri import redact, validate_uri
from corral.hypervisor.xmlsafe import parse
from corral.inventory.service import Inventory


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(UnsupportedURIError, match="unsupported libvirt URI scheme 'vmware'"):
        validate_uri("vmware://esx01/")


def test_password_in_uri_is_refused_and_never_echoed() -> None:
    with pytest.raises(ValidationError) as err:
        validate_uri("qemu+tcp://root:hunter2@kvm1/system")
    assert "hunter2" not in str(err.value)
    assert redact("qemu+ssh://root@kvm1:2222/system") == "qemu+ssh://kvm1:2222/system"


def _refused_with_logged_reason(uri: str, reason: str, caplog: pytest.LogCaptureFixture) -> None:
    """The error says only that the node file failed; why (the file's name too) is logged."""
    logger = "corral.hypervisor.libvirt"
    only = r"^the node file could not be loaded\.$"
    with caplog.at_level(logging.INFO, logger=logger), pytest.raises(NodeFileError, match=only):
        connect(uri)
    assert reason in caplog.text


def test_malformed_node_file(nodes: Path, caplog: pytest.LogCaptureFixture) -> None:
    _refused_with_logged_reason(f"test://{nodes / 'malformed.xml'}", "not well-formed", caplog)


def test_missing_node_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _refused_with_logged_reason(f"test://{tmp_path / 'nope.xml'}", "does not exist", caplog)


def test_entity_expansion_is_refused(nodes: Path, caplog: pytest.LogCaptureFixture) -> None:
    _refused_with_logged_reason(f"test://{nodes / 'xxe.xml'}", "DOCTYPE", caplog)
    with pytest.raises(ValidationError):
        parse(b'<!DOCTYPE a [<!ENTITY b "c">]><a>&b;</a>')


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "cp500"])
def test_an_entity_hidden_by_another_encoding_is_refused(
    nodes: Path, tmp_path: Path, encoding: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The DOCTYPE check reads bytes: the same node file in UTF-16, UTF-32 or EBCDIC (which
    libvirt's parser would decode, and expand) is refused before libvirt opens it."""
    text = (nodes / "xxe.xml").read_text().replace('<?xml version="1.0"?>', "")
    hidden = tmp_path / f"xxe-{encoding}.xml"
    hidden.write_bytes(text.encode(encoding))
    assert b"<!DOCTYPE" not in hidden.read_bytes()
    _refused_with_logged_reason(f"test://{hidden}", "UTF-8", caplog)
    with pytest.raises(ValidationError, match="UTF-8"):
        parse(hidden.read_bytes())


def test_unreachable_uri_is_a_clear_error(tmp_path: Path) -> None:
    from corral.errors import HostUnreachableError

    with pytest.raises(HostUnreachableError, match=r"^the connection failed\.$"):
        connect(f"qemu+unix:///system?socket={tmp_path}/libvirt-sock")


def test_malformed_node_file_during_sync_loses_nothing(inventory: Inventory, nodes: Path) -> None:
    path = nodes / "host-a.xml"
    inventory.add_host("host-a", f"test://{path}")
    inventory.sync()
    before = inventory.list_vms().items
    path.write_text("<node><domain>")  # someone broke the file
    report = inventory.sync()
    assert report.hosts[0].status == "unreachable"
    assert report.hosts[0].error == "the node file could not be loaded."
    assert inventory.list_vms().items == before


def test_host_registration_errors(inventory: Inventory, nodes: Path) -> None:
    uri = f"test://{nodes / 'host-a.xml'}"
    inventory.add_host("host-a", uri)
    with pytest.raises(ConflictError):
        inventory.add_host("host-a", f"test://{nodes / 'host-b.xml'}")
    with pytest.raises(ConflictError):
        inventory.add_host("other", uri)
    with pytest.raises(ValidationError, match="host name"):
        inventory.add_host("<script>", uri)
    with pytest.raises(NotFoundError):
        inventory.remove_host("ghost")
    with pytest.raises(NotFoundError):
        inventory.sync(["ghost"])


def test_credentials_are_encrypted_at_rest(inventory: Inventory) -> None:
    inventory.add_host(
        "remote", "qemu+tcp://kvm-9.example.invalid/system", username="admin", password="s3cret!"
    )
    from corral.store import models as m

    with inventory.db.session() as s:
        host = s.query(m.Host).filter_by(name="remote").one()
        assert host.secret is not None and b"s3cret" not in host.secret
        assert inventory.secrets.decrypt(host.secret) == "s3cret!"
    view = inventory.list_hosts()[0]
    assert view.has_credentials is True and "s3cret" not in repr(view)
