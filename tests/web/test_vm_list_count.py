"""Issue 16: the VM list counts once, not on every page, and says when a number is an estimate.

On the first page PostgreSQL answers from its table statistics (said so, with a link that
counts exactly); SQLite, which has no estimate, counts. A later page shows the first page's
number, carried in its link: VMs that arrive meanwhile are listed, not counted. The host list
pages by name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from lxml import html as lhtml
from sqlalchemy import delete

from corral.inventory.filters import VMFilter
from corral.store import models as m
from corral.web import routes_fleet
from tests.rows import vm_row
from tests.web.conftest import Demo, sign_in


@pytest.fixture
def signed_in(client: TestClient, db_demo: Demo) -> TestClient:
    sign_in(client, db_demo.token)
    return client


def _count_line(page_html: str) -> str:
    return " ".join(
        lhtml.document_fromstring(page_html).get_element_by_id("vm-count").text_content().split()
    )


def _next(page_html: str) -> str:
    found = re.search(r'href="(/vms\?[^"]*cursor=[^"]+)" rel="next"', page_html)
    assert found, "the list has a next page"
    return found.group(1).replace("&amp;", "&")


def _names(page_html: str) -> list[str]:
    return re.findall(r'href="/vms/[0-9a-f-]{36}">([^<]+)<', page_html)


@pytest.fixture
def added(db_demo: Demo) -> Iterator[list[str]]:
    """VMs written to the inventory by the test (taken out again after it)."""
    names: list[str] = []
    yield names
    with db_demo.inv.db.session() as s:
        s.execute(delete(m.VM).where(m.VM.name.in_(names)))


def _add_vm(demo: Demo, name: str) -> None:
    with demo.inv.db.session() as s:
        s.add(vm_row(name, datetime.now(UTC)))


def test_the_first_page_counts_once_and_says_when_it_estimates(
    signed_in: TestClient, db_demo: Demo
) -> None:
    exact = db_demo.inv.count_vms().count
    first = signed_in.get("/vms", params={"sort": "name"})
    line = _count_line(first.text)
    if db_demo.inv.db.backend == "postgresql":
        guess = db_demo.inv.count_vms(estimate=True)
        assert not guess.exact
        shown = max(guess.count, 51)  # 50 shown and a next page: at least 51
        assert line.startswith(f"About {shown:,} VMs match: an estimate")
        link = lhtml.document_fromstring(first.text).get_element_by_id("count-exactly")
        counted = signed_in.get(link.get("href").replace("&amp;", "&"))
        assert _count_line(counted.text) == f"{exact:,} VMs match."
        assert "count-exactly" not in counted.text
    else:  # SQLite has no estimate: it counts
        assert line == f"{exact:,} VMs match."
        assert "count-exactly" not in first.text and "estimate" not in line


def test_a_list_on_one_page_is_counted_by_its_length(signed_in: TestClient, db_demo: Demo) -> None:
    want = db_demo.inv.count_vms(VMFilter(state="shutoff")).count
    assert 0 < want < routes_fleet.PAGE_SIZE
    listed = signed_in.get("/vms", params={"state": "shutoff"})
    assert _count_line(listed.text) == f"{want} VMs match."
    assert len(_names(listed.text)) == want


def test_a_later_page_shows_the_first_pages_count_and_does_not_count_again(
    signed_in: TestClient, db_demo: Demo, added: list[str]
) -> None:
    first = signed_in.get("/vms", params={"sort": "name", "exact": "1"})
    before = db_demo.inv.count_vms().count
    assert _count_line(first.text) == f"{before:,} VMs match."
    for i in range(3):  # after every VM of the first page by name
        added.append(f"zz-late-{i}")
        _add_vm(db_demo, added[-1])
    second = signed_in.get(_next(first.text))
    assert set(added) <= set(_names(second.text))  # listed: the rows are read anew
    assert (
        _count_line(second.text)
        == f"{before:,} VMs match (counted on the first page); a later page."
    )
    assert db_demo.inv.count_vms().count == before + 3  # a count now would say so


def test_a_later_page_without_its_count_says_so(signed_in: TestClient, db_demo: Demo) -> None:
    later = _next(signed_in.get("/vms", params={"sort": "name"}).text)
    for damaged in (re.sub(r"n=[^&]*", "n=lots", later), re.sub(r"&?n=[^&]*", "", later)):
        page = signed_in.get(damaged)
        assert page.status_code == 200
        assert _count_line(page.text) == "A later page of the VMs that match."


def test_the_host_list_pages_by_name(
    signed_in: TestClient, db_demo: Demo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes_fleet, "HOST_PAGE", 2)
    want = [h.name for h in db_demo.inv.list_hosts()]
    assert len(want) == 3
    shown: list[str] = []
    path: str | None = "/hosts"
    while path:
        page = lhtml.document_fromstring(signed_in.get(path).text)
        shown += [a.text_content() for a in page.xpath("//tbody/tr/td[1]/a")]
        nxt = page.xpath("//a[@rel='next']/@href")
        path = str(nxt[0]) if nxt else None
    assert shown == want
