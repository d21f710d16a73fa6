"""The dashboard over HTTP without a browser: sign-in, sessions, CSRF, headers, escaping, roles.

Runs the real app (FastAPI's TestClient) on the demo fleet; the browser flows are in
test_browser.py.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi.testclient import TestClient
from lxml import html as lhtml
from sqlalchemy import event, select

from corral.domain.access import Permission, Principal, Role, Target
from corral.inventory.filters import VMFilter
from corral.security.token_store import TokenStore
from corral.services.records import live_records
from corral.services.users import UserService
from corral.services.web_sessions import COOKIE, RECHECK_S, Credential, Viewer, may
from corral.store.models import AuditEntry
from corral.web.pages import CSP
from tests.web.conftest import Demo, csrf_of, sign_in

PAGES = (
    *("/admin", "/manager", "/hosts", "/vms", "/sprawl", "/reclaim", "/events"),
    *("/ha", "/backups", "/alerts"),
    *("/plan", "/quotas", "/blueprints", "/units"),
)
HOSTILE = "<script>document.title='pwned'</script>"


@pytest.fixture
def signed_in(client: TestClient, db_demo: Demo) -> TestClient:
    sign_in(client, db_demo.token)
    return client


def test_a_page_without_a_session_goes_to_sign_in(client: TestClient) -> None:
    for path in PAGES:
        r = client.get(path + "?x=1", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == f"/login?next={path.replace('/', '%2F')}%3Fx%3D1"


def test_sign_in_with_a_wrong_token_is_refused(client: TestClient, db_demo: Demo) -> None:
    csrf = csrf_of(client, "/login")
    r = client.post("/login", data={"csrf": csrf, "token": "crl_nope_nope", "next": "/"})
    assert r.status_code == 401
    assert "not valid" in r.text
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_sign_in_without_the_form_token_is_refused(client: TestClient, db_demo: Demo) -> None:
    client.get("/login")
    r = client.post("/login", data={"token": db_demo.token}, follow_redirects=False)
    assert r.status_code == 403
    assert client.get("/admin", follow_redirects=False).status_code == 303


def test_signing_in_gives_a_new_session_id_with_safe_cookie_flags(
    client: TestClient, db_demo: Demo
) -> None:
    first = client.get("/login")
    before = client.cookies[COOKIE]
    set_cookie = first.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie and "path=/" in set_cookie
    assert "secure" not in set_cookie  # plain http: a Secure cookie would never come back
    sign_in(client, db_demo.token)
    assert client.cookies[COOKIE] != before  # no session fixation
    assert client.get("/admin").status_code == 200


def test_the_cookie_is_secure_over_https(db_demo: Demo) -> None:
    with TestClient(db_demo.app, base_url="https://testserver") as c:
        r = c.get("/login")
        assert "secure" in r.headers["set-cookie"].lower()


def test_every_page_is_strict_and_shows_no_secret(signed_in: TestClient, db_demo: Demo) -> None:
    for path in PAGES:
        r = signed_in.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["cache-control"] == "no-store"
        assert db_demo.token not in r.text
        doc = lhtml.document_fromstring(r.text)
        assert all(s.get("src", "").startswith("/static/") for s in doc.iter("script"))
        assert not [a for el in doc.iter() for a in el.attrib if a.startswith("on")]
        assert not doc.xpath("//*[@style]")
        assert not [u for u in doc.xpath("//@src | //link/@href") if "//" in u]


def test_next_never_leaves_the_site(client: TestClient, db_demo: Demo) -> None:
    csrf = csrf_of(client, "/login")
    r = client.post(
        "/login",
        data={"csrf": csrf, "token": db_demo.token, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/admin"


def test_flag_without_the_form_token_opens_no_case(signed_in: TestClient, db_demo: Demo) -> None:
    vm = db_demo.inv.list_vms(VMFilter(state="shutoff"), limit=1).items[0]
    before = len(db_demo.app.state.reclaim.cases())
    r = signed_in.post(
        "/sprawl/flag", data={"subject": vm.uuid, "category": "powered_off", "csrf": "forged"}
    )
    assert r.status_code == 403
    assert len(db_demo.app.state.reclaim.cases()) == before


def test_a_value_from_the_fleet_is_shown_as_text(signed_in: TestClient, db_demo: Demo) -> None:
    vm = db_demo.inv.list_vms(limit=1).items[0]
    db_demo.inv.set_metadata(vm.uuid, {"purpose": HOSTILE}, actor="tests")
    r = signed_in.get(f"/vms/{vm.uuid}")
    assert HOSTILE not in r.text
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in r.text
    listed = signed_in.get("/vms", params={"q": "pwned"})
    assert vm.name in listed.text and HOSTILE not in listed.text


def test_filters_live_in_the_url_and_pages_follow_the_cursor(
    signed_in: TestClient, db_demo: Demo
) -> None:
    first = signed_in.get("/vms", params={"sort": "memory_mib", "order": "desc"})
    names = re.findall(r'href="/vms/[0-9a-f-]{36}">([^<]+)<', first.text)
    assert len(names) == 50
    nxt = re.search(r'href="(/vms\?[^"]*cursor=[^"]+)" rel="next"', first.text)
    assert nxt, "60 VMs, 50 a page: there is a next page"
    second = signed_in.get(nxt.group(1).replace("&amp;", "&"))
    more = re.findall(r'href="/vms/[0-9a-f-]{36}">([^<]+)<', second.text)
    total = db_demo.inv.list_vms().total
    assert len(more) == total - 50 and not set(more) & set(names)
    want = [v.name for v in db_demo.inv.list_vms(sort="memory_mib", descending=True).items]
    assert names + more == want


def test_a_bad_filter_is_one_sentence_not_a_traceback(signed_in: TestClient) -> None:
    r = signed_in.get("/vms", params={"sort": "password"})
    assert r.status_code == 422
    assert "cannot sort by" in r.text and "Traceback" not in r.text
    assert signed_in.get("/vms/no-such-vm").status_code == 404


def test_an_auditor_reads_everything_and_may_not_flag(client: TestClient, db_demo: Demo) -> None:
    UserService(db_demo.inv.db).add("web-auditor", roles=["auditor"])
    sign_in(client, TokenStore(db_demo.inv.db).create("web-auditor-token", user="web-auditor"))
    for path in PAGES:
        assert client.get(path).status_code == 200, path
    sprawl = client.get("/sprawl")
    assert "Flag for reclamation" not in sprawl.text
    vm = db_demo.inv.list_vms(VMFilter(state="shutoff"), limit=1).items[0]
    r = client.post(
        "/sprawl/flag",
        data={"subject": vm.uuid, "category": "powered_off", "csrf": csrf_of(client)},
    )
    assert r.status_code == 403


def test_may_is_the_rest_apis_decision() -> None:
    def viewer(*roles: str, departments: tuple[str, ...] = ()) -> Viewer:
        principal = Principal("u", frozenset(Role(r) for r in roles), frozenset(departments))
        return Viewer(principal, Credential.token, "t")

    admin, requester = viewer("admin"), viewer("requester", departments=("Finance",))
    assert all(may(admin, p) for p in Permission)
    assert may(requester, Permission.vm_read, Target("Finance"))
    assert not may(requester, Permission.vm_read, Target("Research"))
    assert not may(requester, Permission.vm_read, Target(None))
    assert not may(requester, Permission.reclaim_flag) and not may(None, Permission.vm_read)


def test_docs_need_no_internet(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    doc = lhtml.document_fromstring(r.text)
    urls = doc.xpath("//script/@src | //link/@href")
    assert urls and all(u.startswith("/static/") for u in urls), urls
    for url in urls:
        assert client.get(url).status_code == 200, url
    assert "SwaggerUIBundle" in client.get("/static/swagger/swagger-ui-bundle.js").text


def test_the_fleet_behind_sprawl_and_cost_is_read_in_a_few_queries(db_demo: Demo) -> None:
    """Regression: each VM's disks and snapshots were two more queries (deferred columns)."""
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(db_demo.inv.db.engine, "before_cursor_execute", count)
    try:
        fleet = live_records(db_demo.inv)
    finally:
        event.remove(db_demo.inv.db.engine, "before_cursor_execute", count)
    assert len(fleet.vms) > 40
    assert len(statements) <= 5, len(statements)
    assert any(v.disks for v in fleet.vms) and any(v.snapshots for v in fleet.vms)


