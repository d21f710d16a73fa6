"""Every YAML or JSON file Corral reads goes through here, with its size and shape bounded.

A file is input from a person, and a small one can be a bomb: 500 bytes of YAML aliases that
refer to each other nine deep ("billion laughs") stand for 10^9 values once walked, and
50,000 opening brackets overflow the parser's stack. So, before anything walks the data:

* the file's size is bounded (``MAX_BYTES``);
* its nesting is bounded (``MAX_DEPTH``), counted on the parser's event stream, which keeps no
  Python stack per level;
* YAML aliases may only expand to ``MAX_NODES`` values in all, counted once per shared node
  (so the count itself cannot explode); an alias that refers to itself is refused.

Errors name the file and quote at most ``EXCERPT`` characters of it (``excerpt``), so an error
message never repeats a huge input. The caller chooses the error class (ConfigError for
settings-like files, ValidationError for data files).
"""

from __future__ import annotations

import itertools
import json
import re
import reprlib
from pathlib import Path
from typing import Any

import yaml

from corral.errors import CorralError, ValidationError

MAX_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 2_000_000
EXCERPT = 80

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, EXCERPT, EXCERPT
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4


def excerpt(value: Any) -> str:
    """A short repr of ``value`` for an error message: at most ``EXCERPT`` characters."""
    text = _REPR.repr(value)
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


def read_text(
    path: Path,
    what: str,
    error: type[CorralError] = ValidationError,
    *,
    encoding: str = "utf-8",
) -> str:
    """The text of ``path`` within the size bound, or one clear error naming ``what``."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise error(_too_big(f"{what} {path}", size))
        return path.read_text(encoding=encoding)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}; check the path.") from None
    except UnicodeDecodeError:
        raise error(f"{what} {path} is not UTF-8 text; save it as UTF-8.") from None


def load_file(path: Path, what: str, error: type[CorralError] = ValidationError) -> Any:
    """Read ``path`` (JSON when it ends in .json, YAML otherwise) within the bounds."""
    text = read_text(path, what, error)
    source = f"{what} {path}"
    if path.suffix.lower() == ".json":
        return parse_json(text, source, error)
    return parse_yaml(text, source, error)


def _too_big(source: str, size: int) -> str:
    return f"{source} is {size:,} bytes; Corral reads at most {MAX_BYTES:,}: split it."


def parse_json(text: str, source: str, error: type[CorralError] = ValidationError) -> Any:
    """JSON text within the bounds; ``source`` names it in errors."""
    _check_size(text, source, error)
    strings_out = re.sub(r'"(?:[^"\\]|\\.)*"', "", text)
    steps = (1 if ch in "[{" else -1 for ch in re.findall(r"[\[\]{}]", strings_out))
    if max(itertools.accumulate(steps, initial=0)) > MAX_DEPTH:
        raise error(f"{source} nests deeper than {MAX_DEPTH} levels; flatten it.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            f"{source} is not valid JSON at line {exc.lineno} ({exc.msg}); fix the syntax."
        ) from None


def parse_yaml(text: str, source: str, error: type[CorralError] = ValidationError) -> Any:
    """YAML text within the bounds, as plain Python values; ``source`` names it in errors."""
    _check_size(text, source, error)
    try:
        _check_events(text, source, error)
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_expansion(node, source, error)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise error(_yaml_problem(exc, source)) from None


def _check_size(text: str, source: str, error: type[CorralError]) -> None:
    if len(text) > MAX_BYTES:
        raise error(_too_big(source, len(text.encode("utf-8", "surrogatepass"))))


def _check_events(text: str, source: str, error: type[CorralError]) -> None:
    """Nesting depth from the event stream: no recursion, however deep the text."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                where = f" (line {event.start_mark.line + 1})" if event.start_mark else ""
                raise error(f"{source} nests deeper than {MAX_DEPTH} levels{where}.")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_expansion(root: yaml.Node, source: str, error: type[CorralError]) -> None:
    """How many values the document stands for once its aliases are expanded, and how deep.

    Each distinct node is counted once (memoised), so a bomb is measured without expanding it.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    visiting: set[int] = set()
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in size:
            continue
        kids = _children(node)
        if not children_done:
            if key in visiting:
                raise error(f"{source} has an alias that refers to itself; remove it.")
            visiting.add(key)
            stack.append((node, True))
            stack.extend((kid, False) for kid in kids if id(kid) not in size)
            continue
        visiting.discard(key)
        size[key] = 1 + sum(size[id(kid)] for kid in kids)
        depth[key] = 1 + max((depth[id(kid)] for kid in kids), default=0)
        if size[key] > MAX_NODES:
            raise error(
                f"{source} expands to more than {MAX_NODES:,} values through its aliases "
                "(& and *); write the values out or use fewer aliases."
            )
        if depth[key] > MAX_DEPTH:
            raise error(f"{source} nests deeper than {MAX_DEPTH} levels through its aliases.")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _yaml_problem(exc: yaml.YAMLError, source: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None)
    why = f" ({problem[:EXCERPT]})" if isinstance(problem, str) else ""
    return f"{source} is not valid YAML{where}{why}; fix the syntax."
