"""What text Corral accepts from people: only what it can store, write to libvirt and show.

Control characters, lone surrogates and Unicode noncharacters cannot go into libvirt's XML
metadata, an HTML page or an e-mail, and are invisible on a terminal. Every interface (REST
schemas, CLI options, services) refuses them here, in one place, with one clear sentence, so
nothing is stored that cannot be shown again.
"""

from __future__ import annotations

import re

from corral.errors import ValidationError

#: Line breaks and tabs are fine in free text (a purpose, a reason); never in a name.
MULTILINE_OK = "\t\n\r"

_CONTROLS = "\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f"  # C0 but tab/LF/CR, DEL, C1
_NONCHARACTERS = "\\ufdd0-\\ufdef\\ufffe\\uffff"  # those of the basic plane
_SURROGATES = "\\ud800-\\udfff"  # a lone one has no UTF-8 form
#: The same rule as a JSON-Schema pattern, for the OpenAPI document. Lone surrogates are left
#: out of it: no UTF-8 text holds one, and regex engines that work on UTF-8 cannot name them.
TEXT_PATTERN = f"^[^{_CONTROLS}{_NONCHARACTERS}]*$"
LINE_PATTERN = f"^[^{_CONTROLS}{_NONCHARACTERS}\\t\\n\\r]*$"
_BAD_TEXT = re.compile(f"[{_CONTROLS}{_NONCHARACTERS}{_SURROGATES}]")
_BAD_LINE = re.compile(f"[{_CONTROLS}{_NONCHARACTERS}{_SURROGATES}\\t\\n\\r]")


def bad_character(value: str, *, multiline: bool = False) -> str | None:
    """The first character of ``value`` Corral refuses, or None."""
    found = (_BAD_TEXT if multiline else _BAD_LINE).search(value)
    if found:
        return found.group()
    for ch in value:
        if ord(ch) > 0xFFFF and ord(ch) & 0xFFFE == 0xFFFE:  # U+1FFFE, U+1FFFF ... noncharacters
            return ch
    return None


def check_text(value: str, what: str, *, multiline: bool = False) -> str:
    """``value`` unchanged, or ValidationError naming the field and the character (escaped)."""
    ch = bad_character(value, multiline=multiline)
    if ch is not None:
        kind = "a line break or tab" if ch in MULTILINE_OK else "a control or invalid character"
        raise ValidationError(f"{what} contains {kind} (U+{ord(ch):04X}); use printable text only.")
    return value
