"""Build the alert service from Corral's settings (the CLI and the API share this)."""

from __future__ import annotations

from pathlib import Path

from corral.config import Settings
from corral.engines.alerting import RuleSet, load_rules
from corral.notify import channels as ch
from corral.notify.mailer import Mailer, OutboxMailer, SmtpMailer, SmtpSettings
from corral.services.alerts import AlertService
from corral.store.db import Database


def rules_path(settings: Settings) -> Path | None:
    """The rules file: the setting, else ``$CORRAL_HOME/alerts.yaml`` if present, else None
    (the shipped example)."""
    if settings.alert_rules is not None:
        return settings.alert_rules
    default = settings.home / "alerts.yaml"
    return default if default.exists() else None


def mailer(settings: Settings) -> Mailer:
    smtp = SmtpSettings.from_settings(settings)
    return SmtpMailer(smtp) if smtp else OutboxMailer(settings.outbox_dir, settings.mail_from)


def channels(rules: RuleSet, settings: Settings) -> list[ch.Channel]:
    specs = ch.parse_specs(rules.channels)
    needs_mail = any(isinstance(s, ch.EmailSpec) for s in specs)
    sender = mailer(settings) if needs_mail else None
    return [ch.build(spec, sender) for spec in specs]


def alert_service(settings: Settings, db: Database) -> AlertService:
    rules = load_rules(rules_path(settings))
    return AlertService(db, rules, channels(rules, settings))
