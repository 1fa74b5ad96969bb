"""Policy impact preview (``socred catalog diff OLD NEW --as-of DATE``).

Before a regulator approves a new catalog version it must see what it would do: score the
whole population under the old and under the new rules, at the same date, on the same
records, and count who changes grade, who joins or leaves each list and who gains or loses
each measure.

Both scorings run on the batch engine (the same SQL as ``score-all``), so a preview of ten
million subjects takes seconds. Each catalog is applied to the subjects it serves (region by
prefix, subject kind by its categories); a subject served by only one of the two counts as
"not scored" under the other, so extending a catalog to a new region shows up as subjects
joining lists. The catalogs' effective dates are ignored here on purpose: the question is
"what if these rules applied on DATE".
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as _pc
import pyarrow.parquet as pq
import yaml

from socred.domain.catalog import Catalog, CatalogError, parse_catalog
from socred.domain.scoring import ScoringError, select_catalog
from socred.service.batch import _backend
from socred.store.export import RECORD_SCHEMA, dataset_batches, stream_records

if TYPE_CHECKING:
    from collections.abc import Iterator

    from socred.service.platform import Platform

pc: Any = _pc  # pyarrow's compute functions are generated at import: untyped

NOT_SCORED = "—"


class DiffError(ValueError):
    """A catalog reference that cannot be resolved, said in one sentence."""


def resolve_catalog(platform: Platform, ref: str) -> Catalog:
    """``id@version`` (or ``id``: its newest version) of a loaded catalog, or a catalog YAML file."""
    path = Path(ref)
    if ref.endswith((".yaml", ".yml", ".json")) or path.is_file():
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise DiffError(f"cannot read catalog file {ref!r}: {e.strerror}") from None
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise DiffError(f"{ref!r} is not a valid YAML catalog: {e}".replace("\n", " ")) from None
        try:
            return parse_catalog(doc)
        except CatalogError as e:
            raise DiffError(f"{ref}: {e}") from None
    from socred.store import repo

    cid, _, ver = ref.partition("@")
    if ver and not ver.isdigit():
        raise DiffError(f"{ref!r}: the version after '@' must be a number, as in shanghai@3")
    platform.ensure_schema()
    with platform.engine.connect() as conn:
        rows = [r for r in repo.catalog_documents(conn, active_only=False) if r.id == cid]
    if not rows:
        raise DiffError(f"no catalog {cid!r} is loaded and no file {ref!r} exists")
    if ver:
        rows = [r for r in rows if int(r.version) == int(ver)]
        if not rows:
            raise DiffError(f"catalog {cid!r} has no version {ver} loaded")
    newest = max(rows, key=lambda r: int(r.version))
    return parse_catalog(json.loads(newest.document))


@dataclass
class Movement:
    """Subjects joining and leaving one list, or gaining and losing one measure."""

    code: str
    title: str
    before: int = 0
    after: int = 0
    joined: int = 0
    left: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class DiffReport:
    old: str
    new: str
    as_of: date
    engine: str
    records: int
    subjects: int  # scored under at least one of the two
    scored_old: int
    scored_new: int
    grade_changed: int
    score_up: int
    score_down: int
    mean_delta: float
    grades: list[str]  # the union, best first, then NOT_SCORED
    transitions: dict[str, dict[str, int]]  # old grade -> new grade -> subjects
    lists: list[Movement] = field(default_factory=list)
    measures: list[Movement] = field(default_factory=list)
    seconds: float = 0.0

    def grade_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        before: dict[str, int] = {}
        after: dict[str, int] = {}
        for o, row in self.transitions.items():
            for n, k in row.items():
                before[o] = before.get(o, 0) + k
                after[n] = after.get(n, 0) + k
        return before, after

    def to_dict(self) -> dict[str, Any]:
        before, after = self.grade_counts()
        return {
            "old": self.old,
            "new": self.new,
            "as_of": self.as_of.isoformat(),
            "engine": self.engine,
            "records": self.records,
            "subjects": self.subjects,
            "scored_old": self.scored_old,
            "scored_new": self.scored_new,
            "grade_changed": self.grade_changed,
            "score_up": self.score_up,
            "score_down": self.score_down,
            "mean_delta": self.mean_delta,
            "grades": {g: {"before": before.get(g, 0), "after": after.get(g, 0)} for g in self.grades},
            "transitions": [
                {"from": o, "to": n, "subjects": k}
                for o, row in self.transitions.items()
                for n, k in row.items()
                if o != n
            ],
            "lists": [m.to_dict() for m in self.lists],
            "measures": [m.to_dict() for m in self.measures],
            "seconds": self.seconds,
        }


class _Population:
    """Which records a catalog scores: subject kinds it has categories for, in regions where it
    would be chosen (longest prefix, as :func:`select_catalog`) against the other loaded catalogs.
    With no other catalogs (``whole=True``), every region its prefixes cover."""

    def __init__(self, catalog: Catalog, others: list[Catalog]) -> None:
        self.catalog = catalog
        self.candidates = [catalog, *(c for c in others if c.id != catalog.id)]
        self.known: dict[str, bool] = {}

    def wins(self, region: str, kind: str) -> bool:
        key = f"{region}|{kind}"
        if key not in self.known:
            try:
                chosen = select_catalog(self.candidates, region, kind, date.max)
            except ScoringError:
                chosen = None
            self.known[key] = chosen is not None and chosen.id == self.catalog.id
        return self.known[key]

    def mask(self, batch: pa.RecordBatch) -> pa.Array:
        keys = pc.binary_join_element_wise(batch.column("region"), batch.column("kind"), "|")
        won = [k for k in pc.unique(keys).to_pylist() if k is not None and self.wins(*k.split("|", 1))]
        return pc.fill_null(pc.is_in(keys, pa.array(won, pa.string())), False)


def _as_of_catalog(catalog: Catalog, as_of: date) -> Catalog:
    """The catalog's rules applied on ``as_of`` even before it takes effect (a preview)."""
    if catalog.effective_from > as_of:
        return dataclasses.replace(catalog, effective_from=as_of)
    return catalog


