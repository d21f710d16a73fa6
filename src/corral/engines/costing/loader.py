"""Read a cost model from YAML, refusing anything doubtful with the key named."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from corral import safeload
from corral.engines.costing.model import CostModel
from corral.errors import ConfigError
from corral.safeload import excerpt

DEFAULT_COST_MODEL = "default_cost_model.yaml"
_ADAPTER = TypeAdapter(CostModel)


def default_cost_model_text() -> str:
    """The YAML text of the shipped default cost model (documented in its comments)."""
    return (resources.files("corral.engines.costing") / DEFAULT_COST_MODEL).read_text("utf-8")


def load_cost_model(path: Path | None = None) -> CostModel:
    """The cost model in ``path``, or the shipped default when ``path`` is None."""
    if path is None:
        return parse_cost_model(default_cost_model_text(), "the default cost model")
    data = safeload.load_file(path, "cost model", ConfigError)
    return _validate(_mapping(data, f"cost model {path}"), f"cost model {path}")


def parse_cost_model(text: str, source: str = "cost model") -> CostModel:
    """Parse and validate YAML text; ``source`` names it in error messages."""
    return _validate(_mapping(safeload.parse_yaml(text, source, ConfigError), source), source)


def _validate(data: dict[str, Any], source: str) -> CostModel:
    try:
        model = _ADAPTER.validate_python(data)
    except PydanticValidationError as exc:
        raise ConfigError(_describe(exc, source)) from exc
    _check_families(model, source)
    return model


def _mapping(data: Any, source: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError(f"{source} must be a mapping of keys to values, not a {kind}.")
    return data


def _describe(exc: PydanticValidationError, source: str) -> str:
    err = exc.errors()[0]
    key = ".".join(str(part) for part in err["loc"]) or "(top level)"
    if err["type"] in {"unexpected_keyword_argument", "extra_forbidden"}:
        return f"{source}: unknown key '{key}'; remove it or check its spelling."
    if err["type"] == "missing" or err["type"] == "missing_argument":
        return f"{source}: key '{key}' is required; add it."
    return f"{source}: key '{key}' is invalid ({err['msg']}); got {excerpt(err.get('input'))}."


def _check_families(model: CostModel, source: str) -> None:
    covered = {lic.covers for lic in model.licences.values() if lic.covers}
    for pattern, family in model.os_map.items():
        if family not in covered:
            raise ConfigError(
                f"{source}: key 'os_map.{pattern}' maps to '{family}', which no licence covers; "
                "add a licence with that 'covers' value or fix the name."
            )
