"""The e-mails of the reclamation workflow: plain text, every value from the case, nothing else."""

from __future__ import annotations

from datetime import datetime

from corral.engines.reclaim import Policy, Step
from corral.notify.mailer import Mail
from corral.store import models as m


def _money(c: m.ReclaimCase, amount: float) -> str:
    return f"{amount:,.2f} {c.currency}"


def _evidence(c: m.ReclaimCase) -> list[str]:
    return [f"  - {k}: {v}" for k, v in sorted((c.evidence or {}).items())]


def notice(
    c: m.ReclaimCase,
    to: str,
    token: str,
    respond_by: datetime,
    base_url: str | None,
    message_id: str,
    now: datetime,
) -> Mail:
    """The first e-mail: the answer page's link first, then what was found and what happens when.

    The link is the one way every owner can use; the API and the CLI stay below it
    for scripts and administrators.
    """
    server = base_url.rstrip("/") if base_url else None
    lines = [
        f"Hello {c.owner or 'VM owner'},",
        "",
        f"The virtual machine {c.vm_name} (host {c.host_name or '?'}) will be reclaimed unless",
        f"you answer by {respond_by:%Y-%m-%d %H:%M} UTC.",
        "",
        *_page_link(server, token),
        "",
        f"Why it was flagged: {c.reason}",
        f"Category: {c.category}. It costs about {_money(c, c.monthly_cost)} a month.",
        *(["Evidence:", *_evidence(c)] if c.evidence else []),
        "",
        f"If nobody answers by {respond_by:%Y-%m-%d %H:%M} UTC, it will be powered off",
        "(quarantined), later archived as a disk snapshot, and finally deleted. Until it is",
        "deleted every step can be undone.",
        "",
        *_other_ways(c, server, token),
        "",
        f"Reclamation case {c.id}, flagged by {c.flagged_by}.",
    ]
    return Mail(
        to=to,
        subject=f"[Corral] VM {c.vm_name} will be reclaimed unless you answer by "
        f"{respond_by:%Y-%m-%d}",
        text="\n".join(lines) + "\n",
        message_id=message_id,
        date=now,
        headers={"X-Corral-Case": str(c.id), "X-Corral-Step": "notify"},
    )


def _page_link(server: str | None, token: str) -> list[str]:
    path = f"/reclaim/respond/{token}"
    if server:
        return ["Open this page to keep the VM or let it go:", f"  {server}{path}"]
    return [
        "To keep the VM or let it go, ask your Corral administrator for the server's address",
        "and open this page on it:",
        f"  <server address>{path}",
    ]


def _other_ways(c: m.ReclaimCase, server: str | None, token: str) -> list[str]:
    answer_api = (server or "http://CORRAL-SERVER:8000") + "/api/v1/reclaim/respond"
    return [
        "Other ways to answer. With the API, to keep it (a reason and a new expiry date):",
        f"  POST {answer_api}",
        f'  {{"token": "{token}", "action": "extend", "until": "YYYY-MM-DD", "reason": "..."}}',
        "or to agree that it can go now:",
        f'  {{"token": "{token}", "action": "confirm"}}',
        "Or ask your Corral administrator to run:",
        f"  corral reclaim extend {c.id} --until YYYY-MM-DD --reason '...'",
    ]


def update(
    c: m.ReclaimCase,
    step: Step,
    to: str,
    message_id: str,
    now: datetime,
    policy: Policy,
    until: str | None = None,
) -> Mail:
    """A short e-mail for each later step, so the owner is never surprised."""
    what = {
        Step.quarantine: (
            "was powered off and quarantined",
            f"It will be archived in {policy.quarantine_days} days and deleted "
            f"{policy.cooling_off_days} days after that. To get it back, answer the first "
            f"e-mail with an extension, or ask your administrator: corral reclaim restore {c.id}",
        ),
        Step.delete: (
            "was deleted",
            f"Its disks are gone; this saves about {_money(c, c.monthly_cost)} a month.",
        ),
        Step.restore: ("was restored", "It is back as it was before the quarantine."),
        Step.extend: (
            "was kept",
            f"Its lease now ends on {until or c.extended_until}.",
        ),
    }.get(step, (f"went through step {step}", ""))
    text = "\n".join(
        [
            f"Hello {c.owner or 'VM owner'},",
            "",
            f"The virtual machine {c.vm_name} {what[0]} (reclamation case {c.id}).",
            what[1],
            "",
        ]
    )
    return Mail(
        to=to,
        subject=f"[Corral] VM {c.vm_name} {what[0]}",
        text=text,
        message_id=message_id,
        date=now,
        headers={"X-Corral-Case": str(c.id), "X-Corral-Step": str(step)},
    )