def _split(
    batches: Iterator[pa.RecordBatch], populations: list[_Population], tmp: Path
) -> tuple[list[Path], int]:
    paths = [tmp / "old.parquet", tmp / "new.parquet"]
    writers = [pq.ParquetWriter(p, RECORD_SCHEMA) for p in paths]
    n = 0
    try:
        for batch in batches:
            n += batch.num_rows
            for w, population in zip(writers, populations, strict=True):
                part = batch.filter(population.mask(batch))
                if part.num_rows:
                    w.write_batch(part)
    finally:
        for w in writers:
            w.close()
    return paths, n


def _titles(cat: Catalog, what: str) -> dict[str, str]:
    if what == "lists":
        return {code: d.title for code, d in cat.lists.items()}
    return {code: getattr(m, "title", code) for code, m in cat.measures.items()}


def compare(
    old_cat: Catalog,
    new_cat: Catalog,
    batches: Iterator[pa.RecordBatch],
    as_of: date,
    engine: str = "duckdb",
    others: list[Catalog] | None = None,
) -> DiffReport:
    """Score ``batches`` (records, :data:`RECORD_SCHEMA`) under both catalogs and count the changes.

    ``others``: the other catalogs loaded; a region that a more specific one serves is not in the
    population of OLD or NEW (pass none to apply both to every region their prefixes cover).
    """
    import duckdb

    started = time.perf_counter()
    cats = (_as_of_catalog(old_cat, as_of), _as_of_catalog(new_cat, as_of))
    with tempfile.TemporaryDirectory(prefix="socred-diff-") as tmp_name:
        tmp = Path(tmp_name)
        parts, n_records = _split(batches, [_Population(c, others or []) for c in cats], tmp)
        backend = _backend(engine, tmp / "spill")
        results = []
        for cat, part in zip(cats, parts, strict=True):
            if pq.ParquetFile(part).metadata.num_rows:
                table = backend.score(part, cat, as_of)
            else:
                from socred.engines.sql import OUTPUT_SCHEMA

                table = OUTPUT_SCHEMA.empty_table()
            results.append(table.select(["subject_id", "score", "grade", "lists", "measures"]))
        con = duckdb.connect(":memory:")
        try:
            con.register("o", results[0])
            con.register("n", results[1])
            con.execute(
                "CREATE TABLE j AS SELECT coalesce(o.subject_id, n.subject_id) AS subject_id, "
                "o.score AS s0, n.score AS s1, o.grade AS g0, n.grade AS g1, "
                "coalesce(o.lists, []) AS l0, coalesce(n.lists, []) AS l1, "
                "coalesce(o.measures, []) AS m0, coalesce(n.measures, []) AS m1 "
                "FROM o FULL OUTER JOIN n ON o.subject_id = n.subject_id"
            )
            subjects, scored_old, scored_new, changed, up, down, mean = con.execute(
                "SELECT count(*), count(g0), count(g1), "
                "count(*) FILTER (WHERE coalesce(g0, '') <> coalesce(g1, '')), "
                "count(*) FILTER (WHERE s1 > s0), count(*) FILTER (WHERE s1 < s0), "
                "coalesce(avg(s1 - s0), 0) FROM j"
            ).fetchone() or (0, 0, 0, 0, 0, 0, 0.0)
            transitions: dict[str, dict[str, int]] = {}
            for g0, g1, k in con.execute(
                "SELECT coalesce(g0, ?), coalesce(g1, ?), count(*) FROM j GROUP BY 1, 2",
                [NOT_SCORED, NOT_SCORED],
            ).fetchall():
                transitions.setdefault(str(g0), {})[str(g1)] = int(k)
            movements = {}
            for what, a, b in (("lists", "l0", "l1"), ("measures", "m0", "m1")):
                rows = con.execute(
                    f"WITH u AS (SELECT {a} AS x, {b} AS y FROM j WHERE len({a}) > 0 OR len({b}) > 0), "
                    f"c AS (SELECT unnest(list_distinct(list_concat(x, y))) AS code, x, y FROM u) "
                    "SELECT code, count(*) FILTER (WHERE list_contains(x, code)), "
                    "count(*) FILTER (WHERE list_contains(y, code)), "
                    "count(*) FILTER (WHERE list_contains(y, code) AND NOT list_contains(x, code)), "
                    "count(*) FILTER (WHERE list_contains(x, code) AND NOT list_contains(y, code)) "
                    "FROM c GROUP BY code ORDER BY code"
                ).fetchall()
                titles = {**_titles(cats[0], what), **_titles(cats[1], what)}
                found = {str(r[0]): r for r in rows}
                out = []
                for code in sorted({*titles, *found}):
                    r = found.get(code)
                    out.append(
                        Movement(
                            code,
                            titles.get(code, code),
                            *((int(r[1]), int(r[2]), int(r[3]), int(r[4])) if r else (0, 0, 0, 0)),
                        )
                    )
                movements[what] = out
        finally:
            con.close()
    order = [band.grade for band in sorted(cats[1].grades, key=lambda band: -band.min)]
    for band in sorted(cats[0].grades, key=lambda band: -band.min):
        if band.grade not in order:
            order.append(band.grade)
    seen = {g for row in transitions.values() for g in row} | set(transitions)
    grades = order + ([NOT_SCORED] if NOT_SCORED in seen else [])
    return DiffReport(
        old=old_cat.ref,
        new=new_cat.ref,
        as_of=as_of,
        engine=engine,
        records=n_records,
        subjects=int(subjects),
        scored_old=int(scored_old),
        scored_new=int(scored_new),
        grade_changed=int(changed),
        score_up=int(up),
        score_down=int(down),
        mean_delta=round(float(mean), 3),
        grades=grades,
        transitions=transitions,
        lists=movements["lists"],
        measures=movements["measures"],
        seconds=round(time.perf_counter() - started, 3),
    )


def catalog_diff(
    platform: Platform,
    old: str,
    new: str,
    as_of: date,
    engine: str = "duckdb",
    records: Path | None = None,
    whole: bool = False,
) -> DiffReport:
    """The preview over the platform's records projection (or an exported Parquet dataset).

    The population of each catalog is the subjects it would score among the active catalogs
    (``whole``: every subject its region prefixes cover, ignoring more specific catalogs).
    """
    old_cat = resolve_catalog(platform, old)
    new_cat = resolve_catalog(platform, new)
    others = [] if whole else platform.catalogs()
    batches = dataset_batches(records) if records is not None else stream_records(platform.engine)
    return compare(old_cat, new_cat, batches, as_of, engine, others)
