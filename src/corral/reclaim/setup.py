"""Build a ReclaimService from the settings (used by the CLI, the API and the demo)."""

from __future__ import annotations

from pathlib import Path

from corral.config import Settings
from corral.engines.costing import load_cost_model
from corral.engines.reclaim import load_policy
from corral.inventory.service import Inventory
from corral.notify.mailer import Mailer, OutboxMailer, SmtpMailer, SmtpSettings
from corral.reclaim.service import Recipients, ReclaimService


def outbox_dir(settings: Settings) -> Path:
    return settings.home / "outbox"


def mailer_from_env(settings: Settings) -> Mailer:
    """SMTP when CORRAL_SMTP_URL is set; otherwise .eml files in $CORRAL_HOME/outbox (said)."""
    smtp = SmtpSettings.from_settings(settings)
    if smtp is not None:
        return SmtpMailer(smtp)
    return OutboxMailer(outbox_dir(settings), settings.mail_from)


def reclaim_service(inventory: Inventory, settings: Settings) -> ReclaimService:
    """The service as the environment configures it."""
    policy = load_policy(settings.reclaim_policy_path, required=settings.reclaim_policy is not None)
    model = load_cost_model(settings.cost_model)
    mailer = mailer_from_env(settings)
    recipients = Recipients(
        domain=settings.mail_domain,
        fallback=settings.mail_fallback,
    )
    service = ReclaimService(
        inventory,
        policy,
        model,
        mailer,
        recipients=recipients,
        base_url=settings.base_url,
    )
    return service
