"""The public JSON API and the portal pages through the app of ``create_app`` (TestClient)."""

from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from socred.api.public import RateLimiter, parse_rate
from socred.portal import i18n, routes
from socred.service.platform import Platform
from socred.store import schema as t
from tests.portal.conftest import app_client

PORTAL = Path(routes.__file__).parent


def a_person_with_public_info(client: TestClient) -> str:
    item = client.get("/api/v1/public/announcements").json()["items"]
    return next(a["subject"]["id"] for a in item if a["subject"]["kind"] == "person")


# ------------------------------------------------------------------ JSON


def test_search_endpoint(client: TestClient, shared_platform: Platform) -> None:
    r = client.get("/api/v1/public/search", params={"q": "有限公司"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["total"] > 20 and len(body["results"]) == 20 and body["query"] == "有限公司"
    first = body["results"][0]
    assert set(first) >= {"id", "subject_id", "kind", "name", "region", "grade", "badges"}
    assert first["kind"] == "organization" and first["grade"]
    with shared_platform.engine.connect() as conn:
        org = conn.execute(select(t.subjects).where(t.subjects.c.kind == "organization")).first()
    assert org is not None
    r = client.get("/api/v1/public/search", params={"q": org.subject_id})
    assert r.json()["results"][0]["subject_id"] == org.subject_id


def test_profile_endpoint(client: TestClient) -> None:
    ref = a_person_with_public_info(client)
    r = client.get(f"/api/v1/public/subjects/{ref}")
    assert r.status_code == 200
    body = r.json()
    assert body["kind"] == "person" and body["id"] == ref and "*" in body["name"]
    assert client.get("/api/v1/public/subjects/p" + "a" * 26).status_code == 404
    assert client.get("/api/v1/public/subjects/91330100799655058B").status_code == 404
    bad = client.get("/api/v1/public/subjects/11010519491231002Y")
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "subject_id"
    assert "1101051949123100" not in bad.text


def test_announcements_endpoint(client: TestClient) -> None:
    r = client.get(
        "/api/v1/public/announcements", params={"page": 2, "region": "31", "category": "TAX_ARREARS"}
    )
    assert r.status_code == 200
    body = r.json()
    assert body["page"] == 2 and body["filters"] == {
        "region": "31",
        "category": "TAX_ARREARS",
        "from": None,
        "to": None,
    }
    assert (
        {"subject", "case_number", "cause", "date", "measure"} <= set(body["items"][0])
        if body["items"]
        else True
    )


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/public/search", "q"),
        ("/api/v1/public/search?q=", "q"),
        ("/api/v1/public/search?q=%20%20", "q"),
        ("/api/v1/public/search?q=abc&page=0", "page"),
        ("/api/v1/public/search?q=abc&page=x", "page"),
        ("/api/v1/public/search?q=110105194912310021", "q"),
        ("/api/v1/public/announcements?page=-1", "page"),
        ("/api/v1/public/announcements?region=3x", "region"),
        ("/api/v1/public/announcements?category=%27%3B--", "category"),
        ("/api/v1/public/announcements?from=2026-02-30", "from"),
        ("/api/v1/public/announcements?to=yesterday", "to"),
        ("/api/v1/public/announcements?from=2026-05-01&to=2026-04-01", "from"),
        ("/api/v1/public/scoreboard?after=-3", "after"),
        ("/api/v1/public/subjects/" + "9" * 80, "subject_id"),
        ("/api/v1/public/subjects/%00", "subject_id"),
    ],
)
def test_invalid_input_is_422_naming_the_field(client: TestClient, path: str, field: str) -> None:
    r = client.get(path)
    assert r.status_code == 422, r.text
    assert [d["field"] for d in r.json()["detail"]] == [field]
    assert "110105194912310021" not in r.text


