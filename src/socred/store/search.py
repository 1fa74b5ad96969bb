"""The subject search index: names (partial and tolerant) and identifiers.

A query is matched against the ``subjects`` projection in four tiers, best first:

* ``exact``     — the whole name;
* ``prefix``    — names that start with the query;
* ``substring`` — names that contain it;
* ``similar``   — names sharing enough character trigrams with it (a typo, a missing word).

How each tier is served depends on the database:

**SQLite.** ``subject_search`` mirrors ``subjects`` (id, kind, region, name) under a stable
``INTEGER PRIMARY KEY``, kept equal by triggers on ``subjects``, and ``subjects_fts`` is an
FTS5 index with the ``trigram`` tokenizer over its names (external content, kept by triggers on
``subject_search``). Because everything is maintained by triggers inside the writer's
transaction, the index is exactly as current as the projection, also after
``ledger rebuild``. The trigram tokenizer cannot match a query shorter than 3 characters —
and Chinese names are 2 or 3 characters — so ``exact`` and ``prefix`` always go through the
ordinary B-tree ``ix_subjects_name`` (a range scan ``q <= name < q + U+10FFFF``), and a
1- or 2-character ``substring`` falls back to a bounded scan. ``similar`` ORs the query's
trigrams in one MATCH and keeps the names whose trigram similarity reaches 0.3.

**PostgreSQL.** ``pg_trgm``: a GIN ``gin_trgm_ops`` index serves ``ILIKE '%q%'`` and the
similarity operator ``%``; a ``text_pattern_ops`` B-tree serves ``LIKE 'q%'``. The
extension may live in any schema: it is looked up, and its objects are schema-qualified.

Without FTS5 (an SQLite built without it) or without ``pg_trgm`` everything still answers,
with scans instead of index look-ups.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

__all__ = [
    "MATCH_ORDER",
    "MAX_QUERY",
    "Hit",
    "Match",
    "find_by_id",
    "find_by_name",
    "install",
    "normalise_query",
    "rebuild",
    "similarity",
    "trigrams",
    "uninstall",
]

Match = Literal["id", "exact", "prefix", "substring", "similar"]
MATCH_ORDER: dict[str, int] = {"id": 0, "exact": 0, "prefix": 1, "substring": 2, "similar": 3}
MAX_QUERY = 100  # characters, after normalisation
SIMILARITY = 0.3  # the pg_trgm default threshold, used on SQLite too
_TOP = "\U0010ffff"  # sorts after every character: q <= name < q + _TOP is "name starts with q"
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Hit:
    subject_id: str
    kind: str
    region: str
    name: str
    match: Match

    def sort_key(self) -> tuple[int, int, str, str]:
        return (MATCH_ORDER[self.match], len(self.name), self.name, self.subject_id)


# ------------------------------------------------------------------ text


def normalise_query(raw: str) -> str:
    """NFKC (full-width letters and digits become ASCII), white space collapsed and trimmed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", raw)).strip()


def trigrams(value: str) -> set[str]:
    """The case-folded character trigrams of ``value`` (white space removed)."""
    s = "".join(value.casefold().split())
    return {s[i : i + 3] for i in range(len(s) - 2)}


def similarity(a: str, b: str) -> float:
    """Shared trigrams over all trigrams (Jaccard), like ``pg_trgm.similarity`` without word padding."""
    ta, tb = trigrams(a), trigrams(b)
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / len(ta | tb)


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _fts_phrase(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


# ------------------------------------------------------------------ schema (used by migration 0003)

_SQLITE_CREATE = [
    """CREATE TABLE subject_search (
        id INTEGER PRIMARY KEY,
        subject_id VARCHAR(18) NOT NULL UNIQUE,
        kind VARCHAR(16) NOT NULL,
        region VARCHAR(6) NOT NULL,
        name VARCHAR(200) NOT NULL
    )""",
    """CREATE VIRTUAL TABLE subjects_fts USING fts5(
        name, content='subject_search', content_rowid='id', tokenize='trigram'
    )""",
    """CREATE TRIGGER subject_search_ai AFTER INSERT ON subject_search BEGIN
        INSERT INTO subjects_fts(rowid, name) VALUES (new.id, new.name);
    END""",
    """CREATE TRIGGER subject_search_ad AFTER DELETE ON subject_search BEGIN
        INSERT INTO subjects_fts(subjects_fts, rowid, name) VALUES ('delete', old.id, old.name);
    END""",
    """CREATE TRIGGER subject_search_au AFTER UPDATE OF name ON subject_search BEGIN
        INSERT INTO subjects_fts(subjects_fts, rowid, name) VALUES ('delete', old.id, old.name);
        INSERT INTO subjects_fts(rowid, name) VALUES (new.id, new.name);
    END""",
    """CREATE TRIGGER subjects_search_ai AFTER INSERT ON subjects BEGIN
        INSERT INTO subject_search(subject_id, kind, region, name)
        VALUES (new.subject_id, new.kind, new.region, new.name);
    END""",
    """CREATE TRIGGER subjects_search_au AFTER UPDATE OF name ON subjects
        WHEN old.name IS NOT new.name BEGIN
        UPDATE subject_search SET name = new.name WHERE subject_id = new.subject_id;
    END""",
    """CREATE TRIGGER subjects_search_ad AFTER DELETE ON subjects BEGIN
        DELETE FROM subject_search WHERE subject_id = old.subject_id;
    END""",
    """INSERT INTO subject_search(subject_id, kind, region, name)
        SELECT subject_id, kind, region, name FROM subjects""",
]
_SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS subjects_search_ad",
    "DROP TRIGGER IF EXISTS subjects_search_au",
    "DROP TRIGGER IF EXISTS subjects_search_ai",
    "DROP TRIGGER IF EXISTS subject_search_au",
    "DROP TRIGGER IF EXISTS subject_search_ad",
    "DROP TRIGGER IF EXISTS subject_search_ai",
    "DROP TABLE IF EXISTS subjects_fts",
    "DROP TABLE IF EXISTS subject_search",
]
_PG_DROP = ["DROP INDEX IF EXISTS ix_subjects_name_trgm", "DROP INDEX IF EXISTS ix_subjects_name_prefix"]


