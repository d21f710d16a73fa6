"""Build a ReclaimService from the environment (used by the CLI, the API and the demo)."""

from __future__ import annotations

import os
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
    smtp = SmtpSettings.from_env()
    if smtp is not None:
        return SmtpMailer(smtp)
    sender = os.environ.get("CORRAL_MAIL_FROM") or "corral@localhost"
    return OutboxMailer(outbox_dir(settings), sender)


def reclaim_service(inventory: Inventory, settings: Settings) -> ReclaimService:
    """The service as the environment configures it."""
    env_policy = os.environ.get("CORRAL_RECLAIM_POLICY")
    policy = (
        load_policy(Path(env_policy))
        if env_policy
        else load_policy(settings.home / "reclaim.yaml", required=False)
    )
    env_model = os.environ.get("CORRAL_COST_MODEL")
    model = load_cost_model(Path(env_model) if env_model else None)
    mailer = mailer_from_env(settings)
    recipients = Recipients(
        domain=os.environ.get("CORRAL_MAIL_DOMAIN") or None,
        fallback=os.environ.get("CORRAL_MAIL_FALLBACK") or None,
    )
    service = ReclaimService(
        inventory,
        policy,
        model,
        mailer,
        recipients=recipients,
        base_url=os.environ.get("CORRAL_BASE_URL") or None,
    )
    return service
