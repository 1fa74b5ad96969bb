"""Catalogs: the versioned scoring policy, as data (scoring.md, "Catalog file").

A catalog is parsed from a plain mapping (the YAML document) into frozen
dataclasses. Parsing validates every rule of the spec and fails with a
:class:`CatalogError` whose message names the offending entry. Nothing here
does I/O: reading the file is the caller's business.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

Domain = Literal["government", "commercial", "social", "judicial"]
SubjectKind = Literal["person", "organization"]
Severity = Literal["minor", "general", "serious"]

DOMAINS: tuple[Domain, ...] = ("government", "commercial", "social", "judicial")
SUBJECT_KINDS: tuple[SubjectKind, ...] = ("person", "organization")
SEVERITIES: tuple[Severity, ...] = ("minor", "general", "serious")

# Default publicity windows (days) per severity, after the 2026 national credit repair measures.
# minor: never published; general: at least 3 months, at most 1 year; serious: 1 to 3 years.
PUBLICITY_DAYS: dict[str, tuple[int, int]] = {
    "minor": (0, 0),
    "general": (90, 365),
    "serious": (365, 1095),
}

#: The longest ``valid_for`` or ``duration`` a catalog may set (scoring.md): 100 years of days.
MAX_DAYS = 36_500

_CATALOG_ID = re.compile(r"^[a-z0-9-]+$")
_CODE = re.compile(r"^[A-Z0-9_]+$")
_ACTIVITY = re.compile(r"^[a-z0-9_]+$")


class CatalogError(ValueError):
    """A catalog breaks a rule of the format; the message names the entry."""


@dataclass(frozen=True, slots=True)
class GradeBand:
    grade: str
    min: int


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    title: str
    domain: Domain
    subjects: frozenset[SubjectKind]
    points: int
    valid_for: int
    legal_basis: str
    public: bool = True
    lists: tuple[str, ...] = ()
    max_count: int | None = None
    severity: Severity = "general"


@dataclass(frozen=True, slots=True)
class ListDef:
    code: str
    kind: Literal["black", "red"]
    title: str
    measures: tuple[str, ...] = ()
    duration: int | None = None  # record-triggered lists
    grades: tuple[str, ...] | None = None  # grade-triggered lists
    legal_basis: str = ""

    @property
    def record_triggered(self) -> bool:
        return self.duration is not None


@dataclass(frozen=True, slots=True)
class Measure:
    code: str
    activity: str
    effect: Literal["restrict", "benefit"]
    title: str
    legal_basis: str = ""


@dataclass(frozen=True, slots=True)
class Catalog:
    id: str
    version: int
    title: str
    regions: tuple[str, ...]
    effective_from: date
    base_score: int
    score_bounds: tuple[int, int]
    grades: tuple[GradeBand, ...]
    categories: Mapping[str, Category]
    lists: Mapping[str, ListDef]
    measures: Mapping[str, Measure]
    objection_days: int = 15
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: The catalog as every answer names it: ``id@version``.
    ref: str = field(init=False, compare=False, repr=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "ref", f"{self.id}@{self.version}")

    def clamp(self, score: int) -> int:
        lo, hi = self.score_bounds
        return max(lo, min(hi, score))

    def grade_for(self, score: int) -> str:
        for band in self.grades:
            if band.min <= score:
                return band.grade
        return self.grades[-1].grade  # unreachable for clamped scores: the last band is the lower bound

    def category_for(self, code: str, kind: str) -> Category | None:
        """The category if this catalog defines it for subjects of ``kind``."""
        cat = self.categories.get(code)
        if cat is None or kind not in cat.subjects:
            return None
        return cat

    def serves_kind(self, kind: str) -> bool:
        """True when at least one category applies to subjects of ``kind``."""
        return any(kind in c.subjects for c in self.categories.values())

    def serves_region(self, region: str) -> int | None:
        """Length of the longest prefix in ``regions`` that matches ``region``, or None."""
        best: int | None = None
        for prefix in self.regions:
            if region.startswith(prefix) and (best is None or len(prefix) > best):
                best = len(prefix)
        return best


# ---------------------------------------------------------------- parsing


def _where(kind: str, index: int, code: object) -> str:
    if isinstance(code, str) and code:
        return f"{kind} {code!r}"
    return f"{kind} #{index + 1}"


def _req(entry: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in entry or entry[key] is None:
        raise CatalogError(f"{where}: missing required field {key!r}")
    return entry[key]


def _int(value: Any, where: str, key: str, *, positive: bool = False, nonneg: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CatalogError(f"{where}: {key} must be an integer, got {value!r}")
    if positive and value <= 0:
        raise CatalogError(f"{where}: {key} must be a positive integer, got {value}")
    if nonneg and value < 0:
        raise CatalogError(f"{where}: {key} must not be negative, got {value}")
    return value


def _days(value: Any, where: str, key: str) -> int:
    """A number of days from 1 to :data:`MAX_DAYS` (scoring.md bounds ``valid_for`` and ``duration``)."""
    days = _int(value, where, key, positive=True)
    if days > MAX_DAYS:
        raise CatalogError(f"{where}: {key} must be at most {MAX_DAYS:,} days (100 years), got {days:,}")
    return days


def _str(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str):
        raise CatalogError(f"{where}: {key} must be a string, got {value!r}")
    return value


def _date(value: Any, where: str, key: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise CatalogError(f"{where}: {key} must be a date YYYY-MM-DD, got {value!r}")


def _str_list(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise CatalogError(f"{where}: {key} must be a list, got {value!r}")
    out = []
    for item in value:
        out.append(_str(item, where, key))
    return tuple(out)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CatalogError(f"{where}: must be a mapping, got {type(value).__name__}")
    return value


def _entries(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise CatalogError(f"{key} must be a list")
    return [
        _mapping(item, _where(key[:-1] if key != "categories" else "category", i, None))
        for i, item in enumerate(value)
    ]


def parse_catalog(data: Any) -> Catalog:
    """Validate a catalog document and build the model, or raise CatalogError naming the entry."""
    doc = _mapping(data, "catalog")
    cat_id = _str(_req(doc, "id", "catalog"), "catalog", "id")
    if not _CATALOG_ID.match(cat_id):
        raise CatalogError(f"catalog: id {cat_id!r} must match [a-z0-9-]+")
    version = _int(_req(doc, "version", "catalog"), "catalog", "version", positive=True)
    title = str(doc.get("title") or cat_id)
    regions = _str_list(_req(doc, "regions", "catalog"), "catalog", "regions")
    if not regions:
        raise CatalogError('catalog: regions must list at least one region prefix ("" serves every region)')
    for r in regions:
        if not (r == "" or (r.isdigit() and r.isascii() and len(r) <= 6)):
            raise CatalogError(f'catalog: region prefix {r!r} must be up to 6 digits, or "" for every region')
    effective_from = _date(_req(doc, "effective_from", "catalog"), "catalog", "effective_from")
    base_score = _int(_req(doc, "base_score", "catalog"), "catalog", "base_score")
    bounds_raw = _req(doc, "score_bounds", "catalog")
    if not isinstance(bounds_raw, list) or len(bounds_raw) != 2:
        raise CatalogError(f"catalog: score_bounds must be [low, high], got {bounds_raw!r}")
    lo = _int(bounds_raw[0], "catalog", "score_bounds[0]")
    hi = _int(bounds_raw[1], "catalog", "score_bounds[1]")
    if lo > hi:
        raise CatalogError(f"catalog: score_bounds low {lo} is above high {hi}")
    objection_days = _int(doc.get("objection_days", 15), "catalog", "objection_days", positive=True)

    # grades
    grades_raw = _req(doc, "grades", "catalog")
    if not isinstance(grades_raw, list) or not grades_raw:
        raise CatalogError("catalog: grades must be a non-empty list of {grade, min}")
    grades: list[GradeBand] = []
    seen_grades: set[str] = set()
    for i, g in enumerate(grades_raw):
        gm = _mapping(g, f"grade band #{i + 1}")
        name = _str(_req(gm, "grade", f"grade band #{i + 1}"), f"grade band #{i + 1}", "grade")
        where = f"grade {name!r}"
        gmin = _int(_req(gm, "min", where), where, "min")
        if name in seen_grades:
            raise CatalogError(f"{where}: duplicate grade")
        seen_grades.add(name)
        if grades and gmin >= grades[-1].min:
            raise CatalogError(
                f"{where}: min {gmin} must be strictly below the previous band's min {grades[-1].min} "
                "(bands are listed highest first)"
            )
        grades.append(GradeBand(name, gmin))
    if grades[-1].min != lo:
        raise CatalogError(
            f"grade {grades[-1].grade!r}: the last band's min {grades[-1].min} must equal the lower score bound {lo}"
        )

    # measures
    measures: dict[str, Measure] = {}
    for i, m in enumerate(_entries(doc, "measures")):
        where = _where("measure", i, m.get("code"))
        code = _str(_req(m, "code", where), where, "code")
        if not _CODE.match(code):
            raise CatalogError(f"{where}: code must match [A-Z0-9_]+")
        if code in measures:
            raise CatalogError(f"{where}: duplicate measure code")
        activity = _str(_req(m, "activity", where), where, "activity")
        if not _ACTIVITY.match(activity):
            raise CatalogError(f"{where}: activity {activity!r} must match [a-z0-9_]+")
        effect = _req(m, "effect", where)
        if effect not in ("restrict", "benefit"):
            raise CatalogError(f"{where}: effect must be restrict or benefit, got {effect!r}")
        measures[code] = Measure(
            code=code,
            activity=activity,
            effect=effect,
            title=str(m.get("title") or code),
            legal_basis=str(m.get("legal_basis") or ""),
        )

    # lists
    lists: dict[str, ListDef] = {}
    for i, li in enumerate(_entries(doc, "lists")):
        where = _where("list", i, li.get("code"))
        code = _str(_req(li, "code", where), where, "code")
        if not _CODE.match(code):
            raise CatalogError(f"{where}: code must match [A-Z0-9_]+")
        if code in lists:
            raise CatalogError(f"{where}: duplicate list code")
        kind = _req(li, "kind", where)
        if kind not in ("black", "red"):
            raise CatalogError(f"{where}: kind must be black or red, got {kind!r}")
        has_duration = li.get("duration") is not None
        has_grades = li.get("grades") is not None
        if has_duration == has_grades:
            raise CatalogError(
                f"{where}: a list has either duration (record-triggered) or grades (grade-triggered), "
                + ("not both" if has_duration else "and this one has neither")
            )
        duration = _days(li["duration"], where, "duration") if has_duration else None
        lgrades: tuple[str, ...] | None = None
        if has_grades:
            lgrades = _str_list(li["grades"], where, "grades")
            if not lgrades:
                raise CatalogError(f"{where}: grades must name at least one grade")
            for g in lgrades:
                if g not in seen_grades:
                    raise CatalogError(f"{where}: grade {g!r} is not defined in grades")
        lmeasures = _str_list(li.get("measures"), where, "measures")
        for mc in lmeasures:
            if mc not in measures:
                raise CatalogError(f"{where}: measure {mc!r} is referenced but not defined")
        if len(set(lmeasures)) != len(lmeasures):
            raise CatalogError(f"{where}: a measure is listed twice")
        lists[code] = ListDef(
            code=code,
            kind=kind,
            title=str(li.get("title") or code),
            measures=lmeasures,
            duration=duration,
            grades=lgrades,
            legal_basis=str(li.get("legal_basis") or ""),
        )

    # categories
    categories: dict[str, Category] = {}
    for i, c in enumerate(_entries(doc, "categories")):
        where = _where("category", i, c.get("code"))
        code = _str(_req(c, "code", where), where, "code")
        if not _CODE.match(code):
            raise CatalogError(f"{where}: code must match [A-Z0-9_]+")
        if code in categories:
            raise CatalogError(f"{where}: duplicate category code")
        domain = _req(c, "domain", where)
        if domain not in DOMAINS:
            raise CatalogError(
                f"{where}: unknown domain {domain!r} (government, commercial, social, judicial)"
            )
        subjects = _str_list(_req(c, "subjects", where), where, "subjects")
        if not subjects:
            raise CatalogError(f"{where}: subjects must name person, organization or both")
        for s in subjects:
            if s not in SUBJECT_KINDS:
                raise CatalogError(f"{where}: unknown subject kind {s!r} (person, organization)")
        points = _int(_req(c, "points", where), where, "points")
        if points == 0:
            raise CatalogError(f"{where}: points must be non-zero")
        valid_for = _days(_req(c, "valid_for", where), where, "valid_for")
        max_count = c.get("max_count")
        if max_count is not None:
            max_count = _int(max_count, where, "max_count", positive=True)
        clists = _str_list(c.get("lists"), where, "lists")
        for lc in clists:
            if lc not in lists:
                raise CatalogError(f"{where}: list {lc!r} is referenced but not defined")
            if not lists[lc].record_triggered:
                raise CatalogError(f"{where}: list {lc!r} is grade-triggered; a category cannot name it")
        if len(set(clists)) != len(clists):
            raise CatalogError(f"{where}: a list is named twice")
        severity = c.get("severity", "general")
        if severity not in SEVERITIES:
            raise CatalogError(f"{where}: severity must be minor, general or serious, got {severity!r}")
        public = c.get("public", True)
        if not isinstance(public, bool):
            raise CatalogError(f"{where}: public must be true or false, got {public!r}")
        categories[code] = Category(
            code=code,
            title=str(c.get("title") or code),
            domain=domain,
            subjects=frozenset(subjects),  # type: ignore[arg-type]
            points=points,
            valid_for=valid_for,
            legal_basis=str(c.get("legal_basis") or ""),
            public=public,
            lists=clists,
            max_count=max_count,
            severity=severity,
        )

    return Catalog(
        id=cat_id,
        version=version,
        title=title,
        regions=regions,
        effective_from=effective_from,
        base_score=base_score,
        score_bounds=(lo, hi),
        grades=tuple(grades),
        categories=categories,
        lists=lists,
        measures=measures,
        objection_days=objection_days,
        raw=dict(doc),
    )


def kinds_by_category(catalogs: Iterable[Catalog]) -> dict[str, frozenset[SubjectKind]]:
    """Each category code with the subject kinds any of ``catalogs`` allows for it (ingestion checks)."""
    out: dict[str, set[SubjectKind]] = {}
    for c in catalogs:
        for code, cat in c.categories.items():
            out.setdefault(code, set()).update(cat.subjects)
    return {k: frozenset(v) for k, v in out.items()}
