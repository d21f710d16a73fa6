"""Hardened XML parsing: no DTDs, no entities, no network, no huge trees.

Every XML document Corral reads (domain XML from libvirt, node files from a
user) goes through ``parse``. Documents that declare a DOCTYPE are refused
outright, which closes entity-expansion and XXE attacks at the door.
"""

from __future__ import annotations

from lxml import etree

from corral.errors import ValidationError

MAX_XML_BYTES = 64 * 1024 * 1024
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


def refuse_unsafe(data: bytes, what: str = "XML document") -> None:
    """Raise ValidationError naming ``what`` when ``data`` is too large or declares a DOCTYPE
    or entity: the checks ``parse`` makes before parsing, for a document another parser
    reads (libvirt's, which expands entities)."""
    if len(data) > MAX_XML_BYTES:
        raise ValidationError(
            f"{what} is {len(data):,} bytes; Corral reads at most {MAX_XML_BYTES:,}."
        )
    # the byte search below sees a DOCTYPE only in an ASCII-compatible encoding: a document in
    # UTF-16 or EBCDIC (which libxml2 reads) could hide one, so only UTF-8 text is read
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{what} is not UTF-8 text, which Corral requires.") from None
    if b"\x00" in data:
        raise ValidationError(f"{what} holds a NUL byte: not UTF-8 XML, which Corral requires.")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ValidationError(f"{what} declares a DOCTYPE or entity, which Corral refuses to read.")


def parse(text: str | bytes, what: str = "XML document") -> etree._Element:
    """Parse ``text`` safely; raise ValidationError naming ``what`` when it is not acceptable."""
    data = text.encode() if isinstance(text, str) else text
    refuse_unsafe(data, what)
    try:
        root = etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise ValidationError(f"{what} is not well-formed XML: {exc.msg}.") from None
    return root


def to_string(element: etree._Element) -> str:
    return etree.tostring(element, encoding="unicode")
