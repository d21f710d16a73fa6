"""Notify: e-mail the owner the notice with a response link; the answer-by date starts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from corral.engines.reclaim import Step
from corral.reclaim import messages, notices
from corral.reclaim.env import ReclaimEnv, token_hash
from corral.reclaim.steps.base import Pending, StepAction
from corral.store import models as m


class Notify(StepAction):
    step = Step.notify
    event_kind = "reclaim-notified"

    def prepare(self, env: ReclaimEnv, s: Session, c: m.ReclaimCase) -> Pending:
        return notices.prepare_notice(env, c)

    def act(self, env: ReclaimEnv, case_id: int, p: Pending) -> dict[str, Any]:
        token = notices.decrypt_token(env, p)
        respond_by = datetime.fromisoformat(p["respond_by"])
        with env.db.session() as s:
            c = env.case_row(s, case_id)
            mail = messages.notice(
                c, p["to"], token, respond_by, env.base_url, p["message_id"], env.now
            )
        notices.send_once(env, case_id, p, mail)
        return {
            "notified_at": env.now,
            "notified_to": p["to"],
            "respond_by": respond_by,
            "response_token_hash": token_hash(token),
        }

    def describe(self, env: ReclaimEnv, owner_address: str | None, case_id: int) -> str:
        return (
            f"e-mail {owner_address or '(no address!)'}; the owner has "
            f"{env.policy.notice_days} days to answer"
        )