def _sqlite_has_trigram(conn: Connection) -> bool:
    try:
        with conn.begin_nested():
            conn.exec_driver_sql(
                "CREATE VIRTUAL TABLE temp.socred_fts_probe USING fts5(x, tokenize='trigram')"
            )
            conn.exec_driver_sql("DROP TABLE temp.socred_fts_probe")
        return True
    except DBAPIError:
        return False


def _trgm_schema(conn: Connection) -> str | None:
    """The schema pg_trgm is installed in, or None."""
    row = conn.execute(
        text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'pg_trgm'"
        )
    ).first()
    return None if row is None else str(row[0])


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def install(conn: Connection) -> None:
    """Create the index structures for this database (migration 0003); existing subjects are indexed."""
    if conn.dialect.name == "sqlite":
        if _sqlite_has_trigram(conn):
            for stmt in _SQLITE_CREATE:
                conn.exec_driver_sql(stmt)
        return
    if conn.dialect.name == "postgresql":
        try:
            with conn.begin_nested():
                conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except DBAPIError:  # no right to create extensions: substring search scans instead
            pass
        schema = _trgm_schema(conn)
        if schema is not None:
            conn.exec_driver_sql(
                "CREATE INDEX IF NOT EXISTS ix_subjects_name_trgm ON subjects"
                f" USING gin (name {_quote_ident(schema)}.gin_trgm_ops)"
            )
        conn.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS ix_subjects_name_prefix ON subjects (name text_pattern_ops)"
        )


def uninstall(conn: Connection) -> None:
    """Drop what :func:`install` created (the pg_trgm extension itself stays: others may use it)."""
    for stmt in _SQLITE_DROP if conn.dialect.name == "sqlite" else _PG_DROP:
        conn.exec_driver_sql(stmt)


def rebuild(conn: Connection) -> None:
    """Re-derive the SQLite index from ``subjects`` (normally never needed: triggers keep it current)."""
    if conn.dialect.name != "sqlite" or not _has_fts(conn):
        return
    conn.exec_driver_sql("DELETE FROM subject_search")
    conn.exec_driver_sql(_SQLITE_CREATE[-1])
    conn.exec_driver_sql("INSERT INTO subjects_fts(subjects_fts) VALUES ('rebuild')")


def _has_fts(conn: Connection) -> bool:
    row = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'subjects_fts'"
    ).first()
    return row is not None


# ------------------------------------------------------------------ queries


def find_by_id(conn: Connection, subject_id: str) -> Hit | None:
    """The subject with exactly this (normalised) identifier."""
    row = conn.execute(
        text("SELECT subject_id, kind, region, name FROM subjects WHERE subject_id = :id"), {"id": subject_id}
    ).first()
    if row is None:
        return None
    return Hit(str(row[0]), str(row[1]), str(row[2]), str(row[3]), "id")


