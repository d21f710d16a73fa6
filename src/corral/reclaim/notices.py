"""The e-mails of the workflow: the owner's notice with its response token, and step updates.

Each is sent at most once per step: the pending record notes that a mail went
out, so a resumed step does not mail again (a crash between the mail server's
acceptance and that note sends it again with the same Message-ID).
"""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta
from typing import Any

from corral.engines.reclaim import Step
from corral.errors import ConfigError, ConflictError
from corral.notify.mailer import Mail
from corral.reclaim import messages
from corral.reclaim.env import ReclaimEnv
from corral.store import models as m


def prepare_notice(env: ReclaimEnv, c: m.ReclaimCase) -> dict[str, Any]:
    """The notice's address, encrypted token, answer-by date and Message-ID, fixed at claim."""
    to = env.recipients.address_for(c.owner)
    if to is None:
        raise ConflictError(
            f"VM {c.vm_name} has no owner e-mail address and no fallback is set "
            "(CORRAL_MAIL_DOMAIN or CORRAL_MAIL_FALLBACK); its owner cannot be notified."
        )
    if env.mailer is None:
        raise ConfigError("no mail server is configured (CORRAL_SMTP_URL); nobody can be notified.")
    token = secrets.token_urlsafe(32)
    return {
        "to": to,
        "token_enc": base64.b64encode(env.inv.secrets.encrypt(token)).decode("ascii"),
        "respond_by": (env.now + timedelta(days=env.policy.notice_days)).isoformat(),
        "message_id": f"<reclaim-{c.id}-notice-{secrets.token_hex(8)}@corral>",
    }


def decrypt_token(env: ReclaimEnv, p: dict[str, Any]) -> str:
    return env.inv.secrets.decrypt(base64.b64decode(p["token_enc"]))


def mail_fields(env: ReclaimEnv, c: m.ReclaimCase, what: str) -> dict[str, Any]:
    """Address and Message-ID of an update mail; nothing when it cannot be sent."""
    to = c.notified_to or env.recipients.address_for(c.owner)
    if to is None or env.mailer is None:
        return {}
    return {"to": to, "message_id": f"<reclaim-{c.id}-{what}-{secrets.token_hex(8)}@corral>"}


def inform(env: ReclaimEnv, case_id: int, step: Step, p: dict[str, Any]) -> None:
    """Tell the owner a step was taken (when the claim planned a mail)."""
    if "message_id" not in p or env.mailer is None:
        return
    with env.db.session() as s:
        c = env.case_row(s, case_id)
        mail = messages.update(
            c, step, p["to"], p["message_id"], env.now, env.policy, p.get("until")
        )
    send_once(env, case_id, p, mail)


def send_once(env: ReclaimEnv, case_id: int, p: dict[str, Any], mail: Mail) -> None:
    """Send, then note it in the pending record: a resumed step does not mail again."""
    if p.get("mailed") or env.mailer is None:
        return
    env.mailer.send(mail)
    env.crash("mail:sent")
    with env.db.session() as s:
        c = env.case_row(s, case_id)
        if c.pending:
            c.pending = {**c.pending, "mailed": True}
    p["mailed"] = True
