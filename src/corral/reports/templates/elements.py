"""Building HTML with lxml elements: every string becomes escaped text or an attribute.

Why: VM names, owners and departments are user input; the serializer escapes
them, so nothing a user types can become markup.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lxml import etree

Element = etree._Element

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CNY": "¥"}


def money(value: float, currency: str, cents: bool = False) -> str:
    symbol = SYMBOLS.get(currency)
    number = f"{value:,.2f}" if cents else f"{value:,.0f}"
    return f"{symbol}{number}" if symbol else f"{number} {currency}"


def pct(value: float) -> str:
    return f"{100 * value:.0f}%"


Child = Element | str | int | float | None


def el(tag: str, attrs: Mapping[str, Any] | None = None, *children: Child) -> Element:
    """An element with attributes and children; strings become (escaped) text."""
    node = etree.Element(tag, {k: str(v) for k, v in (attrs or {}).items()})
    for child in children:
        _append(node, child)
    return node


def _append(node: Element, child: Child) -> None:
    if child is None:
        return
    if isinstance(child, etree._Element):
        node.append(child)
        return
    text = str(child)
    if len(node):
        last = node[-1]
        last.tail = (last.tail or "") + text
    else:
        node.text = (node.text or "") + text


def table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = ()
) -> Element:
    """A data table; columns listed in ``numeric`` are right-aligned."""
    head = el(
        "tr", None, *(el("th", _num(i, numeric, scope="col"), h) for i, h in enumerate(headers))
    )
    body = [
        el("tr", None, *(el("td", _num(i, numeric), _child(c)) for i, c in enumerate(r)))
        for r in rows
    ]
    return el("table", None, el("thead", None, head), el("tbody", None, *body))


def _child(value: object) -> Child:
    if value is None or isinstance(value, etree._Element | str | int | float):
        return value
    return str(value)


def _num(i: int, numeric: Sequence[int], **attrs: str) -> dict[str, str]:
    return {**attrs, "class": "num"} if i in numeric else dict(attrs)


def section(title: str, *children: Child, section_id: str | None = None) -> Element:
    """A titled section of a page."""
    return el(
        "section", {"id": section_id} if section_id else None, el("h2", None, title), *children
    )