def test_fuzzed_queries_never_5xx(client: TestClient) -> None:
    for q in [
        "%",
        "_",
        "\\",
        '"',
        "'",
        "*",
        "NEAR(a b)",
        "a" * 100,
        "\u0000",
        "𠀋𠀌",
        "　",
        "1" * 18,
        "x" * 18,
    ]:
        for path in ("/api/v1/public/search", "/search"):
            assert client.get(path, params={"q": q}).status_code < 500, (path, q)
    for page in ["99999999999999999999", "1e3", "-0"]:
        assert client.get("/api/v1/public/announcements", params={"page": page}).status_code == 422
        assert client.get("/announcements", params={"page": page}).status_code == 422


def test_rate_limit(shared_demo_url: str) -> None:
    assert parse_rate("off") is None and parse_rate("0/minute") is None
    assert parse_rate("120/minute") == (120.0, 2.0)
    assert parse_rate("5") == (5.0, 5.0)
    with pytest.raises(ValueError):
        parse_rate("fast")
    limiter = RateLimiter(2, 1.0)
    assert limiter.take("a", 0) == 0 and limiter.take("a", 0) == 0
    assert limiter.take("a", 0) == pytest.approx(1.0)
    assert limiter.take("b", 0) == 0
    assert limiter.take("a", 1.0) == 0
    with app_client(shared_demo_url, rate="3/minute") as c:
        codes = [c.get("/api/v1/public/search", params={"q": "公司"}).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = c.get("/api/v1/public/announcements")
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        page = c.get("/announcements")  # the pages share the bucket
        assert page.status_code == 429 and page.headers["retry-after"]
        assert "content-security-policy" in page.headers
        assert c.get("/static/portal.css").status_code == 200  # assets are not limited


def test_rate_limit_from_environment(shared_demo_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from socred.api.app import create_app
    from socred.api.settings import Settings

    monkeypatch.setenv("SOCRED_PUBLIC_RATE", "1/hour")
    app = create_app(Settings(db=shared_demo_url, log_format="text", access_log=False))
    with TestClient(app) as c:
        assert c.get("/api/v1/public/stats").status_code == 200
        r = c.get("/api/v1/public/stats")
        assert r.status_code == 429 and 3000 < int(r.headers["retry-after"]) <= 3600


def test_openapi_lists_the_public_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("search", "subjects/{subject_id}", "announcements", "scoreboard", "stats"):
        assert f"/api/v1/public/{p}" in paths
    assert "/search" not in paths  # HTML pages are not part of the API document


# ------------------------------------------------------------------ pages


PAGES = ["/", "/search", "/search?q=公司", "/announcements", "/announcements?page=2", "/scoreboard", "/stats"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_safe_and_translated(client: TestClient, path: str) -> None:
    client.cookies.clear()
    zh = client.get(path)
    assert zh.status_code == 200 and zh.headers["content-type"].startswith("text/html")
    csp = zh.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert (
        zh.headers["x-content-type-options"] == "nosniff" and zh.headers["referrer-policy"] == "no-referrer"
    )
    assert '<html lang="zh-CN">' in zh.text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", zh.text)  # no inline script
    assert not re.search(r"\sstyle=|\son[a-z]+=", zh.text)  # no inline style or handler
    assert "http://" not in zh.text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    en = client.get(path, params={"lang": "en"})
    assert '<html lang="en">' in en.text and en.cookies.get("lang") == "en"
    assert client.get(path).text.count('<html lang="en">') == 1  # remembered
    client.cookies.set("lang", "xx")
    assert client.get(path).text.count('<html lang="zh-CN">') == 1
    client.cookies.clear()


def test_subject_pages(client: TestClient, shared_platform: Platform) -> None:
    ref = a_person_with_public_info(client)
    page = client.get(f"/subjects/{ref}")
    assert page.status_code == 200 and "**********" in page.text
    with shared_platform.engine.connect() as conn:
        org = conn.execute(select(t.subjects).where(t.subjects.c.kind == "organization")).first()
    assert org is not None
    page = client.get(f"/subjects/{org.subject_id}")
    assert page.status_code == 200 and org.name in page.text and "<svg" in page.text
    assert client.get("/subjects/p" + "b" * 26).status_code == 404
    assert client.get("/subjects/not-an-id").status_code == 422


def test_language_switch_keeps_only_safe_parameters(client: TestClient) -> None:
    client.cookies.clear()
    page = client.get("/announcements", params={"region": "31", "page": "2", "lang": "zh"})
    assert (
        'href="/announcements?region=31&amp;category=&amp;from=&amp;to=&amp;page=2&amp;lang=en"' in page.text
        or ("region=31" in page.text and "lang=en" in page.text)
    )
    page = client.get("/search", params={"q": "有限公司"})
    assert "q=%E6%9C%89%E9%99%90%E5%85%AC%E5%8F%B8" in page.text  # an organization query is kept
    page = client.get("/search", params={"q": "王小明"})
    assert "王小明" not in page.text and "%E7%8E%8B%E5%B0%8F%E6%98%8E" not in page.text


def test_every_ui_string_has_a_chinese_translation() -> None:
    used: set[str] = set()
    for tpl in (PORTAL / "templates").glob("*.html"):
        used |= set(re.findall(r"""_\(\s*"([^"]+)"\s*[,)]""", tpl.read_text()))
        used |= set(re.findall(r"""_\(\s*'([^']+)'\s*[,)]""", tpl.read_text()))
    tree = ast.parse((PORTAL / "routes.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = node.func
            if isinstance(fn, ast.Attribute) and fn.attr == "gettext" and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    used.add(arg.value)
            for kw in node.keywords:
                if kw.arg in ("title_key", "message_key") and isinstance(kw.value, ast.Constant):
                    used.add(str(kw.value.value))
    used |= set(i18n.FIELD_MESSAGES.values())
    assert len(used) > 100
    missing = sorted(u for u in used if u not in i18n.ZH)
    assert missing == []
    for key, value in i18n.ZH.items():
        assert re.findall(r"\{\w+\}", key) == re.findall(r"\{\w+\}", value), key
        assert re.search(r"[\u4e00-\u9fff]", value), key


def test_static_assets(client: TestClient) -> None:
    css = client.get("/static/portal.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    js = client.get("/static/scoreboard.js")
    assert js.status_code == 200 and "EventSource" in js.text
    assert client.get("/static/../routes.py").status_code == 404
    assert client.get("/static/routes.py").status_code == 404
    assert client.get("/static/nothing.css").status_code == 404
    assert client.get("/favicon.ico").headers["content-type"].startswith("image/svg")


def test_pages_are_fast(client: TestClient) -> None:
    for path in [*PAGES, f"/subjects/{a_person_with_public_info(client)}", "/api/v1/public/search?q=张"]:
        client.get(path)  # warm
        best = min(_timed(client, path) for _ in range(3))
        assert best < 0.2, (path, best)


def _timed(client: TestClient, path: str) -> float:
    start = time.perf_counter()
    assert client.get(path).status_code == 200
    return time.perf_counter() - start


def test_checks_answered_appear_in_statistics(demo_url: str) -> None:
    from socred.service import auth

    p = Platform(demo_url)
    try:
        key = auth.add_party(p, "air.cn", "China Air", ["air_travel"])
        with p.engine.connect() as conn:
            sids = [r[0] for r in conn.execute(select(t.subjects.c.subject_id).limit(5))]
    finally:
        p.engine.dispose()
    with app_client(demo_url) as c:
        for sid in sids:
            r = c.post(
                "/api/v1/check",
                json={"subject_id": sid, "activity": "air_travel"},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert r.status_code == 200
        checks = c.get("/api/v1/public/stats").json()["checks"]
        assert [x["activity"] for x in checks] == ["air_travel"]
        assert checks[0]["allowed"] + checks[0]["restricted"] == 5
        page = c.get("/stats")
        assert "乘坐飞机" in page.text and page.text.count("<svg") == 4
