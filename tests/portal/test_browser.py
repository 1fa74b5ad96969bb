"""The portal in a real browser (Playwright driving Debian's /usr/bin/chromium, headless) against
``socred serve`` in a subprocess; plus the event stream of the live board over plain HTTP.

Every page is photographed: into a temporary directory, or into $SOCRED_SCREENSHOTS when set
(``SOCRED_SCREENSHOTS=docs/screenshots pytest tests/portal/test_browser.py`` refreshes the
documentation's). Without Playwright or Chromium these tests are skipped, except under CI=true where
they must run.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from socred.domain import clock
from socred.service.platform import Platform
from tests.portal.conftest import Server

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests must run under CI=true: {reason}")
    pytest.skip(reason)


def honk(url: str, record_id: str, plate: str) -> str:
    """Ingest a new honking record for a Shanghai person of the demo; returns the masked plate."""
    p = Platform(url)
    try:
        with p.engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT subject_id, name FROM subjects WHERE kind = 'person' AND region LIKE '31%' LIMIT 1"
            ).one()
        summary = p.ingest(
            "demo.civil",
            [
                (
                    1,
                    {
                        "record_id": record_id,
                        "subject_id": row[0],
                        "subject_name": row[1],
                        "category": "TRAFFIC_HONKING",
                        "occurred_on": clock.today().isoformat(),
                        "attributes": {"plate": plate},
                    },
                )
            ],
        )
        assert summary.accepted == 1, summary.errors
    finally:
        p.engine.dispose()
    return plate[:2] + "***" + plate[-2:]


# ------------------------------------------------------------------ server-sent events, no browser


def test_scoreboard_stream(live: Server) -> None:
    seq = httpx.get(f"{live.base}/api/v1/public/scoreboard?limit=1").json()["seq"]
    events: list[dict[str, Any]] = []
    done = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", f"{live.base}/scoreboard/stream", params={"after": seq}, timeout=20) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            event: dict[str, str] = {}
            for line in r.iter_lines():
                if line.startswith(("id:", "event:", "data:")):
                    key, _, value = line.partition(":")
                    event[key] = value.strip()
                elif not line and event:
                    events.append(event)
                    event = {}
                    if events[-1].get("event") == "violation":
                        done.set()
                        return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    time.sleep(0.5)
    masked = honk(live.url, "SSE-HONK-1", "沪D54321")
    assert done.wait(15), events
    violation = events[-1]
    data = json.loads(violation["data"])
    assert int(violation["id"]) == data["seq"] > seq
    assert masked in data["html"] and "54321" not in data["html"]
    # resuming after the last event id gives nothing new
    with httpx.stream(
        "GET", f"{live.base}/scoreboard/stream", headers={"Last-Event-ID": violation["id"]}, timeout=5
    ) as r:
        first = next(r.iter_lines())
        assert first.startswith("retry:")


# ------------------------------------------------------------------ the browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, live: Server) -> Iterator[Any]:
    context = browser.new_context(base_url=live.base, viewport={"width": 1280, "height": 900}, locale="zh-CN")
    pg = context.new_page()
    problems: list[str] = []
    pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(str(e)))
    pg.set_default_timeout(10_000)
    yield pg
    context.close()
    assert problems == []  # no script error, no Content-Security-Policy violation


Shot = Callable[..., None]


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> Shot:
    """``shot(page, name, full_page=True)``: a PNG of the page, named after it."""
    configured = os.environ.get("SOCRED_SCREENSHOTS")
    folder = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)

    def take(pg: Any, name: str, full_page: bool = True) -> None:
        pg.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)

    return take


def test_search_then_profile(page: Any, shot: Shot) -> None:
    page.goto("/")
    shot(page, "home")
    assert page.evaluate("document.activeElement.id") == "q"  # the search box has the focus
    page.fill("#q", "华信")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=*")
    results = page.locator(".results-list li")
    assert results.count() > 0
    assert page.input_value("#q") == "华*"  # a possible name is not shown back as typed
    shot(page, "search")
    name = results.first.locator("a.name").inner_text()
    results.first.locator("a.name").click()
    page.wait_for_url("**/subjects/*")
    assert name in page.locator("h1").inner_text()
    assert page.locator("svg.chart").count() == 1
    shot(page, "subject-organization")


def test_person_profile_and_keyboard(page: Any, live: Server, shot: Shot) -> None:
    items = httpx.get(
        f"{live.base}/api/v1/public/announcements", params={"category": "DISHONEST_JUDGMENT_DEBTOR"}
    )
    ref = next(a["subject"]["id"] for a in items.json()["items"] if a["subject"]["kind"] == "person")
    page.goto(f"/subjects/{ref}")
    assert "*" in page.locator("h1").inner_text()
    assert page.locator(".list.black").count() >= 1
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    shot(page, "subject-person")


def test_announcements_paging_and_filters(page: Any, shot: Shot) -> None:
    page.goto("/announcements")
    first_row = page.locator("table.announcements tbody tr").first.inner_text()
    shot(page, "announcements")
    page.locator(".pager a[rel=next]").click()
    page.wait_for_url("**/announcements?page=2")
    assert page.locator(".pager a[aria-current=page]").inner_text() == "2"
    assert page.locator("table.announcements tbody tr").first.inner_text() != first_row
    page.select_option("#f-category", "TRAFFIC_HONKING")
    page.click("form.filters button")
    page.wait_for_url("**category=TRAFFIC_HONKING**")
    plates = page.locator("table.announcements .plate").all_inner_texts()
    assert plates and all("***" in p for p in plates)


def test_scoreboard_updates_live(page: Any, live: Server, shot: Shot) -> None:
    page.goto("/scoreboard")
    page.wait_for_function("document.getElementById('board-status').textContent === '实时'")
    before = page.locator("#board li").count()
    masked = honk(live.url, "BROWSER-HONK-1", "沪C98761")
    page.locator("#board li").first.filter(has_text=masked).wait_for(timeout=15_000)
    assert page.locator("#board li").count() == min(before + 1, 20)
    assert "98761" not in page.content()
    shot(page, "scoreboard")


def test_language_switch_and_stats(page: Any, shot: Shot) -> None:
    page.goto("/stats")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("svg.chart").count() >= 3
    shot(page, "stats")
    page.click("a.lang")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Statistics"
    page.click("nav >> text=Announcements")  # the choice is remembered
    assert page.locator("h1").inner_text() == "Announcements"
    page.goto("/")
    shot(page, "home-en")
    page.click("a.lang")
    assert page.locator("html").get_attribute("lang") == "zh-CN"


def test_mobile_layout(browser: Any, live: Server, shot: Shot) -> None:
    context = browser.new_context(
        base_url=live.base, viewport={"width": 390, "height": 844}, device_scale_factor=2
    )
    pg = context.new_page()
    pg.goto("/search?q=有限公司")
    width = pg.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing overflows sideways
    shot(pg, "search-mobile", full_page=False)
    context.close()


def test_sign_in_and_own_report(page: Any, live: Server, shot: Shot) -> None:
    """A subject pastes its session token, lands on its own report, and the PDF link downloads."""
    from socred.service.auth import TokenCodec, token_secret

    p = Platform(live.url)
    try:
        with p.engine.connect() as conn:
            sid = conn.exec_driver_sql(
                "SELECT r.subject_id FROM records r JOIN codes c ON c.id = r.category "
                "WHERE r.kind = 0 AND c.value = 'DISHONEST_JUDGMENT_DEBTOR' AND NOT r.retracted LIMIT 1"
            ).scalar_one()
        token = TokenCodec(token_secret(p.engine, os.environ.get("SOCRED_TOKEN_SECRET"))).issue(
            sid, "subject"
        )
    finally:
        p.engine.dispose()
    page.goto("/me")
    page.wait_for_url("**/signin")
    page.fill("#token", token)
    page.click("form.account button")
    page.wait_for_url("**/me")
    assert page.locator("h1").inner_text() == "我的信用报告"
    assert page.locator("#my-records tbody tr").count() >= 1
    assert page.locator("article.restriction").count() >= 1
    assert page.evaluate("document.cookie") == ""  # the session cookie is HttpOnly
    shot(page, "my-report")
    with page.expect_download() as download:
        page.click("a[href='/me/report.pdf']")
    path = download.value.path()
    assert path is not None and Path(path).read_bytes().startswith(b"%PDF-")
