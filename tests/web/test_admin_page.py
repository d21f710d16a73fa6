"""The administrator's landing page, over HTTP: how many host failures the fleet tolerates
and, for each host, which VMs would restart where and which would not come back (the HA
manager's stored plan when there is one, else the inventory's); the capacity runway in days
at the growth the hosts' stored use shows, and "unknown" before any is stored.

Real app on the demo fleet (libvirt test-driver hosts) and its real DuckDB metrics store,
on SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from lxml import html

from corral.domain.metrics import EntityKind, Sample, SampleBatch
from corral.engines.ha_manager import plans_by_host
from corral.engines.planning.forecast.history import Series, growth_per_month
from corral.services import ha
from corral.services.capacity_runway import MONTH_DAYS
from corral.services.fleet import live_document, live_fleet, parse_fleet_document
from corral.store.models import HAManagerStateRow
from corral.web.routes_fleet import HOST_PAGE
from tests.web.conftest import Demo, sign_in

DAY = 86400


def whatif_rows(page: str) -> dict[str, list[str]]:
    doc = html.fromstring(page)
    return {
        r.xpath("string(th)"): [td.text_content().strip() for td in r.xpath("td")]
        for r in doc.xpath("//table[@id='ha-whatif']/tbody/tr")
    }


def runway_rows(page: str, table: str = "runway") -> dict[str, list[str]]:
    doc = html.fromstring(page)
    return {
        r.xpath("string(th)"): [td.text_content().strip() for td in r.xpath("td")]
        for r in doc.xpath(f"//table[@id='{table}']/tbody/tr")
    }


@contextmanager
def manager_state(db_demo: Demo, protected: dict[str, Any]) -> Iterator[None]:
    """The HA manager's stored state holding ``protected`` (fleet and plan), for the block."""
    with db_demo.inv.db.session() as s:
        s.add(
            HAManagerStateRow(
                name="default",
                state={"manager": {"hosts": {}, "vms": {}}, "protected": protected},
                round_t=0.0,
                updated_at=datetime.now(UTC),
            )
        )
    try:
        yield
    finally:
        with db_demo.inv.db.session() as s:
            s.delete(s.get(HAManagerStateRow, "default"))


def test_the_ha_outlook_is_the_inventorys_plan_before_any_manager_ran(
    client: TestClient, db_demo: Demo
) -> None:
    sign_in(client, db_demo.token)
    page = client.get("/admin")
    assert page.status_code == 200
    fleet = live_fleet(db_demo.inv).fleet
    plans = plans_by_host(fleet)
    rows = whatif_rows(page.text)
    assert sorted(rows) == sorted(h.name for h in fleet.hosts)
    for host, (restarts, lost, unprotected) in rows.items():
        expected = ", ".join(f"{vm} → {t}" for vm, t in sorted(plans[host].items()))
        assert restarts == (expected or "none")
        running = [v for v in fleet.vms if v.running and v.host == host]
        bare = [v for v in running if v.protection.value == "none"]
        assert unprotected == str(len(bare))
        assert lost == "none" or set(lost.split(", ")) == {
            v.name for v in running if v not in bare and v.name not in plans[host]
        }
    # not capped at the N+K setting's K: the exact policy asked for every K up to n - 1
    tolerated = ha.check(fleet, "exact", len(fleet.hosts) - 1).report.tolerated_host_failures
    asked = fleet.settings.ha_host_failures
    doc = html.fromstring(page.text)
    status = doc.xpath("string(//*[@id='ha-tolerated'])")
    failures = "failure" if tolerated == 1 else "failures"
    assert status.startswith(f"The fleet tolerates {tolerated} host {failures} now"), status
    assert doc.xpath("string(//*[@id='ha-asked'])") == str(asked)


def test_the_stored_plan_names_the_vm_that_would_not_come_back(
    client: TestClient, db_demo: Demo
) -> None:
    fleet = live_fleet(db_demo.inv).fleet
    plans = plans_by_host(fleet)
    host = next(h for h, p in sorted(plans.items()) if p)
    dropped = sorted(plans[host])[0]
    stored = {h: {v: t for v, t in p.items() if v != dropped} for h, p in plans.items()}
    protected = {"fleet": live_document(db_demo.inv), "plan": stored, "definitions": {}}
    with manager_state(db_demo, protected):
        sign_in(client, db_demo.token)
        page = client.get("/admin").text
        assert "the HA manager's plan, as it last stored it" in html.fromstring(page).text_content()
        restarts, lost, _ = whatif_rows(page)[host]
        assert lost == dropped and f"{dropped} →" not in restarts
        status = html.fromstring(page).xpath("string(//*[@id='ha-tolerated'])")
        assert "1 host's failure would leave protected VMs down" in status


def host_use(db_demo: Demo, now: int) -> dict[tuple[str, str], Series]:
    """28 days of hourly host use growing 1 % of its level a day, written to the store;
    returns the same history as the planning engine reads it (MHz and MiB)."""
    fleet = live_fleet(db_demo.inv).fleet
    ts = np.arange(now - 28 * DAY, now, 3600, dtype=np.int64)
    grow = 1 + 0.01 * (ts - ts[0]) / DAY
    samples, history = [], {}
    for h in fleet.hosts:
        cpu, mem = 20.0 * grow, 8 * 2**30 * grow
        for metric, values in (("host_cpu_pct", cpu), ("host_mem_used_bytes", mem)):
            samples += [
                Sample(EntityKind.host, h.name, h.name, metric, int(t), float(v))
                for t, v in zip(ts, values, strict=True)
            ]
        history[(h.name, "cpu_mhz")] = Series(ts.astype(float), cpu * h.cpu_capacity_mhz / 100)
        history[(h.name, "memory_mib")] = Series(ts.astype(float), mem / 2**20)
    db_demo.app.state.metrics.write(SampleBatch.from_samples(samples))
    return history