def find_by_name(conn: Connection, query: str, limit: int = 50) -> list[Hit]:
    """Subjects whose name matches ``query`` (normalised first), best first, at most ``limit``.

    Within a tier, ties are broken by name length, then name, then identifier; ``similar`` hits by
    similarity first.
    """
    q = normalise_query(query)[:MAX_QUERY]
    if not q or limit <= 0:
        return []
    ix = _Index(conn)
    found: dict[str, Hit] = {}

    def add(rows: Iterable[Any], how: Match | None = None) -> None:
        for sid, kind, region, name in rows:
            if sid not in found:
                m: Match = how or ("exact" if name == q else "prefix" if name.startswith(q) else "substring")
                found[sid] = Hit(sid, kind, region, name, m)

    add(ix.prefixed(q, limit))
    want = max(limit * 4, 200)
    if len(found) < limit:
        add(ix.containing(q, want))
    grams = sorted(trigrams(q))
    if len(found) < limit and grams and ix.trigram_index:
        add((r for r in ix.similar(grams) if similarity(q, r[3]) >= SIMILARITY), "similar")
    ranked = sorted(found.values(), key=Hit.sort_key)
    similar = sorted((h for h in ranked if h.match == "similar"), key=lambda h: -similarity(q, h.name))
    return ([h for h in ranked if h.match != "similar"] + similar)[:limit]


GRAM_PROBE = 2000  # a trigram in more names than this is too common to find a misspelt name by
SIMILAR_POOL = 5000  # names compared with the query, at most
_COLS = "subject_id, kind, region, name"


class _Index:
    """The three look-ups, as this database serves them."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.trigram_index = _has_fts(conn) if self.sqlite else _trgm_schema(conn) is not None

    def _rows(self, sql: str, **params: Any) -> list[Any]:
        return list(self.conn.execute(text(sql), params).all())

    def prefixed(self, q: str, n: int) -> list[Any]:
        """Exact names first, then names starting with ``q``: B-tree look-ups."""
        if self.sqlite:  # a range scan of ix_subjects_name is already in name order, exact first
            return self._rows(
                f"SELECT {_COLS} FROM subjects WHERE name >= :q AND name < :hi ORDER BY name LIMIT :n",
                q=q,
                hi=q + _TOP,
                n=n,
            )
        exact = self._rows(f"SELECT {_COLS} FROM subjects WHERE name = :q LIMIT :n", q=q, n=n)
        return exact + self._rows(
            f"SELECT {_COLS} FROM subjects WHERE name LIKE :p ESCAPE '\\' LIMIT :n",
            p=_like_escape(q) + "%",
            n=n,
        )

    def containing(self, q: str, n: int) -> list[Any]:
        """Names containing ``q``: the trigram index from 3 characters on, a bounded scan below."""
        if not self.sqlite:
            return self._rows(
                f"SELECT {_COLS} FROM subjects WHERE name ILIKE :p ESCAPE '\\' LIMIT :n",
                p="%" + _like_escape(q) + "%",
                n=n,
            )
        if self.trigram_index and len(q) >= 3:
            return self._fts(_fts_phrase(q), n)
        return self._rows(f"SELECT {_COLS} FROM subjects WHERE instr(name, :q) > 0 LIMIT :n", q=q, n=n)

    def _fts(self, match: str, n: int) -> list[Any]:
        return self._rows(
            "SELECT x.subject_id, x.kind, x.region, x.name FROM subjects_fts"
            " JOIN subject_search x ON x.id = subjects_fts.rowid WHERE subjects_fts MATCH :m LIMIT :n",
            m=match,
            n=n,
        )

    def _frequency(self, gram: str) -> int:
        """In how many names ``gram`` occurs, counted up to GRAM_PROBE + 1."""
        if self.sqlite:
            sql = "SELECT count(*) FROM (SELECT 1 FROM subjects_fts WHERE subjects_fts MATCH :m LIMIT :cap) c"
            value = _fts_phrase(gram)
        else:
            sql = "SELECT count(*) FROM (SELECT 1 FROM subjects WHERE name ILIKE :m ESCAPE '\\' LIMIT :cap) c"
            value = "%" + _like_escape(gram) + "%"
        return int(self.conn.execute(text(sql), {"m": value, "cap": GRAM_PROBE + 1}).scalar_one())

    def similar(self, grams: list[str]) -> list[Any]:
        """Candidates sharing the query's rarer trigrams (the caller keeps the similar ones).

        Each trigram's frequency is probed; the rarest are ORed until SIMILAR_POOL names would be
        exceeded, so a common trigram ("有限公") never drags in a quarter of the index.
        """
        counted = sorted((n, g) for g in grams[:32] if 0 < (n := self._frequency(g)) <= GRAM_PROBE)
        chosen: list[str] = []
        total = 0
        for n, g in counted:
            if total + n > SIMILAR_POOL:
                break
            chosen.append(g)
            total += n
        if not chosen:
            return []
        if self.sqlite:
            return self._fts(" OR ".join(_fts_phrase(g) for g in chosen), SIMILAR_POOL)
        params = {f"g{i}": "%" + _like_escape(g) + "%" for i, g in enumerate(chosen)}
        where = " OR ".join(f"name ILIKE :g{i} ESCAPE '\\'" for i in range(len(chosen)))
        return self._rows(f"SELECT {_COLS} FROM subjects WHERE {where} LIMIT :n", n=SIMILAR_POOL, **params)
