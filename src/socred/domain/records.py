"""Operations on credit records and the state they produce (records.md).

Pure functions: an operation (a mapping read from JSONL, CSV, Parquet or HTTP)
is validated against the current state of its record and the context of the
provider and the loaded catalogs, and either rejected with the field and a
clerk-actionable message, recognised as a duplicate, or turned into the
canonical ledger body and the record's new state. Replaying the ledger applies
the same :func:`apply_body`, so the projection can be rebuilt from the ledger
alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Literal

from socred.domain.ids import IdentifierError, parse_subject_id

OpName = Literal["submit", "correct", "retract", "repair"]
OPS: tuple[OpName, ...] = ("submit", "correct", "retract", "repair")

RECORD_ID_RE = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")
REGION_RE = re.compile(r"^[0-9]{6}$")

MAX_SUMMARY = 2000
MAX_NAME = 200
MAX_CASE_NUMBER = 128
MAX_REASON = 2000
MAX_ATTRIBUTES = 16_384  # bytes of canonical JSON

CORRECTABLE = ("subject_name", "category", "occurred_on", "case_number", "summary", "attributes")
KNOWN_FIELDS = frozenset(
    {
        "op",
        "record_id",
        "subject_id",
        "subject_name",
        "category",
        "occurred_on",
        "case_number",
        "summary",
        "region",
        "attributes",
        "reason",
        "repaired_on",
        "source",
    }
)


@dataclass(frozen=True, slots=True)
class RecordState:
    """A record as the projection holds it (corrections applied)."""

    source: str
    record_id: str
    subject_id: str
    kind: str
    subject_region: str
    subject_name: str
    category: str
    occurred_on: date
    case_number: str | None = None
    summary: str | None = None
    region: str | None = None
    attributes: Mapping[str, Any] | None = None
    retracted: bool = False
    retract_reason: str | None = None
    repaired_on: date | None = None
    repair_reason: str | None = None
    submit_body: str = ""  # canonical JSON of the original submission (idempotency)


@dataclass(frozen=True, slots=True)
class Rejection:
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class Accepted:
    op: OpName
    body: dict[str, Any]  # what goes into the ledger
    state: RecordState


@dataclass(frozen=True, slots=True)
class Duplicate:
    op: OpName


Outcome = Accepted | Duplicate | Rejection


@dataclass(frozen=True, slots=True)
class Context:
    """What validation needs to know besides the record itself."""

    source: str
    authorized: frozenset[str]  # category codes the provider may submit
    kinds_by_category: Mapping[str, frozenset[str]]  # over all loaded catalogs
    today: date
    extra: dict[str, Any] = field(default_factory=dict)


class _Reject(Exception):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


# ------------------------------------------------------------------ field readers


def _present(raw: Mapping[str, Any], key: str) -> bool:
    v = raw.get(key)
    return v is not None and not (isinstance(v, str) and v.strip() == "")


def _text(raw: Mapping[str, Any], key: str, limit: int, *, required: bool) -> str | None:
    if not _present(raw, key):
        if required:
            raise _Reject(key, f"{key} is required")
        return None
    v = raw[key]
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise _Reject(key, f"{key} must be text, got {type(v).__name__}")
    s = str(v).strip()
    if len(s) > limit:
        raise _Reject(key, f"{key} is {len(s)} characters long; at most {limit} are allowed")
    _check_chars(s, key)
    return s


def _check_chars(s: str, key: str) -> None:
    """Text must be storable everywhere: no NUL characters, no lone surrogates."""
    if "\x00" in s:
        raise _Reject(key, f"{key} contains a NUL character")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise _Reject(key, f"{key} is not valid Unicode text (it contains a lone surrogate)") from None


def parse_date(v: Any, key: str) -> date:
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    if not isinstance(v, str):
        raise _Reject(key, f"{key} must be a date YYYY-MM-DD, got {v!r}")
    s = v.strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        raise _Reject(key, f"{key} must be a date written YYYY-MM-DD, got {s!r}")
    try:
        return date.fromisoformat(s)
    except ValueError:
        raise _Reject(key, f"{key} {s!r} is not a real calendar date") from None


def _date_field(raw: Mapping[str, Any], key: str, today: date, *, required: bool) -> date | None:
    if not _present(raw, key):
        if required:
            raise _Reject(key, f"{key} is required")
        return None
    d = parse_date(raw[key], key)
    if d > today:
        raise _Reject(key, f"{key} {d.isoformat()} is in the future (today is {today.isoformat()})")
    return d


def _record_id(raw: Mapping[str, Any]) -> str:
    if not _present(raw, "record_id"):
        raise _Reject("record_id", "record_id is required")
    v = raw["record_id"]
    if isinstance(v, bool) or not isinstance(v, str | int):
        raise _Reject("record_id", f"record_id must be text, got {type(v).__name__}")
    s = str(v).strip()
    if not RECORD_ID_RE.match(s):
        if len(s) > 128:
            raise _Reject("record_id", f"record_id is {len(s)} characters long; at most 128 are allowed")
        bad = next((c for c in s if not re.match(r"[A-Za-z0-9._:/-]", c)), "?")
        raise _Reject("record_id", f"record_id may only use letters, digits and . _ : / - (found {bad!r})")
    return s


def _attributes(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    if not _present(raw, "attributes"):
        return None
    v = raw["attributes"]
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except json.JSONDecodeError as exc:
            raise _Reject(
                "attributes", f"attributes is not valid JSON: {exc.msg} at character {exc.pos}"
            ) from None
    if not isinstance(v, dict):
        raise _Reject("attributes", f"attributes must be a JSON object, got {type(v).__name__}")
    text = canonical(v)
    _check_chars(text, "attributes")  # NULs are escaped in JSON text; lone surrogates are not
    if len(text.encode()) > MAX_ATTRIBUTES:
        raise _Reject("attributes", f"attributes is larger than {MAX_ATTRIBUTES} bytes")
    return v


def _category(code_raw: Mapping[str, Any], kind: str, ctx: Context) -> str:
    code = _text(code_raw, "category", 64, required=True)
    assert code is not None
    code = code.upper()
    kinds = ctx.kinds_by_category.get(code)
    if kinds is None:
        raise _Reject("category", f"unknown category {code!r}: it is defined in no loaded catalog")
    if code not in ctx.authorized:
        raise _Reject("category", f"category {code!r} is not authorized for provider {ctx.source!r}")
    if kind not in kinds:
        plural = "persons" if kind == "person" else "organizations"
        raise _Reject(
            "category",
            f"category {code!r} does not apply to {plural}: no loaded catalog defines it for that kind",
        )
    return code


# ------------------------------------------------------------------ validation


def operation_name(raw: Mapping[str, Any]) -> OpName:
    op = raw.get("op")
    if op is None or (isinstance(op, str) and op.strip() == ""):
        return "submit"
    if not isinstance(op, str) or op.strip().lower() not in OPS:
        raise _Reject("op", f"op must be one of submit, correct, retract, repair; got {op!r}")
    return op.strip().lower()  # type: ignore[return-value]


def record_key(raw: Mapping[str, Any]) -> str | None:
    """The record_id an operation is about, if readable (for batch look-ups)."""
    v = raw.get("record_id")
    if isinstance(v, str | int) and not isinstance(v, bool):
        return str(v).strip()
    return None


def validate(raw: Mapping[str, Any], current: RecordState | None, ctx: Context) -> Outcome:
    """Validate one operation against its record's current state."""
    try:
        if not isinstance(raw, Mapping):
            raise _Reject("op", "an operation must be an object of fields")
        unknown = sorted(k for k in raw if k not in KNOWN_FIELDS)
        if unknown:
            raise _Reject(str(unknown[0]), f"unknown field {unknown[0]!r}")
        src = raw.get("source")
        if src is not None and str(src).strip() not in ("", ctx.source):
            raise _Reject("source", f"source {src!r} is not you: a provider may only submit its own records")
        op = operation_name(raw)
        if op == "submit":
            return _submit(raw, current, ctx)
        if current is None:
            rid = _record_id(raw)
            raise _Reject("record_id", f"unknown record {rid!r}: provider {ctx.source!r} never submitted it")
        if op == "correct":
            return _correct(raw, current, ctx)
        if op == "retract":
            return _retract(raw, current)
        return _repair(raw, current, ctx)
    except _Reject as r:
        return Rejection(r.field, r.message)