def test_the_runway_is_in_days_at_the_growth_the_hosts_show(
    client: TestClient, db_demo: Demo
) -> None:
    sign_in(client, db_demo.token)
    before = client.get("/admin").text
    rows = runway_rows(before)
    assert set(rows) == {"CPU (vCPUs allocated)", "Memory (allocated)", "Storage (pools allocated)"}
    # a resource already used up has 0 days left with or without growth (the test
    # driver's pools report more allocated than their capacity)
    assert all(
        days == ("0.0" if float(used.replace(",", "")) >= 100 else "unknown")
        for used, days in rows.values()
    ), rows
    assert "No growth measured yet" in before
    now = int(time.time())
    growth = growth_per_month(host_use(db_demo, now))
    assert growth > 0
    page = client.get("/admin").text
    hint = html.fromstring(page).xpath("string(//*[@id='runway-growth'])")
    assert f"{100 * growth:.1f} % a month" in hint
    for resource, (used, days) in runway_rows(page).items():
        pct = float(used.replace(",", ""))
        expected = MONTH_DAYS * (100 / pct - 1) / growth if pct < 100 else 0.0
        assert pct > 0, resource
        # the page shows the used share to 0.1 %: the days agree to 1 %
        assert float(days.replace(",", "")) == pytest.approx(expected, rel=0.01), resource
    # the what-if page gives the same runway now, and a shorter one without a host
    host = live_fleet(db_demo.inv).fleet.hosts[0].name
    plan = client.get("/plan", params={"remove": host}).text
    assert runway_rows(plan, "runway-before") == runway_rows(page)
    after = runway_rows(plan, "runway-after")["CPU (vCPUs allocated)"]
    now_cpu = runway_rows(page)["CPU (vCPUs allocated)"]
    assert float(after[0]) > float(now_cpu[0])
    assert float(after[1].replace(",", "")) < float(now_cpu[1].replace(",", ""))


def test_the_tolerated_failures_are_not_capped_at_the_n_plus_k_setting(
    client: TestClient, db_demo: Demo
) -> None:
    """A stored fleet of the demo's hosts with only its two smallest running VMs and an N+1
    setting: any two of its three hosts may fail (the third holds both), twice what the
    setting asks."""
    document = live_document(db_demo.inv)
    running = sorted(
        (v for v in document["vms"] if v["state"] == "running"), key=lambda v: v["memory_mib"]
    )
    document["vms"] = running[:2]
    document["settings"] = {**(document.get("settings") or {}), "ha_host_failures": 1}
    fleet = parse_fleet_document(document).fleet
    assert len(fleet.hosts) == 3 and fleet.settings.ha_host_failures == 1
    protected = {"fleet": document, "plan": plans_by_host(fleet), "definitions": {}}
    with manager_state(db_demo, protected):
        sign_in(client, db_demo.token)
        doc = html.fromstring(client.get("/admin").text)
        (status,) = doc.xpath("//*[@id='ha-tolerated']")
        assert status.text_content().startswith("The fleet tolerates 2 host failures now")
        assert doc.xpath("string(//*[@id='ha-tolerated-now'])") == "2"
        assert doc.xpath("string(//*[@id='ha-asked'])") == "1"
        assert "ok" in status.get("class").split()
        # the exact policy, asked for the setting's K only, stops at it
        assert ha.check(fleet, "exact", 1).report.tolerated_host_failures == 1


def test_the_hosts_table_is_a_page_of_hosts_with_a_link_to_the_next(
    client: TestClient, db_demo: Demo
) -> None:
    """A fleet of more hosts than a page shows the first page by name and links to the rest
    (the whole fleet's hosts were listed, each with its VMs counted, on every view)."""
    inv = db_demo.inv
    assert inv.access.node_dir is not None
    nodes = inv.access.node_dir
    added = [f"zz-spare-{i:03d}" for i in range(HOST_PAGE)]
    for name in added:
        inv.add_host(name, f"test://{nodes / name}.xml")  # never synced: no file needed
    try:
        sign_in(client, db_demo.token)
        doc = html.fromstring(client.get("/admin").text)
        shown = doc.xpath("//section[@aria-labelledby='host-health']//tbody/tr/td[1]/text()")
        first = inv.hosts_page(after=None, limit=HOST_PAGE)
        assert shown == [h.name for h in first.items] and len(shown) == HOST_PAGE
        assert doc.xpath("string(//*[@id='more-hosts'])").startswith(
            f"The first {HOST_PAGE} of {len(inv.host_names())} hosts by name"
        )
        (more,) = doc.xpath("//*[@id='more-hosts']/a[@rel='next']/@href")
        rows = html.fromstring(client.get(more).text).xpath("//tbody/tr")
        rest = [r.xpath("string(td[1])").strip() for r in rows]
        assert rest[0] == inv.hosts_page(after=(shown[-1],), limit=1).items[0].name
    finally:
        for name in added:
            inv.remove_host(name)
    page = html.fromstring(client.get("/admin").text)
    assert not page.xpath("//*[@id='more-hosts']")  # the demo's hosts fit on one page
