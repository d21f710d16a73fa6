"""A licence product deployed beyond what is owned (``over``), or near that limit too
(``warn``: at or above the cost model's ``licence_warn_fraction`` of the entitlements).

The verdict is the cost engine's (corral.engines.costing.licences), so an alert and
``corral cost licences`` never disagree; products with no entitlement count are never news.
"""

from __future__ import annotations

from typing import Literal

from corral.engines.alerting.kinds.base import Needs, Params, Rule
from corral.engines.alerting.model import Condition, Snapshot

_RAISES = {"over": {"over"}, "warn": {"warn", "over"}}


class LicenceParams(Params):
    when: Literal["over", "warn"] = "over"
    #: only these products (default: every product with an entitlement count)
    products: tuple[str, ...] = ()


class Licence(Rule):
    kind = "licence"
    params_model = LicenceParams
    params: LicenceParams

    def needs(self) -> Needs:
        return Needs(facts=frozenset({"licences"}))

    def evaluate(self, snapshot: Snapshot) -> list[Condition]:
        p = self.params
        found = []
        for use in snapshot.licences:
            if use.status not in _RAISES[p.when] or use.entitlements is None:
                continue
            if p.products and use.product not in p.products:
                continue
            where = "more than" if use.status == "over" else "close to"
            summary = (
                f"licence {use.product}: {use.deployed} deployed, {where} the "
                f"{use.entitlements} owned"
            )
            found.append(
                self.condition(
                    snapshot, "licence", use.product, "deployed", float(use.deployed), summary
                )
            )
        return found