def _submit(raw: Mapping[str, Any], current: RecordState | None, ctx: Context) -> Outcome:
    rid = _record_id(raw)
    sid_raw = _text(raw, "subject_id", 64, required=True)
    assert sid_raw is not None
    try:
        sid = parse_subject_id(sid_raw, today=ctx.today)
    except IdentifierError as e:
        raise _Reject("subject_id", e.reason) from None
    name = _text(raw, "subject_name", MAX_NAME, required=True)
    category = _category(raw, sid.kind, ctx)
    occurred = _date_field(raw, "occurred_on", ctx.today, required=True)
    assert occurred is not None and name is not None
    case_number = _text(raw, "case_number", MAX_CASE_NUMBER, required=False)
    summary = _text(raw, "summary", MAX_SUMMARY, required=False)
    region = _text(raw, "region", 6, required=False)
    if region is not None and not REGION_RE.match(region):
        raise _Reject("region", f"region must be 6 digits (an administrative division code), got {region!r}")
    attributes = _attributes(raw)
    body: dict[str, Any] = {
        "op": "submit",
        "source": ctx.source,
        "record_id": rid,
        "subject_id": sid.value,
        "subject_name": name,
        "category": category,
        "occurred_on": occurred.isoformat(),
        "region": region or sid.region,
    }
    if case_number is not None:
        body["case_number"] = case_number
    if summary is not None:
        body["summary"] = summary
    if attributes is not None:
        body["attributes"] = attributes
    text = canonical(body)
    if current is not None:
        if current.submit_body == text:
            return Duplicate("submit")
        raise _Reject(
            "record_id",
            f"conflict: record {rid!r} was already submitted with different content; use op 'correct' to change it",
        )
    state = apply_body(None, body, submit_body=text)
    return Accepted("submit", body, state)


