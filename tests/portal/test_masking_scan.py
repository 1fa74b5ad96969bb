"""From outside: no public answer or page ever holds a full resident number, a person's full name or a
full plate — for every subject of the demo population, whether it is looked up by identifier, by name,
by its public reference, or met in the announcements, on the board or in the statistics."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from fastapi.testclient import TestClient
from sqlalchemy import select

from socred.domain.ids import parse_subject_id
from socred.portal import i18n
from socred.service.platform import Platform
from socred.store import ledger
from socred.store import schema as t


class Scanner:
    def __init__(self, client: TestClient, forbidden: set[str]) -> None:
        self.client = client
        self.pattern = re.compile("|".join(sorted(map(re.escape, forbidden), key=len, reverse=True)))
        self.fetched = 0

    def get(self, path: str, **params: str) -> str:
        r = self.client.get(path, params=params or None)
        self.fetched += 1
        assert r.status_code < 500, (path, r.status_code)
        body = r.text + "\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items())
        leak = self.pattern.search(body)
        assert leak is None, f"{path} (params {sorted(params)}) shows {leak.group(0)!r}"
        return r.text


def _demo(platform: Platform) -> tuple[list[tuple[str, str, str]], set[str]]:
    with platform.engine.connect() as conn:
        subjects = [(r.subject_id, r.kind, r.name) for r in conn.execute(select(t.subjects))]
        bodies = [json.loads(e.body) for e in ledger.iter_entries(conn) if e.kind in ("submit", "correct")]
        persons = {s for s, kind, _ in subjects if kind == "person"}
        plates = {b["attributes"]["plate"] for b in bodies if "plate" in (b.get("attributes") or {})}
        names_in_records = {
            b["subject_name"] for b in bodies if b.get("subject_id") in persons and "subject_name" in b
        }
    return subjects, plates | names_in_records


def forbidden_strings(platform: Platform) -> set[str]:
    """Every resident number, person name and plate of the demo — except names that public text holds
    anyway (a person called 程华 inside the company name 上海新程华信…, say)."""
    subjects, extra = _demo(platform)
    public_text = "\n".join(
        [n for _, kind, n in subjects if kind == "organization"]
        + list(i18n.ZH.values())
        + list(i18n.CATEGORIES_ZH.values())
        + list(i18n.LISTS_ZH.values())
        + list(i18n.MEASURES_ZH.values())
        + [p[0] for p in i18n.DIVISIONS.values()]
        + [p[0] for p in i18n.PROVINCES.values()]
    )
    out = {sid for sid, kind, _ in subjects if kind == "person"}
    assert all(parse_subject_id(sid).kind == "person" for sid in out)
    names = {name for _, kind, name in subjects if kind == "person"} | {
        e for e in extra if not e.startswith("沪")
    }
    out |= {n for n in names if n not in public_text}
    out |= {e for e in extra if e.startswith("沪")}
    return out


def _links(html: str) -> Iterator[str]:
    yield from re.findall(r'href="(/subjects/[^"?]+)"', html)


def test_no_public_answer_leaks_identity(client: TestClient, shared_platform: Platform) -> None:
    forbidden = forbidden_strings(shared_platform)
    assert len(forbidden) > 300
    scan = Scanner(client, forbidden)
    subjects, _ = _demo(shared_platform)
    persons = [(sid, name) for sid, kind, name in subjects if kind == "person"]
    assert scan.pattern.search(f"…{persons[0][0]}…") and sum(n in forbidden for _, n in persons) > 0.9 * len(
        persons
    )
    profiles: set[str] = set()
    for sid, kind, name in subjects:
        scan.get(f"/api/v1/public/subjects/{sid}")
        scan.get("/api/v1/public/search", q=sid)
        html = scan.get("/search", q=sid)
        profiles.update(_links(html))
        if kind == "person":
            scan.get("/api/v1/public/search", q=name)
            profiles.update(_links(scan.get("/search", q=name)))
            scan.get(f"/subjects/{sid}")  # a typed resident number in the path is not shown back either
            scan.get("/search", q=f"{sid[:6]}-{sid[6:14]}-{sid[14:]}")
            scan.get("/search", q=sid, lang="en")
    first = json.loads(scan.get("/api/v1/public/announcements"))
    for page in range(1, first["pages"] + 1):
        scan.get("/api/v1/public/announcements", page=str(page))
        profiles.update(_links(scan.get("/announcements", page=str(page))))
    for path in ("/", "/scoreboard", "/stats", "/api/v1/public/scoreboard", "/api/v1/public/stats"):
        scan.get(path)
        scan.get(path, lang="en")
    assert len(profiles) > 100
    for link in sorted(profiles):
        scan.get(link)
        scan.get("/api/v1/public" + link)
    assert scan.fetched > 1500
