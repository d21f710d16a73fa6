"""One step, three phases, so that a crash anywhere is resumed and nothing is done twice.

1. claim: in one transaction the step is checked and written to the case's
   ``pending`` record together with everything it will need (the prior power
   state, the e-mail's Message-ID and encrypted response token ...);
2. act: the step's outside actions run, each one first looking at what is
   already done (a VM already off is not shut down again, a snapshot that
   exists is not taken again, a deleted domain is not deleted again);
3. commit: the new state, the event in the VM's history, the cleared
   ``pending`` record and the step's own inventory changes (a deleted VM leaves
   the inventory) go in one transaction.

A step found pending is resumed from phase 2 by the next ``run`` (or by the
same command repeated).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm.exc import StaleDataError

from corral.engines.reclaim import TARGET, Step, check
from corral.errors import ConflictError
from corral.reclaim.env import ReclaimEnv
from corral.reclaim.steps import STEPS
from corral.reclaim.views import CaseRecord, case_view, rule_view


def execute(
    env: ReclaimEnv, case_id: int, step: Step, actor: str, args: dict[str, Any]
) -> CaseRecord:
    """Returns the case's view once ``step`` is taken (claimed, acted, committed)."""
    pending = claim(env, case_id, step, actor, args)
    env.crash(f"{step}:claimed")
    result = STEPS[step].act(env, case_id, pending)
    env.crash(f"{step}:acted")
    return commit(env, case_id, step, pending, result)


def claim(
    env: ReclaimEnv, case_id: int, step: Step, actor: str, args: dict[str, Any]
) -> dict[str, Any]:
    """Check the step and write it as pending; a step already pending is returned to resume."""
    now = env.now
    with env.db.session() as s:
        c = env.case_row(s, case_id)
        if c.pending:
            if c.pending["step"] != step:
                raise ConflictError(
                    f"case {case_id} is in the middle of {c.pending['step']}; "
                    "run 'corral reclaim run' to finish it first."
                )
            return dict(c.pending)
        check(rule_view(c), step, now, env.policy)
        pending = {"step": str(step), "actor": actor, "at": now.isoformat(), **args}
        pending.update(STEPS[step].prepare(env, s, c))
        c.pending = pending
        try:
            s.flush()
        except StaleDataError:
            raise ConflictError(
                f"case {case_id} was changed by someone else meanwhile; try again."
            ) from None
        return pending


def commit(
    env: ReclaimEnv, case_id: int, step: Step, pending: dict[str, Any], result: dict[str, Any]
) -> CaseRecord:
    """Set the case's new state and fields, record the event, clear ``pending``."""
    with env.db.session() as s:
        c = env.case_row(s, case_id)
        if not c.pending or c.pending.get("step") != step:
            return case_view(c)  # another process finished it
        for key, value in result.items():
            setattr(c, key, value)
        c.state = TARGET[step]
        c.pending = None
        details = {k: v for k, v in pending.items() if k in ("reason", "until", "to")}
        env.event(s, c, STEPS[step].event_kind, pending["actor"], **details)
        STEPS[step].on_commit(env, s, c)
        return case_view(c)
