"""The owner's answer page: the e-mailed link opens a plain HTML page with two forms.

Checked with FastAPI's TestClient (escaping, headers, errors, every state), and
once end to end: the link taken from the e-mail a real SMTP server received,
opened in Debian's headless Chromium driven by Playwright against the app served
by uvicorn, the form filled and sent. That test is skipped without
/usr/bin/chromium or Playwright, except under CI=true where both must be there.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from lxml import html as lhtml

from corral.api.app import create_app
from corral.api.log_redaction import RedactTokenPaths
from corral.api.routes.respond_page import SECURITY_HEADERS
from corral.engines.costing import load_cost_model
from corral.inventory.service import Inventory
from corral.notify.mailer import SmtpMailer, SmtpSettings
from corral.reclaim import messages
from corral.reclaim.service import Recipients, ReclaimService
from corral.store import models as m
from tests.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.conftest import Clock
from tests.reclaim.conftest import POLICY, Inbox, _free_port, make_service
from tests.reports.png import read_png
from tests.requires import Resource, requires

WEB = "web-01"
SCRIPT = "<script>document.title='pwned'</script>"
IMG = '"><img src=x onerror=alert(1)>'
LINK = re.compile(r"https?://[^\s/]+(/reclaim/respond/[A-Za-z0-9_\-]+)")


def _mailed_link(inbox: Inbox, case_id: int) -> str:
    (notice,) = inbox.for_case(case_id, "notify")
    found = LINK.search(notice.get_content())
    assert found, notice.get_content()
    return found.group(0)


def _notified_case(svc: ReclaimService, reason: str = "idle for 30 days", **kw: Any) -> int:
    case = svc.flag(WEB, category="idle", reason=reason, actor="ops", **kw)
    (outcome,) = svc.run()
    assert outcome.result == "done", outcome
    return int(case.id)


class Page:
    """The app under TestClient with one notified case and the path its e-mail links to."""

    def __init__(self, fleet: Inventory, inbox: Inbox, svc: ReclaimService, case_id: int) -> None:
        self.fleet, self.svc, self.case_id = fleet, svc, case_id
        self.client = TestClient(create_app(fleet, reclaim=svc))
        self.path = LINK.search(_mailed_link(inbox, case_id)).group(1)  # type: ignore[union-attr]

    def get(self) -> Any:
        return self.client.get(self.path)

    def post(self, **form: str) -> Any:
        return self.client.post(self.path, data=form, follow_redirects=False)

    def state(self) -> str:
        return str(self.svc.case(self.case_id).state)


@pytest.fixture
def page(fleet: Inventory, smtp: tuple[Inbox, SmtpSettings]) -> Page:
    inbox, settings = smtp
    svc = make_service(fleet, settings)
    evidence = {"cpu_p95_mhz": 41.5, "window_days": 30, "note": IMG}
    case_id = _notified_case(svc, reason=f"idle {SCRIPT}", evidence=evidence)
    return Page(fleet, inbox, svc, case_id)


def _doc(resp: Any) -> Any:
    assert resp.headers["content-type"].startswith("text/html"), resp.headers
    return lhtml.document_fromstring(resp.text)


def _forms(resp: Any) -> set[str]:
    return {f.get("id") for f in _doc(resp).xpath("//form")}


def _error(resp: Any) -> str:
    (box,) = _doc(resp).xpath("//div[@class='error']")
    return str(box.text_content())


# -- the e-mail --------------------------------------------------------------------


def test_the_mail_puts_the_page_link_first(page: Page, smtp: tuple[Inbox, Any]) -> None:
    (notice,) = smtp[0].for_case(page.case_id, "notify")
    text = notice.get_content().replace("\r\n", "\n")
    link = f"http://corral.example.test:8000{page.path}"
    assert "Open this page to keep the VM or let it go:\n  " + link in text
    assert text.index(link) < text.index('"action": "extend"') < text.index("corral reclaim")


def test_without_a_base_url_the_mail_says_whom_to_ask() -> None:
    case = m.ReclaimCase(
        id=7, vm_name="web-01", host_name="a", reason="idle", category="idle", evidence={},
        owner="alice", currency="USD", monthly_cost=12.5, flagged_by="ops",
    )  # fmt: skip
    now = datetime(2026, 6, 1, tzinfo=UTC)
    mail = messages.notice(case, "alice@x.test", "T0KEN", now, None, "<id@corral>", now)
    assert "ask your Corral administrator for the server's address" in mail.text
    assert "<server address>/reclaim/respond/T0KEN" in mail.text
    assert "POST http://CORRAL-SERVER:8000/api/v1/reclaim/respond" in mail.text
    assert "corral reclaim extend 7 --until" in mail.text


# -- the page ------------------------------------------------------------------------


def test_page_shows_the_case_and_escapes_hostile_values(page: Page) -> None:
    with page.fleet.db.session() as s:
        s.get(m.ReclaimCase, page.case_id).vm_name = SCRIPT  # type: ignore[union-attr]
    resp = page.get()
    assert resp.status_code == 200
    doc = _doc(resp)
    assert not doc.xpath("//script | //img | //*[@onerror]")
    assert SCRIPT not in resp.text and IMG not in resp.text
    assert "&lt;script&gt;document.title" in resp.text
    text = doc.text_content()
    assert doc.findtext(".//title") == f"VM {SCRIPT}: keep it or let it go"
    for shown in (f"idle {SCRIPT}", IMG, "cpu_p95_mhz", "41.5", "Waiting for your answer until"):
        assert shown in text
    assert "2026-06-08 09:00" in text  # the deadline: 7 days' notice from the test clock
    assert _forms(resp) == {"keep", "go"}
    (until,) = doc.xpath("//input[@name='until']")
    assert (until.get("min"), until.get("max")) == ("2026-06-02", "2027-06-01")  # 365 days


def test_every_response_carries_the_security_headers(page: Page) -> None:
    responses = [
        page.get(),
        page.client.get("/reclaim/respond/" + "x" * 43),
        page.post(action="extend", until="not a date", reason="batch"),
        page.post(action="extend", until="2026-07-15", reason="quarter-end batch"),
    ]
    assert [r.status_code for r in responses] == [200, 404, 422, 303]
    for resp in responses:
        for name, value in SECURITY_HEADERS.items():
            assert resp.headers[name] == value, (resp.status_code, name)


@pytest.mark.parametrize("token", ["x" * 43, "short", "a" * 129])
def test_a_wrong_link_is_a_plain_404_page(page: Page, token: str) -> None:
    for resp in (
        page.client.get(f"/reclaim/respond/{token}"),
        page.client.post(f"/reclaim/respond/{token}", data={"action": "confirm", "sure": "yes"}),
    ):
        assert resp.status_code == 404
        doc = _doc(resp)
        assert doc.findtext(".//h2") == "This link is not valid"
        assert WEB not in resp.text and "case" not in doc.text_content().lower()
        assert not doc.xpath("//form")
    assert page.state() == "notified"


@pytest.mark.parametrize(
    ("form", "status", "says"),
    [
        ({"until": "31/12/2026", "reason": "batch"}, 422, "must be a date written YYYY-MM-DD"),
        ({"until": "", "reason": "batch"}, 422, "give the new expiry date"),
        ({"until": "2026-07-15", "reason": "   "}, 409, "an extension needs a reason"),
        ({"until": "2027-09-01", "reason": "batch"}, 409, "more than 365 days away"),
        ({"until": "2026-05-01", "reason": "batch"}, 409, "must be after today"),
    ],
)
def test_a_refused_answer_shows_the_page_again_with_the_input(
    page: Page, form: dict[str, str], status: int, says: str
) -> None:
    resp = page.post(action="extend", **form)
    assert resp.status_code == status
    assert says in _error(resp)
    doc = _doc(resp)
    assert doc.xpath("//input[@name='until']")[0].get("value") == form["until"]
    assert doc.xpath("//textarea[@name='reason']")[0].text_content() == form["reason"]
    assert page.state() == "notified"


def test_keeping_the_vm_extends_it_and_the_page_says_so(page: Page) -> None:
    resp = page.post(action="extend", until="2026-07-15", reason="quarter-end <b>batch</b>")
    assert resp.status_code == 303 and resp.headers["location"] == page.path
    shown = page.get()
    status = _doc(shown).xpath("//section[@id='status']")[0].text_content()
    assert "this VM is kept until 2026-07-15" in status
    assert "quarter-end <b>batch</b>" in status and "alice@example.test" in status
    assert _forms(shown) == set()
    case = page.svc.case(page.case_id)
    assert (case.state, case.extended_until) == ("extended", date(2026, 7, 15))
    assert page.fleet.find_vm(WEB).expires_on == date(2026, 7, 15)


def test_it_can_go_needs_the_box_ticked_then_confirms(page: Page) -> None:
    resp = page.post(action="confirm")
    assert resp.status_code == 422 and "tick the box" in _error(resp)
    assert page.state() == "notified"
    assert page.post(action="confirm", sure="yes").status_code == 303
    assert page.state() == "confirmed"
    shown = page.get()
    assert "agreed on 2026-06-01 09:00 UTC that the VM can go" in shown.text
    assert _forms(shown) == {"keep"}  # still possible to change one's mind


def test_an_unknown_action_or_a_foreign_body_is_refused(page: Page) -> None:
    assert page.post(action="delete").status_code == 422
    resp = page.client.post(page.path, json={"action": "confirm"}, follow_redirects=False)
    assert resp.status_code == 422 and "form on this page" in _error(resp)
    big = page.post(action="extend", until="2026-07-15", reason="x" * 20_000)
    assert big.status_code == 422 and "too long" in _error(big)
    assert page.state() == "notified"


@pytest.mark.parametrize("bad", ["\x00", "\x01", "\x0b", "\x1b", "\ufffe", "\x9f"])
def test_a_reason_with_a_control_character_is_refused_and_the_page_lives_on(
    page: Page, bad: str
) -> None:
    """Issue 9 item 5: a reason with %00 once made this page answer 500 for good."""
    resp = page.post(action="extend", until="2026-07-15", reason=f"need it{bad}still")
    assert resp.status_code == 422
    assert "control or invalid character" in _error(resp)
    assert bad not in resp.text and "need it" not in resp.text  # never echoed back
    assert page.state() == "notified"
    again = page.get()
    assert again.status_code == 200 and _forms(again) == {"keep", "go"}
    raw = page.client.post(
        page.path,
        content=b"action=extend&until=2026-07-15&reason=\xed\xa0\x80",  # an encoded surrogate
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert raw.status_code == 422 and page.get().status_code == 200


def test_a_quarantined_vm_can_still_be_kept(page: Page, clock: Clock) -> None:
    clock.advance(days=8)
    (outcome,) = page.svc.run()
    assert outcome.step == "quarantine" and outcome.result == "done", outcome
    shown = page.get()
    assert "Quarantined: powered off on 2026-06-09 09:00 UTC" in shown.text
    assert "archive is due on 2026-06-16 09:00 UTC" in shown.text
    assert _forms(shown) == {"keep"}
    assert page.post(action="extend", until="2026-08-01", reason="needed").status_code == 303
    assert page.state() == "extended"


def test_the_link_tells_what_happened_through_archive_and_deletion(
    page: Page, clock: Clock
) -> None:
    for days, step in ((8, "quarantine"), (7, "archive")):
        clock.advance(days=days)
        (outcome,) = page.svc.run()
        assert (outcome.step, outcome.result) == (step, "done"), outcome
    shown = page.get()
    assert f"a disk snapshot (corral-archive-{page.case_id}) was taken on 2026-06-16" in shown.text
    assert "delete is due on 2026-06-30 09:00 UTC" in shown.text and _forms(shown) == {"keep"}
    page.svc.approve(page.case_id, "delete", "manager")
    clock.advance(days=14)
    (outcome,) = page.svc.run()
    assert (outcome.step, outcome.result) == ("delete", "done"), outcome
    gone = page.get()
    assert gone.status_code == 200 and _forms(gone) == set()
    assert "Deleted on 2026-06-30 09:00 UTC." in gone.text
    assert _doc(gone).findtext(".//title") == "VM web-01: reclamation deleted"


def test_a_closed_case_shows_its_outcome_and_no_form(page: Page) -> None:
    page.svc.cancel(page.case_id, "ops", "flagged by mistake")
    shown = page.get()
    assert shown.status_code == 200 and _forms(shown) == set()
    assert "Cancelled on 2026-06-01 09:00 UTC" in shown.text
    resp = page.post(action="extend", until="2026-07-15", reason="batch")
    assert resp.status_code == 409 and "already cancelled" in _error(resp)
    assert _forms(resp) == set()


def test_the_log_filter_hides_tokens_in_paths() -> None:
    secret = "Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg"
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/reclaim/respond/{secret}?a=1", "1.1", 200), None,
    )  # fmt: skip
    assert RedactTokenPaths().filter(record)
    line = record.getMessage()
    assert secret not in line and '"GET /reclaim/respond/<token>?a=1 HTTP/1.1" 200' in line
    api = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "POST /api/v1/reclaim/respond", (), None
    )
    RedactTokenPaths().filter(api)
    assert api.getMessage() == "POST /api/v1/reclaim/respond"


# -- in a real browser ------------------------------------------------------------------


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def serving(app: Any, port: int) -> Iterator[Lines]:
    """The app under uvicorn, access log on (uvicorn's own log config), in a thread."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info", access_log=True)
    server = uvicorn.Server(config)
    captured = Lines()
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addHandler(captured)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield captured
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        for name in ("uvicorn.access", "uvicorn.error"):
            logging.getLogger(name).removeHandler(captured)


@pytest.fixture
def browser_ready() -> None:
    requires(Resource.chromium)
    requires(Resource.playwright)


def test_owner_keeps_the_vm_from_the_mailed_link_in_chromium(
    browser_ready: None, fleet: Inventory, smtp: tuple[Inbox, SmtpSettings], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    inbox, settings = smtp
    port = _free_port()
    svc = ReclaimService(
        fleet, POLICY, load_cost_model(None), SmtpMailer(settings),
        recipients=Recipients(domain="example.test"), base_url=f"http://127.0.0.1:{port}/",
    )  # fmt: skip
    case_id = _notified_case(svc, evidence={"cpu_p95_mhz": 41.5, "window_days": 30})
    link = _mailed_link(inbox, case_id)
    token = link.rsplit("/", 1)[1]
    with serving(create_app(fleet, reclaim=svc), port) as log, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True,
            args=list(CHROMIUM_FLAGS), viewport={"width": 900, "height": 1300},
        )  # fmt: skip
        try:
            tab = ctx.new_page()
            first = tab.goto(link)
            assert first is not None and first.status == 200
            assert first.headers["referrer-policy"] == "no-referrer"
            assert "It can go" in tab.inner_text("#go-section")
            tab.fill("#until", "2026-07-15")
            tab.fill("#reason", "quarter-end batch jobs run on it")
            tab.screenshot(path=str(tmp_path / "form.png"), full_page=True)
            with tab.expect_navigation():
                tab.click("#keep button")
            status = tab.inner_text("#status")
            tab.screenshot(path=str(tmp_path / "kept.png"), full_page=True)
            forms = tab.locator("form").count()
        finally:
            ctx.close()
    assert "this VM is kept until 2026-07-15" in status, status
    assert "quarter-end batch jobs run on it" in status and forms == 0
    assert fleet.find_vm(WEB).expires_on == date(2026, 7, 15)
    assert svc.case(case_id).state == "extended"
    access = [line for line in log.lines if "/reclaim/respond/" in line]
    assert len(access) >= 3, log.lines  # GET, POST, GET after the redirect
    assert all(token not in line for line in log.lines), log.lines
    assert all("/reclaim/respond/<token>" in line for line in access)
    image = read_png(tmp_path / "kept.png")[:, :, :3]
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # text and panels, not blank