def _correct(raw: Mapping[str, Any], cur: RecordState, ctx: Context) -> Outcome:
    rid = cur.record_id
    if cur.retracted:
        raise _Reject(
            "record_id", f"record {rid!r} was retracted; submit a new record instead of correcting it"
        )
    if _present(raw, "subject_id"):
        try:
            sid = parse_subject_id(str(raw["subject_id"]), today=ctx.today)
        except IdentifierError as e:
            raise _Reject("subject_id", e.reason) from None
        if sid.value != cur.subject_id:
            raise _Reject(
                "subject_id",
                "the subject of a record cannot change: retract it and submit a new record instead",
            )
    if _present(raw, "region"):
        raise _Reject("region", "region cannot be corrected: retract the record and submit it anew")
    changes: dict[str, Any] = {}
    if _present(raw, "subject_name"):
        changes["subject_name"] = _text(raw, "subject_name", MAX_NAME, required=True)
    if _present(raw, "category"):
        changes["category"] = _category(raw, cur.kind, ctx)
    if _present(raw, "occurred_on"):
        occ = _date_field(raw, "occurred_on", ctx.today, required=True)
        assert occ is not None
        if cur.repaired_on is not None and cur.repaired_on < occ:
            raise _Reject(
                "occurred_on",
                f"occurred_on {occ.isoformat()} would be after the record's repair date {cur.repaired_on.isoformat()}",
            )
        changes["occurred_on"] = occ.isoformat()
    if _present(raw, "case_number"):
        changes["case_number"] = _text(raw, "case_number", MAX_CASE_NUMBER, required=True)
    if _present(raw, "summary"):
        changes["summary"] = _text(raw, "summary", MAX_SUMMARY, required=True)
    if _present(raw, "attributes"):
        changes["attributes"] = _attributes(raw)
    if not changes:
        raise _Reject(
            "op",
            "correct needs at least one of subject_name, category, occurred_on, case_number, summary, attributes",
        )
    body: dict[str, Any] = {"op": "correct", "source": ctx.source, "record_id": rid, **changes}
    new = apply_body(cur, body)
    if new == cur:
        return Duplicate("correct")
    return Accepted("correct", body, new)


def _retract(raw: Mapping[str, Any], cur: RecordState) -> Outcome:
    reason = _text(raw, "reason", MAX_REASON, required=True)
    if cur.retracted:
        return Duplicate("retract")
    body = {"op": "retract", "source": cur.source, "record_id": cur.record_id, "reason": reason}
    return Accepted("retract", body, apply_body(cur, body))


def _repair(raw: Mapping[str, Any], cur: RecordState, ctx: Context) -> Outcome:
    if cur.retracted:
        raise _Reject("record_id", f"record {cur.record_id!r} was retracted; there is nothing to repair")
    repaired = _date_field(raw, "repaired_on", ctx.today, required=True)
    assert repaired is not None
    if repaired < cur.occurred_on:
        raise _Reject(
            "repaired_on",
            f"repaired_on {repaired.isoformat()} is before the record's occurred_on {cur.occurred_on.isoformat()}",
        )
    reason = _text(raw, "reason", MAX_REASON, required=True)
    if cur.repaired_on == repaired:
        return Duplicate("repair")
    body = {
        "op": "repair",
        "source": cur.source,
        "record_id": cur.record_id,
        "repaired_on": repaired.isoformat(),
        "reason": reason,
    }
    return Accepted("repair", body, apply_body(cur, body))


# ------------------------------------------------------------------ replay


def apply_body(
    cur: RecordState | None, body: Mapping[str, Any], submit_body: str | None = None
) -> RecordState:
    """Apply one ledger body to a record's state: the single definition used by ingestion and replay."""
    op = body["op"]
    if op == "submit":
        sid = parse_subject_id(body["subject_id"], today=date.max)
        return RecordState(
            source=body["source"],
            record_id=body["record_id"],
            subject_id=sid.value,
            kind=sid.kind,
            subject_region=sid.region,
            subject_name=body["subject_name"],
            category=body["category"],
            occurred_on=date.fromisoformat(body["occurred_on"]),
            case_number=body.get("case_number"),
            summary=body.get("summary"),
            region=body.get("region"),
            attributes=body.get("attributes"),
            submit_body=submit_body if submit_body is not None else canonical(dict(body)),
        )
    if cur is None:
        raise ValueError(f"{op} of record {body.get('record_id')!r} before its submission")
    if op == "correct":
        changes: dict[str, Any] = {}
        for k in CORRECTABLE:
            if k in body:
                changes[k] = date.fromisoformat(body[k]) if k == "occurred_on" else body[k]
        return replace(cur, **changes)
    if op == "retract":
        return replace(cur, retracted=True, retract_reason=body.get("reason"))
    if op == "repair":
        return replace(
            cur, repaired_on=date.fromisoformat(body["repaired_on"]), repair_reason=body.get("reason")
        )
    raise ValueError(f"unknown operation {op!r}")