def test_only_waste_findings_can_be_flagged(signed_in: TestClient, db_demo: Demo) -> None:
    """Governance findings (no owner, no purpose) are not reclaimed: no button, and refused."""
    page = signed_in.get("/sprawl", params={"category": "no_owner"})
    assert page.status_code == 200 and "no_owner" in page.text
    assert "Flag for reclamation" not in page.text
    vm = db_demo.inv.list_vms(VMFilter(no_owner=True), limit=1).items[0]
    before = len(db_demo.app.state.reclaim.cases())
    r = signed_in.post(
        "/sprawl/flag",
        data={"subject": vm.uuid, "category": "no_owner", "csrf": csrf_of(signed_in)},
    )
    assert r.status_code == 404
    assert len(db_demo.app.state.reclaim.cases()) == before


def test_flagging_twice_is_refused_with_a_sentence(signed_in: TestClient, db_demo: Demo) -> None:
    page = signed_in.get("/sprawl", params={"category": "powered_off"})
    subject = re.search(r'name="subject" value="([^"]+)"', page.text)
    assert subject
    form = {"subject": subject.group(1), "category": "powered_off", "csrf": csrf_of(signed_in)}
    first = signed_in.post("/sprawl/flag", data=form, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"].startswith("/reclaim/")
    again = signed_in.post("/sprawl/flag", data=form)
    assert again.status_code == 409 and "was not flagged" in again.text


def test_a_flagged_case_reads_on_its_page_and_in_the_list(
    signed_in: TestClient, db_demo: Demo
) -> None:
    page = signed_in.get("/sprawl", params={"category": "powered_off"})
    subject = re.search(r'name="subject" value="([^"]+)"', page.text)
    assert subject
    form = {"subject": subject.group(1), "category": "powered_off", "csrf": csrf_of(signed_in)}
    flagged = signed_in.post("/sprawl/flag", data=form, follow_redirects=False)
    case_url = flagged.headers["location"]
    case = db_demo.app.state.reclaim.case(int(case_url.rsplit("/", 1)[1]))
    shown_at = f"{case.flagged_at:%Y-%m-%d %H:%M}"
    detail = signed_in.get(case_url)
    assert detail.status_code == 200 and shown_at in detail.text and case.vm in detail.text
    listed = signed_in.get("/reclaim")
    assert listed.status_code == 200 and shown_at in listed.text


def test_a_revoked_token_ends_its_sessions(client: TestClient, db_demo: Demo) -> None:
    token = TokenStore(db_demo.inv.db).create("short-lived")
    sign_in(client, token)
    assert client.get("/hosts").status_code == 200
    TokenStore(db_demo.inv.db).revoke("short-lived")
    session = db_demo.app.state.web_sessions.get(client.cookies[COOKIE])
    session.checked -= RECHECK_S + 1  # the next check is due
    db_demo.app.state.web_sessions.save(client.cookies[COOKIE], session)
    r = client.get("/hosts", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert db_demo.app.state.web_sessions.get(client.cookies[COOKIE]) is None


def test_the_fleet_page_counts_link_to_the_vms_they_count(
    signed_in: TestClient, db_demo: Demo
) -> None:
    page = lhtml.document_fromstring(signed_in.get("/admin").text)
    tiles = {
        a.get("href"): int(a.findtext(".//span[@class='n']"))
        for a in page.xpath("//li[@class='tile']/a")
    }
    no_owner = db_demo.inv.list_vms(VMFilter(no_owner=True)).total
    assert tiles["/vms?no_owner=1"] == no_owner > 0
    # every tile (one count query for all of them) is its list's count
    for href, n in tiles.items():
        if href.startswith("/vms"):
            query = dict(parse_qsl(href.partition("?")[2]))
            f = VMFilter(
                state=query.get("state"),
                no_owner="no_owner" in query,
                expired="expired" in query,
            )
            assert n == db_demo.inv.list_vms(f, limit=0).total, href
    assert tiles["/vms"] == len(db_demo.inv.list_vms().items) > tiles["/vms?state=running"] > 0
    listed = signed_in.get("/vms?no_owner=1")
    assert f"{no_owner} VMs match" in listed.text
    assert 'name="no_owner" value="1" checked' in listed.text


def _password_sign_in(client: TestClient, user: str, password: str) -> httpx.Response:
    csrf = csrf_of(client, "/login")
    return client.post(
        "/login",
        data={"csrf": csrf, "user": user, "password": password, "next": "/"},
        follow_redirects=False,
    )


def _department_with_vms(db_demo: Demo) -> tuple[str, set[str]]:
    departments = sorted({v.department for v in db_demo.inv.list_vms().items if v.department})
    assert len(departments) >= 2, "the demo has VMs of several departments"
    mine = departments[0]
    return mine, {v.name for v in db_demo.inv.list_vms(VMFilter(department=mine)).items}


def test_a_requester_signs_in_with_a_password_and_sees_only_their_department(
    client: TestClient, db_demo: Demo
) -> None:
    """A requester's token used to sign in as an administrator and see every department."""
    mine, names = _department_with_vms(db_demo)
    UserService(db_demo.inv.db).add(
        "web-req", roles=["requester"], departments=[mine], password="correct horse 42"
    )
    r = _password_sign_in(client, "web-req", "correct horse 42")
    assert r.status_code == 303 and r.headers["location"] == "/requests"  # their own page
    listed = client.get("/vms", params={"sort": "name"})
    shown = set(re.findall(r'href="/vms/[0-9a-f-]{36}">([^<]+)<', listed.text))
    assert shown and shown <= names
    other = db_demo.inv.list_vms(VMFilter(search=None), limit=500).items
    theirs = next(v for v in other if v.department not in (mine, None))
    assert client.get(f"/vms/{theirs.uuid}").status_code == 404
    ours = next(v for v in other if v.department == mine)
    assert client.get(f"/vms/{ours.uuid}").status_code == 200
    for path in ("/admin", "/manager", "/sprawl", "/events"):
        assert client.get(path).status_code == 403, path
    assert "web-req (requester)" in listed.text


def test_a_wrong_password_is_refused_with_the_same_words_as_an_unknown_user(
    client: TestClient, db_demo: Demo
) -> None:
    UserService(db_demo.inv.db).add("web-pw", roles=["operator"], password="right one 42")
    wrong = _password_sign_in(client, "web-pw", "wrong one")
    unknown = _password_sign_in(client, "nobody-here", "wrong one")
    assert wrong.status_code == unknown.status_code == 401
    assert "the user name or password is wrong" in wrong.text
    assert client.get("/vms", follow_redirects=False).status_code == 303  # still signed out


def test_a_role_taken_away_or_a_disabled_user_applies_at_the_next_check(
    client: TestClient, db_demo: Demo
) -> None:
    """The session used to keep its role until it idled out (only a revoked token ended it)."""
    mine, _ = _department_with_vms(db_demo)
    users = UserService(db_demo.inv.db)
    users.add("web-op", roles=["operator"], departments=[mine], password="operator pw 42")
    assert _password_sign_in(client, "web-op", "operator pw 42").status_code == 303
    assert client.get("/admin").status_code == 200
    users.revoke("web-op", roles=["operator"])
    users.grant("web-op", roles=["requester"])
    store = db_demo.app.state.web_sessions
    session = store.get(client.cookies[COOKIE])
    session.checked -= RECHECK_S + 1  # the next check is due
    store.save(client.cookies[COOKIE], session)
    assert client.get("/admin").status_code == 403
    assert client.get("/vms").status_code == 200
    users.disable("web-op")
    session = store.get(client.cookies[COOKIE])
    session.checked -= RECHECK_S + 1
    store.save(client.cookies[COOKIE], session)
    r = client.get("/vms", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_an_operator_token_signs_in(client: TestClient, db_demo: Demo) -> None:
    UserService(db_demo.inv.db).add("web-operator", roles=["operator"])
    sign_in(client, TokenStore(db_demo.inv.db).create("web-operator-token", user="web-operator"))
    assert client.get("/vms").status_code == 200


def test_a_case_flagged_from_the_page_is_audited_as_the_signed_in_user(
    signed_in: TestClient, db_demo: Demo
) -> None:
    """Regression: the dashboard's writes were recorded with no actor (as the system's)."""
    page = signed_in.get("/sprawl", params={"category": "powered_off"})
    subject = re.search(r'name="subject" value="([^"]+)"', page.text)
    assert subject
    form = {"subject": subject.group(1), "category": "powered_off", "csrf": csrf_of(signed_in)}
    flagged = signed_in.post("/sprawl/flag", data=form, follow_redirects=False)
    case_id = flagged.headers["location"].rsplit("/", 1)[1]
    with db_demo.inv.db.session() as s:
        entries = s.execute(
            select(AuditEntry.actor, AuditEntry.origin).where(
                AuditEntry.target == f"reclaim-case:{case_id}"
            )
        ).all()
    assert entries
    assert all(a == "local-admin" and o.startswith("web ") for a, o in entries), entries


def test_the_vm_page_diagnoses_on_request_with_the_services_verdict(
    signed_in: TestClient, db_demo: Demo
) -> None:
    """The VM page reads a dozen series only when asked; then it shows what the diagnosis
    service says at the chart's end, word for word (the CLI and REST say the same)."""
    from corral.services import diagnosis

    vm = db_demo.inv.list_vms(VMFilter(state="running"), limit=1).items[0]
    page = signed_in.get(f"/vms/{vm.uuid}")
    assert page.status_code == 200 and 'id="diagnosis-result"' not in page.text
    link = lhtml.fromstring(page.text).get_element_by_id("diagnose").get("href")
    at = int(re.search(r"diagnose=(\d+)", link).group(1))  # type: ignore[union-attr]
    shown = lhtml.fromstring(signed_in.get(link).text).get_element_by_id("diagnosis-result")
    found = diagnosis.diagnose(db_demo.app.state.metrics, vm.uuid, at)
    culprits = {c for f in found.findings for c in f.culprits}
    expected = diagnosis.headline(found, db_demo.inv.vm_names({vm.uuid, *culprits}))
    assert shown.text_content().startswith(expected + " (judged at")
    assert vm.name in expected
