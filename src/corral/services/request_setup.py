"""Build the request and quota services from the settings (the CLI, the API and the demo)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from corral.config import Settings
from corral.engines.approval import load_rules
from corral.engines.costing import load_cost_model
from corral.errors import NotFoundError
from corral.inventory.service import Inventory
from corral.reclaim.setup import mailer_from_env
from corral.services.blueprints import BlueprintService
from corral.services.fulfil import RequestProvisioner
from corral.services.live_capacity import shared_fleet
from corral.services.policy import load_policy, request_checker
from corral.services.provision import ProvisionService
from corral.services.quotas import Prices, QuotaService
from corral.services.requests import RequestService
from corral.services.templates import TemplateService


def request_service(inventory: Inventory, settings: Settings) -> RequestService:
    """Requests placed on the live inventory's fleet, with the settings' rules, cost and mail."""

    def extend_lease(uuid: str, until: date, actor: str) -> None:
        inventory.set_metadata(uuid, {"expires_on": until}, actor=actor)

    templates = TemplateService(inventory.db, settings.boot_dir)
    blueprints = BlueprintService(inventory.db, templates)
    return RequestService(
        inventory.db,
        load_rules(settings.request_rules),
        Prices.of(load_cost_model(settings.cost_model)),
        shared_fleet(inventory),
        clock=inventory.clock,
        mailer=mailer_from_env(settings),
        base_url=settings.base_url,
        mail_domain=settings.mail_domain,
        extend_lease=extend_lease,
        blueprints=blueprints.parts,
        policy=request_checker(load_policy(settings.governance_policy), _networks(templates)),
    )


def _networks(templates: TemplateService) -> Callable[[str], str | None]:
    """A template's network (None: unknown template, the request check says so itself)."""

    def network_of(name: str) -> str | None:
        try:
            return templates.get(name).network
        except NotFoundError:
            return None

    return network_of


def quota_service(inventory: Inventory, settings: Settings) -> QuotaService:
    return QuotaService(
        inventory.db, Prices.of(load_cost_model(settings.cost_model)), inventory.clock
    )


def request_provisioner(
    inventory: Inventory, settings: Settings, requests: RequestService | None = None
) -> RequestProvisioner:
    """Approved requests made into VMs on the inventory's hosts, from the template catalog."""
    templates = TemplateService(inventory.db, settings.boot_dir)
    return RequestProvisioner(
        requests or request_service(inventory, settings),
        ProvisionService(inventory, templates),
    )
