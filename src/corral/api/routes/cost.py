"""Cost over HTTP: each VM's monthly cost, chargeback, licence compliance.

The fleet is named as for planning (a fleet document or ``live: true``) and is
priced with the server's cost model (the ``cost_model`` setting), the one the
CLI uses. Chargeback names owners, departments and projects, so it needs a token.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from corral.api.deps import InventoryDep, require
from corral.api.problems import error_responses
from corral.api.routes.plan import FleetRequest, snapshot
from corral.domain.access import Permission as Perm
from corral.domain.access import Principal
from corral.inventory.service import Inventory
from corral.services import cost
from corral.services.cost_api import (
    ComplianceStatus,
    CostModel,
    Dimension,
    LicenceScope,
    VMState,
    settings_cost_model,
)
from corral.services.records import FleetRecords

router = APIRouter(prefix="/api/v1/cost", tags=["cost"])


def get_cost_model_of(state: Any) -> CostModel:
    """The settings' cost model, read once per app (``state`` is the app's state)."""
    model: CostModel | None = getattr(state, "cost_model", None)
    if model is None:
        model = settings_cost_model(state.settings)
        state.cost_model = model
    return model


def get_cost_model(request: Request) -> CostModel:
    return get_cost_model_of(request.app.state)


CostModelDep = Annotated[CostModel, Depends(get_cost_model)]


def records(request: FleetRequest, inventory: Inventory) -> FleetRecords:
    """The cost/sprawl records of the fleet a request names (as ``-f``/``--live`` do)."""
    return snapshot(request, inventory).records


class CostLinesOut(BaseModel):
    compute: float
    storage: float
    snapshots: float
    platform: float
    os_app_licences: float
    software: float
    labour: float
    total: float


class VMCostOut(BaseModel):
    uuid: str
    vm: str
    state: VMState
    lines: CostLinesOut
    licences: dict[str, float] = Field(description="Licence product -> monthly share.")


class CostPerVMOut(BaseModel):
    currency: str
    total: float = Field(description="The whole fleet a month.")
    vms: list[VMCostOut]


class ChargebackRequest(FleetRequest):
    by: Dimension = Dimension.department


class ChargebackLineOut(BaseModel):
    key: str = Field(description="The owner, department or project (UNASSIGNED when unset).")
    vms: int
    lines: CostLinesOut


class ChargebackOut(BaseModel):
    currency: str
    by: Dimension
    rows: list[ChargebackLineOut]


class LicenceUsageOut(BaseModel):
    product: str
    per: LicenceScope
    covers: str | None
    deployed: int
    entitlements: int | None
    free: int | None
    status: ComplianceStatus
    monthly_cost: float


class LicensingSuggestionOut(BaseModel):
    host: str
    family: str
    vms: int
    current: str
    current_monthly: float
    suggested: str
    suggested_monthly: float
    monthly_saving: float


class LicencesOut(BaseModel):
    currency: str
    usage: list[LicenceUsageOut]
    suggestions: list[LicensingSuggestionOut]


def _lines(lines: cost.CostLines) -> CostLinesOut:
    return CostLinesOut.model_validate(lines, from_attributes=True)


@router.post("/vms", response_model=CostPerVMOut, responses=error_responses(404, 413, 422))
def per_vm(
    body: FleetRequest,
    inv: InventoryDep,
    model: CostModelDep,
    _who: Annotated[Principal, require(Perm.fleet_analyse)],
) -> CostPerVMOut:
    """Every VM's monthly cost, line by line, in the model's currency."""
    result = cost.cost_per_vm(records(body, inv), model)
    return CostPerVMOut(
        currency=result.currency,
        total=result.total,
        vms=[
            VMCostOut(
                uuid=v.uuid,
                vm=v.vm,
                state=v.state,
                lines=_lines(v.lines),
                licences=dict(v.licences),
            )
            for v in result.vms
        ],
    )


@router.post(
    "/chargeback", response_model=ChargebackOut, responses=error_responses(401, 404, 413, 422)
)
def chargeback(
    body: ChargebackRequest,
    inv: InventoryDep,
    model: CostModelDep,
    _who: Annotated[Principal, require(Perm.fleet_analyse)],
) -> ChargebackOut:
    """Monthly cost by owner, department or project, largest first."""
    result = cost.chargeback_by(records(body, inv), model, body.by)
    rows = [ChargebackLineOut(key=r.key, vms=r.vms, lines=_lines(r.lines)) for r in result.rows]
    return ChargebackOut(currency=result.currency, by=result.by, rows=rows)


@router.post("/licences", response_model=LicencesOut, responses=error_responses(404, 413, 422))
def licences(
    body: FleetRequest,
    inv: InventoryDep,
    model: CostModelDep,
    _who: Annotated[Principal, require(Perm.fleet_analyse)],
) -> LicencesOut:
    """Licences deployed against those owned, and the cheaper per-host/per-VM choices."""
    result = cost.licence_compliance(records(body, inv), model)
    return LicencesOut(
        currency=result.currency,
        usage=[
            LicenceUsageOut(
                product=u.product,
                per=u.per,
                covers=u.covers,
                deployed=u.deployed,
                entitlements=u.entitlements,
                free=u.free,
                status=u.status,
                monthly_cost=u.monthly_cost,
            )
            for u in result.usage
        ],
        suggestions=[
            LicensingSuggestionOut.model_validate(s, from_attributes=True)
            for s in result.suggestions
        ],
    )
