"""The batch scoring query, written once as SQL over small catalog relations (scoring.md).

:func:`build_query` turns a :class:`~socred.domain.catalog.Catalog` and a date into

* a handful of **catalog relations** (Arrow tables of at most a few hundred rows, see
  :func:`catalog_relations`): what a record of each (category, kind) does at the date, the
  categories with ``max_count``, the lists as bits, the list→measure links, the grade bands
  and the grade→list links; and
* one **query** over those relations and the records relation: a short pipeline of named
  steps and two result SELECTs (below).

The SQL is portable: the same text runs on DuckDB and on Spark SQL. It uses joins,
``GROUP BY``, ``UNION ALL``, ``SUM``/``MIN``/``COUNT``/``BIT_OR``, ``&``,
``GREATEST``/``LEAST``, ``CAST`` to ``STRING``/``DATE``/``BOOLEAN``/``BIGINT``,
``ROW_NUMBER()`` over a few rows and ``array_sort(array_agg(DISTINCT ...) FILTER (WHERE
...))``, which the two engines spell
alike; the one hint (``/*+ BROADCAST */``) is a comment to DuckDB. There is no day
arithmetic in SQL: "``T < occurred_on + N``" is evaluated as "``occurred_on >= T - N + 1``"
with ``T - N + 1`` computed here, in Python, as a date column of the catalog relations, so
the engines cannot disagree about dates. No string comparison other than equality is
needed (see step 1 below), so collations play no part; the final order by ``subject_id``
is made by Arrow, in code-point order.

The pipeline (each step a view, or a table where two statements read it):

1. ``capped`` (only when a category sets ``max_count``): per (subject, kind, category),
   ``min(n, max_count) * points`` over its n counting records. All records of a category
   carry the same points in the same domain, so this is exactly the sum over the
   ``max_count`` most recent ones; which ones are kept matters for explanations only, so
   no ranking (and no string ordering of ``record_id``) is needed.
2. ``base``: one pass over every record, left-joined to the rules it triggers at T: each
   counting rule adds its points to its domain, each list rule sets its list's bit in the
   masks ``m0``, ``m1``, ... (62 lists a word); ``capped`` rows join the same grouping. A
   record that neither counts nor lists still yields its subject (who gets the base score).
3. ``scored``: the subtotals (0 where none) and the score clamped into the bounds.
4. ``combo``: the distinct (score, masks) combinations, numbered 0, 1, ..., with their
   grade; ``onlist``: the lists of each (the bits set, and the grade-triggered lists of
   its grade). There are few combinations, so this is cheap.

Then two SELECTs: ``rows``, every scored subject with its combination number, and
``combos``, each combination's grade and sorted list and measure codes. :func:`finalize`,
which both runners apply, sorts the rows by ``subject_id`` (code-point order), looks up
the grade, lists and measures of each row, casts to :data:`OUTPUT_SCHEMA`, and refuses a
subject whose records disagree about its kind.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc

from socred.domain.catalog import SUBJECT_KINDS, Catalog

__all__ = [
    "OUTPUT_SCHEMA",
    "RECORD_COLUMNS",
    "BatchQuery",
    "build_query",
    "catalog_relations",
    "check_effective",
    "empty_result",
    "finalize",
]

#: Columns the records relation must have (extra columns are ignored).
RECORD_COLUMNS: tuple[str, ...] = (
    "record_id",
    "source",
    "subject_id",
    "kind",
    "category",
    "occurred_on",
    "retracted",
    "repaired_on",
)

#: The batch result: one row per subject, sorted by ``subject_id`` (cli.md, ``score-all``).
OUTPUT_SCHEMA = pa.schema(
    [
        ("subject_id", pa.string()),
        ("kind", pa.string()),
        ("catalog", pa.string()),
        ("as_of", pa.date32()),
        ("score", pa.int64()),
        ("grade", pa.string()),
        ("government", pa.int64()),
        ("commercial", pa.int64()),
        ("social", pa.int64()),
        ("judicial", pa.int64()),
        ("lists", pa.list_(pa.string())),
        ("measures", pa.list_(pa.string())),
    ]
)

_DOMAIN_COLS = {"government": "gov", "commercial": "com", "social": "soc", "judicial": "jud"}
_POINTS = ("gov", "com", "soc", "jud")

#: Lists per mask word: bits 0..61 keep every mask a positive BIGINT on both engines.
BITS_PER_WORD = 62

CAPPED_SCHEMA = pa.schema(
    [
        ("code", pa.string()),
        ("kind", pa.string()),
        ("min_occ", pa.date32()),
        ("max_count", pa.int64()),
        *((p, pa.int64()) for p in _POINTS),
    ]
)
LIST_BIT_SCHEMA = pa.schema([("word", pa.int64()), ("bit", pa.int64()), ("list_code", pa.string())])
LIST_MEASURE_SCHEMA = pa.schema([("list_code", pa.string()), ("measure", pa.string())])
GRADE_SCHEMA = pa.schema([("grade", pa.string()), ("lo", pa.int64()), ("hi", pa.int64())])
GRADE_LIST_SCHEMA = pa.schema([("grade", pa.string()), ("list_code", pa.string())])


def _rule_schema(words: int) -> pa.Schema:
    return pa.schema(
        [
            ("code", pa.string()),
            ("kind", pa.string()),
            ("min_occ", pa.date32()),
            *((p, pa.int64()) for p in _POINTS),
            *((f"m{w}", pa.int64()) for w in range(words)),
        ]
    )


@dataclass(frozen=True, slots=True)
class Step:
    """One named stage of the query: a SELECT over the relations, the records and earlier steps.

    ``materialize`` marks a stage read by both result statements (or several times by one):
    an engine should compute it once and keep it. ``small`` says it has a handful of rows,
    so it may as well be kept when first computed rather than computed ahead.
    """

    name: str
    sql: str
    materialize: bool = False
    small: bool = False


@dataclass(frozen=True, slots=True)
class BatchQuery:
    """The batch query for one catalog and date: a pipeline of steps and two result SELECTs.

    A runner creates each step in order as a view (or, when ``materialize`` is set, as a
    table or a cached relation) under its name, then runs ``rows``, one row per (subject,
    kind) with the index of its combination, and ``combos``, the grade, lists and measures
    of each combination, ordered by that index; :func:`finalize` puts the two together.

    ``records`` is the name under which the runner must expose the records relation;
    ``relations`` maps further relation names to the Arrow tables to expose under them.
    All names carry a per-query suffix, so several queries can share one engine session.
    """

    steps: tuple[Step, ...]
    rows: str
    combos: str
    records: str
    relations: dict[str, pa.Table] = field(default_factory=dict)

    @property
    def rows_sorted(self) -> str:
        """``rows`` ordered by ``subject_id``, for an engine that sorts faster than Arrow.

        (DuckDB does; for Spark, a global sort costs a sampling job and a range shuffle.)
        """
        return f"{self.rows}\nORDER BY subject_id"

    def script(self) -> str:
        """The whole query as one SQL script, for reading and debugging."""
        parts = [
            f"CREATE TEMP {'TABLE' if s.materialize else 'VIEW'} {s.name} AS\n{s.sql};" for s in self.steps
        ]
        return "\n\n".join([*parts, self.rows + ";", self.combos + ";"])


def check_effective(catalog: Catalog, as_of: date) -> None:
    """Refuse a date before the catalog takes effect (scoring.md: fail, do not invent a score)."""
    if catalog.effective_from > as_of:
        raise ValueError(
            f"catalog {catalog.ref} takes effect on {catalog.effective_from.isoformat()}, "
            f"so it cannot score as of {as_of.isoformat()}."
        )


def _first_day_counting(as_of: date, days: int) -> date:
    """The earliest ``occurred_on`` with ``as_of < occurred_on + days``: ``as_of - days + 1``."""
    ordinal = as_of.toordinal() - days + 1
    return date.fromordinal(max(ordinal, 1))


def mask_words(catalog: Catalog) -> int:
    """How many BIGINT mask words the record-triggered lists of ``catalog`` need."""
    n = sum(1 for ld in catalog.lists.values() if ld.record_triggered)
    return -(-n // BITS_PER_WORD)


def catalog_relations(catalog: Catalog, as_of: date) -> dict[str, pa.Table]:
    """The catalog as small relations, keyed by their base names.

    * ``rule``: what a record of (category, kind) does at ``as_of`` when its ``occurred_on``
      is on or after ``min_occ``. A *counting* row (categories without ``max_count``) holds
      the points in ``gov``/``com``/``soc``/``jud`` (the category's domain; 0 in the other
      three) and ``min_occ`` = ``as_of - valid_for + 1``. A *list* row (one per list the
      category names) holds no points, the list's bit in the mask words ``m0``, ``m1``, ...
      and ``min_occ`` = ``as_of - duration + 1``.
    * ``capped``: the counting rows of categories that set ``max_count``, with it.
    * ``list_bit``: (word, bit, list) for every record-triggered list.
    * ``list_measure``: (list, measure) for every list.
    * ``grade``: each band's half-open score range ``[lo, hi)``.
    * ``grade_list``: (grade, grade-triggered list that lists it).
    """
    words = mask_words(catalog)
    bit_of: dict[str, tuple[int, int]] = {}
    for ld in catalog.lists.values():
        if ld.record_triggered:
            i = len(bit_of)
            bit_of[ld.code] = (i // BITS_PER_WORD, 1 << (i % BITS_PER_WORD))
    no_points = dict.fromkeys(_POINTS, 0)
    no_bits = {f"m{w}": 0 for w in range(words)}
    rule_rows: list[dict[str, object]] = []
    capped_rows: list[dict[str, object]] = []
    for cat in catalog.categories.values():
        points = {**no_points, _DOMAIN_COLS[cat.domain]: cat.points}
        counts_from = _first_day_counting(as_of, cat.valid_for)
        for kind in SUBJECT_KINDS:
            if kind not in cat.subjects:
                continue
            key = {"code": cat.code, "kind": kind}
            if cat.max_count is None:
                rule_rows.append({**key, "min_occ": counts_from, **points, **no_bits})
            else:
                capped_rows.append({**key, "min_occ": counts_from, "max_count": cat.max_count, **points})
            for list_code in cat.lists:
                duration = catalog.lists[list_code].duration
                if duration is None:  # parse_catalog forbids naming a grade-triggered list
                    continue
                word, bit = bit_of[list_code]
                rule_rows.append(
                    {
                        **key,
                        "min_occ": _first_day_counting(as_of, duration),
                        **no_points,
                        **no_bits,
                        f"m{word}": bit,
                    }
                )
    list_bit_rows = [{"word": w, "bit": b, "list_code": code} for code, (w, b) in bit_of.items()]
    measure_rows = [
        {"list_code": ld.code, "measure": m}
        for ld in catalog.lists.values()
        for m in dict.fromkeys(ld.measures)
    ]
    hi_bound = catalog.score_bounds[1]
    grade_rows: list[dict[str, object]] = []
    upper = max(hi_bound, catalog.grades[0].min) + 1  # scores are clamped: nothing reaches it
    for band in catalog.grades:
        grade_rows.append({"grade": band.grade, "lo": band.min, "hi": upper})
        upper = band.min
    grade_list_rows = [
        {"grade": g, "list_code": ld.code}
        for ld in catalog.lists.values()
        if ld.grades is not None
        for g in dict.fromkeys(ld.grades)
    ]
    return {
        "rule": pa.Table.from_pylist(rule_rows, schema=_rule_schema(words)),
        "capped": pa.Table.from_pylist(capped_rows, schema=CAPPED_SCHEMA),
        "list_bit": pa.Table.from_pylist(list_bit_rows, schema=LIST_BIT_SCHEMA),
        "list_measure": pa.Table.from_pylist(measure_rows, schema=LIST_MEASURE_SCHEMA),
        "grade": pa.Table.from_pylist(grade_rows, schema=GRADE_SCHEMA),
        "grade_list": pa.Table.from_pylist(grade_list_rows, schema=GRADE_LIST_SCHEMA),
    }


def _src(records: str) -> str:
    """The records relation with the columns the query reads, typed (a no-op when already typed).

    ``record_id`` and ``source`` are not read: they identify records for explanations, and
    no sum depends on them. A record with a NULL ``subject_id`` belongs to no subject.
    """
    return (
        "(SELECT CAST(subject_id AS STRING) AS subject_id, CAST(kind AS STRING) AS kind, "
        "CAST(category AS STRING) AS category, CAST(occurred_on AS DATE) AS occurred_on, "
        "CAST(retracted AS BOOLEAN) AS retracted, CAST(repaired_on AS DATE) AS repaired_on "
        f"FROM {records} WHERE subject_id IS NOT NULL)"
    )


def _live(alias: str, t: str) -> str:
    """Not retracted, occurred on or before T, not repaired on or before T (spec steps 1 and 6).

    A NULL ``retracted`` is taken as not retracted.
    """
    return (
        f"({alias}.retracted IS NULL OR NOT {alias}.retracted) AND {alias}.occurred_on <= {t} "
        f"AND ({alias}.repaired_on IS NULL OR {alias}.repaired_on > {t})"
    )


def build_query(catalog: Catalog, as_of: date, suffix: str | None = None) -> BatchQuery:
    """The batch query scoring every subject of the records relation under ``catalog`` at ``as_of``.

    Raises ValueError when the catalog is not yet in effect on ``as_of``.
    """
    check_effective(catalog, as_of)
    sfx = suffix if suffix is not None else uuid.uuid4().hex[:12]
    rels = catalog_relations(catalog, as_of)
    name = {k: f"socred_k_{k}_{sfx}" for k in rels}
    records = f"socred_records_{sfx}"
    t = f"DATE '{as_of.isoformat()}'"
    ref = catalog.ref  # [a-z0-9-]+@digits: safe inside a literal
    base = int(catalog.base_score)
    lo, hi = (int(b) for b in catalog.score_bounds)
    src = _src(records)
    masks = [f"m{w}" for w in range(mask_words(catalog))]
    has_capped = rels["capped"].num_rows > 0
    has_grade_lists = rels["grade_list"].num_rows > 0

    def cols(prefix: str, names: list[str]) -> str:
        return "".join(f", {prefix}{n}" for n in names)

    step = {k: f"{k}_{sfx}" for k in ("capped", "base", "scored", "combo", "onlist")}
    steps: list[Step] = []

    # scoring.md step 2. A category with max_count counts per (subject, category): its records all carry
    # the same points in the same domain, so the max_count most recent of n counting records
    # move the subtotal by min(n, max_count) times the points (which of them are kept
    # matters for explanations, not for the sums).
    if has_capped:
        least = "LEAST(COUNT(*), MIN(c.max_count))"
        steps.append(
            Step(
                step["capped"],
                "  SELECT r.subject_id, r.kind, "
                + ", ".join(f"{least} * MIN(c.{p}) AS {p}" for p in _POINTS)
                + "".join(f", CAST(0 AS BIGINT) AS {m}" for m in masks)
                + f"\n  FROM {src} r\n"
                f"  JOIN {name['capped']} c ON r.category = c.code AND r.kind = c.kind\n"
                f"  WHERE r.occurred_on >= c.min_occ AND {_live('r', t)}\n"
                "  GROUP BY r.subject_id, r.kind, c.code",
            )
        )
    # Steps 1-3 and 6 of scoring.md in one pass over every record: the subject set, the domain subtotals
    # and the record-triggered lists as bit masks. A record joins the rules it triggers at T
    # (counting, and one per list it names); a record that neither counts nor lists joins
    # none and only yields its subject. The capped categories' sums join the same grouping.
    inputs = (
        f"SELECT r.subject_id, r.kind{cols('u.', [*_POINTS, *masks])}\n"
        f"    FROM {src} r\n"
        f"    LEFT JOIN {name['rule']} u\n"
        "      ON r.category = u.code AND r.kind = u.kind AND r.occurred_on >= u.min_occ\n"
        f"     AND {_live('r', t)}"
    )
    if has_capped:
        inputs += f"\n    UNION ALL\n    SELECT * FROM {step['capped']}"
    steps.append(
        Step(
            step["base"],
            "  SELECT subject_id, kind, "
            + ", ".join(f"SUM({p}) AS {p}" for p in _POINTS)
            + "".join(f", BIT_OR({m}) AS {m}" for m in masks)
            + f"\n  FROM (\n    {inputs}) x\n"
            "  GROUP BY subject_id, kind",
        )
    )
    # Steps 3-4: the subtotals (0 where nothing counts) and the clamped score.
    subtotals = "".join(f", CAST(COALESCE({c}, 0) AS BIGINT) AS {c}" for c in (*_POINTS, *masks))
    steps.append(
        Step(
            step["scored"],
            f"  SELECT s.*, CAST(GREATEST(CAST({lo} AS BIGINT), LEAST(CAST({hi} AS BIGINT),\n"
            f"         {base} + s.gov + s.com + s.soc + s.jud)) AS BIGINT) AS score\n"
            f"  FROM (SELECT subject_id, kind{subtotals} FROM {step['base']}) s",
            materialize=True,
        )
    )
    # Steps 5-8 depend on a subject only through its score and its list masks. There are few
    # distinct (score, masks) combinations: grade, lists and measures are worked out once per
    # combination, numbered 0, 1, ...; each subject row carries its combination's number.
    key = ["score", *masks]
    steps.append(
        Step(
            step["combo"],
            f"  SELECT d.*, g.grade, ROW_NUMBER() OVER (ORDER BY {', '.join(f'd.{k}' for k in key)}) - 1 AS combo\n"
            f"  FROM (SELECT DISTINCT {', '.join(key)} FROM {step['scored']}) d\n"
            f"  JOIN {name['grade']} g ON d.score >= g.lo AND d.score < g.hi",
            materialize=True,
            small=True,
        )
    )
    parts = [
        f"  SELECT c.combo, b.list_code FROM {step['combo']} c\n"
        f"  JOIN {name['list_bit']} b ON b.word = {w} AND (c.m{w} & b.bit) <> 0"
        for w in range(len(masks))
    ]
    if has_grade_lists:
        parts.append(
            f"  SELECT c.combo, gl.list_code FROM {step['combo']} c\n"
            f"  JOIN {name['grade_list']} gl ON c.grade = gl.grade"
        )
    if parts:
        steps.append(Step(step["onlist"], "\n  UNION ALL\n".join(parts)))
        combos = (
            "SELECT c.combo, MIN(c.grade) AS grade,\n"
            "       array_sort(array_agg(DISTINCT o.list_code) FILTER (WHERE o.list_code IS NOT NULL)) AS lists,\n"
            "       array_sort(array_agg(DISTINCT m.measure) FILTER (WHERE m.measure IS NOT NULL)) AS measures\n"
            f"FROM {step['combo']} c LEFT JOIN {step['onlist']} o ON o.combo = c.combo\n"
            f"LEFT JOIN {name['list_measure']} m ON m.list_code = o.list_code\n"
            "GROUP BY c.combo\n"
            "ORDER BY c.combo"
        )
    else:  # finalize() gives NULL lists as empty lists
        combos = f"SELECT combo, grade, NULL AS lists, NULL AS measures FROM {step['combo']} ORDER BY combo"
    join_key = " AND ".join(f"s.{k} = c.{k}" for k in key)
    rows = (
        f"SELECT /*+ BROADCAST(c) */ s.subject_id, s.kind, '{ref}' AS catalog, {t} AS as_of, s.score,\n"
        "       s.gov AS government, s.com AS commercial, s.soc AS social, s.jud AS judicial, c.combo\n"
        f"FROM {step['scored']} s JOIN {step['combo']} c ON {join_key}"
    )
    return BatchQuery(
        steps=tuple(steps),
        rows=rows,
        combos=combos,
        records=records,
        relations={name[k]: v for k, v in rels.items()},
    )


def _string_lists(col: pa.ChunkedArray) -> pa.ChunkedArray:
    typ = pa.list_(pa.string())
    col = col.cast(typ)
    if col.null_count:
        col = pc.call_function("if_else", [pc.call_function("is_null", [col]), pa.scalar([], typ), col])
    return col


def finalize(rows: pa.Table, combos: pa.Table) -> pa.Table:
    """The engine's two results as one :data:`OUTPUT_SCHEMA` table, sorted by ``subject_id``.

    ``rows`` has a row per (subject, kind) with its combination number, sorted or not;
    ``combos`` the grade, lists and measures of combination 0, 1, ... in order. Subjects
    end up in binary (code-point) order; "no list" (NULL) becomes an empty list. Two rows
    for one subject mean its records disagree about its kind: refused with a ValueError.
    """
    # The list columns are expanded after the sort, by a take from the few combinations.
    ids = rows.column("subject_id").combine_chunks()
    if len(ids) > 1:
        increasing = pc.call_function("greater", [ids.slice(1), ids.slice(0, len(ids) - 1)])
        if not pc.call_function("all", [increasing]).as_py():  # not sorted yet, or a subject twice
            order = pc.call_function("sort_indices", [ids])
            rows = rows.take(order)
            ids = ids.take(order)
            same = pc.call_function("equal", [ids.slice(1), ids.slice(0, len(ids) - 1)])
            if pc.call_function("any", [same]).as_py():
                first = pc.call_function("filter", [ids.slice(1), same])[0].as_py()
                raise ValueError(
                    f"subject {first} has records of more than one kind; "
                    "a subject is either a person or an organization."
                )
    numbers = combos.column("combo").to_pylist()
    if numbers != list(range(len(numbers))):
        raise RuntimeError("the engine returned the combinations out of order")
    index = rows.column("combo").combine_chunks()
    looked_up = {
        "grade": combos.column("grade").combine_chunks().take(index),
        "lists": _string_lists(combos.column("lists")).combine_chunks().take(index),
        "measures": _string_lists(combos.column("measures")).combine_chunks().take(index),
    }
    columns = [
        looked_up[f.name] if f.name in looked_up else rows.column(f.name).combine_chunks()
        for f in OUTPUT_SCHEMA
    ]
    return pa.Table.from_arrays(
        [c.cast(f.type) for c, f in zip(columns, OUTPUT_SCHEMA, strict=True)], schema=OUTPUT_SCHEMA
    )


def empty_result() -> pa.Table:
    return OUTPUT_SCHEMA.empty_table()
