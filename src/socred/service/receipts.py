"""Receipts: every check answer as it was given, kept so that anyone can reproduce it from the ledger.

One ``receipts`` row per request (a single check, or a batch of up to 10,000), written in the same
transaction before the answer leaves: who asked (the party), about what (activity, date), the ledger
size and head hash the answers were computed at, and the answers themselves, compactly — the
identifiers in order (18 bytes each), one uint16 per identifier pointing into the distinct answers
(each the ``check --json`` object of cli.md without its subject). A batch of 10,000 subjects most of
whom have nothing on file is therefore one row of about 200 kB, not 10,000 rows.

Receipt ids: ``rc_<ulid>`` for a single check, ``rb_<ulid>`` for a batch, whose answer ``n`` (from 1)
is ``rb_<ulid>.n``.

Each subject sees the checks about it in its access log (:func:`subject_checks`): single checks
through ``ix_receipts_subject``; batches through ``receipt_subjects``, which :func:`index_batches`
fills after the answers (``socred serve`` runs it every few seconds), and the batches not yet
indexed are searched directly — so the log is complete at every moment.
"""

from __future__ import annotations

import json
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from socred.domain.answers import check_answer
from socred.domain.catalog import parse_catalog
from socred.domain.ids import IdentifierError, parse_subject_id
from socred.domain.list_actions import ListAction
from socred.domain.records import apply_body, canonical
from socred.domain.scoring import ScoringRecord
from socred.service import federation
from socred.service.common import as_day
from socred.service.platform import NotFound, Platform
from socred.store import ledger, repo
from socred.store import schema_api as ta

__all__ = [
    "Answers",
    "SharedAnswer",
    "get_receipt",
    "index_batches",
    "list_receipts",
    "reproduce",
    "subject_checks",
    "write",
]

ID_WIDTH = 18  # every normalised identifier has 18 ASCII characters


class SharedAnswer(dict[str, Any]):
    """An answer many subjects share (nothing on file), with its canonical JSON computed once."""

    __slots__ = ("canonical",)

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(answer)
        self.canonical = canonical(self)


@dataclass
class Answers:
    """The answers of one request, as computed: the subjects in order and, for each, its answer
    without the subject (answers shared by many subjects are one object)."""

    subjects: list[str]
    templates: list[dict[str, Any]]

    def result(self, i: int) -> dict[str, Any]:
        return {"subject_id": self.subjects[i], **self.templates[i]}

    def restricted(self) -> int:
        return sum(1 for t in self.templates if t["decision"] == "restricted")

    def encode(self) -> tuple[bytes, bytes, str]:
        """(subjects, answers, classes) as the ``receipts`` row stores them."""
        by_object: dict[int, int] = {}
        by_text: dict[str, int] = {}
        classes: list[str] = []

        def klass(tpl: dict[str, Any]) -> int:
            text = tpl.canonical if isinstance(tpl, SharedAnswer) else canonical(tpl)
            k = by_text.get(text)
            if k is None:
                k = by_text[text] = len(classes)
                classes.append(text)
            by_object[id(tpl)] = k
            return k

        get = by_object.get
        index = array("H", [k if (k := get(id(tpl))) is not None else klass(tpl) for tpl in self.templates])
        if len(classes) > 65_535:
            raise ValueError("more than 65,535 distinct answers in one request")
        subjects = "".join(self.subjects).encode("ascii")
        if len(subjects) != ID_WIDTH * len(self.subjects):
            raise ValueError("receipts hold 18-character identifiers only")
        return subjects, _le(index).tobytes(), "[" + ",".join(classes) + "]"


def write(
    conn: Connection,
    rows: Sequence[tuple[str, str, str, date, str, int, str, Answers, bool]],
) -> None:
    """Insert receipts — (id, party, activity, at, issued_at, ledger_size, ledger_head, answers, batch) —
    in the caller's transaction (straight through the driver: a group of checks is one statement)."""
    if not rows:
        return
    values = []
    for rid, party, activity, at, issued_at, size, head, answers, batch in rows:
        subjects, index, classes = answers.encode()
        values.append(
            (
                rid,
                party,
                activity,
                at if conn.dialect.name == "postgresql" else at.isoformat(),
                issued_at,
                size,
                head,
                len(answers.subjects),
                answers.restricted(),
                None if batch else answers.subjects[0],
                subjects,
                index,
                classes,
            )
        )
    mark = "%s" if conn.dialect.name == "postgresql" else "?"
    cols = "id, party, activity, at, issued_at, ledger_size, ledger_head, n, restricted, subject_id, subjects, answers, classes"
    cur = repo.driver(conn).cursor()
    try:
        cur.executemany(f"INSERT INTO receipts ({cols}) VALUES ({', '.join([mark] * 13)})", values)
    finally:
        cur.close()


# ------------------------------------------------------------------ reading


def _le(a: array[int]) -> array[int]:
    """uint16 values as stored: little-endian whatever the machine."""
    if sys.byteorder == "big":
        a.byteswap()
    return a


def _template(row: Any, pos: int) -> dict[str, Any]:
    """The answer at position ``pos`` (from 0) of a receipts row, without its subject."""
    k = int.from_bytes(bytes(row.answers)[2 * pos : 2 * pos + 2], "little")
    classes: list[dict[str, Any]] = json.loads(row.classes)
    return classes[k]


def _subject_at(row: Any, pos: int) -> str:
    return bytes(row.subjects)[ID_WIDTH * pos : ID_WIDTH * pos + ID_WIDTH].decode("ascii")


def _answer(row: Any, pos: int) -> dict[str, Any]:
    """One answer of a receipts row as the API shows it (``pos`` from 0)."""
    batch = row.subject_id is None
    sid = _subject_at(row, pos)
    tpl = _template(row, pos)
    return {
        "id": f"{row.id}.{pos + 1}" if batch else row.id,
        "batch_id": row.id if batch else None,
        "party": row.party,
        "subject_id": sid,
        "activity": row.activity,
        "at": as_day(row.at).isoformat(),
        "decision": tpl["decision"],
        "catalog": tpl["catalog"],
        "ledger_size": int(row.ledger_size),
        "ledger_head": row.ledger_head,
        "issued_at": row.issued_at,
        "result": {"subject_id": sid, **tpl},
    }


def _split_id(receipt_id: str) -> tuple[str, int | None]:
    head, dot, tail = receipt_id.partition(".")
    if dot and tail.isdigit():
        return head, int(tail)
    return receipt_id, None


def get_receipt(platform: Platform, receipt_id: str) -> dict[str, Any]:
    platform.ensure_schema()
    rid, pos = _split_id(receipt_id)
    with platform.engine.connect() as conn:
        row = conn.execute(select(ta.receipts).where(ta.receipts.c.id == rid)).first()
    if row is None:
        raise NotFound(f"no receipt {receipt_id!r}")
    batch = row.subject_id is None
    if batch != (pos is not None) or (pos is not None and not 1 <= pos <= int(row.n)):
        raise NotFound(f"no receipt {receipt_id!r}")
    return _answer(row, (pos or 1) - 1)


def _expand(rows: Iterable[Any], limit: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for row in rows:
        for pos in range(int(row.n)):
            out.append(_answer(row, pos))
            if len(out) >= limit:
                return out
    return out


def list_receipts(
    platform: Platform,
    *,
    subject_id: str | None = None,
    party: str | None = None,
    batch_id: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Answers, newest first (a batch's in the order asked), of one subject, party or batch."""
    platform.ensure_schema()
    rc = ta.receipts
    with platform.engine.connect() as conn:
        if subject_id is not None:
            out = [
                a
                for a in subject_checks(conn, subject_id, limit=limit + 1)
                if (party is None or a["party"] == party) and (batch_id is None or a["batch_id"] == batch_id)
            ]
            return out[:limit]
        q = select(rc)
        if party is not None:
            q = q.where(rc.c.party == party)
        if batch_id is not None:
            q = q.where(rc.c.id == batch_id)
        rows = conn.execute(q.order_by(rc.c.issued_at.desc(), rc.c.id.desc()).limit(limit)).all()
        return _expand(rows, limit)


def subject_checks(
    conn: Connection, subject_id: str, *, limit: int = 100, before: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    """The answers about one subject, newest first, each as :func:`get_receipt` gives it; ``before`` =
    (issued_at, answer id) keeps only those strictly older in the order (issued_at, id)."""
    rc, rs = ta.receipts, ta.receipt_subjects
    found: dict[str, dict[str, Any]] = {}

    def older(a: dict[str, Any]) -> bool:
        return before is None or (a["issued_at"], a["id"]) < before

    q = select(rc).where(rc.c.subject_id == subject_id)
    if before is not None:
        q = q.where(rc.c.issued_at <= before[0])
    for row in conn.execute(q.order_by(rc.c.issued_at.desc(), rc.c.id.desc()).limit(limit + 1)):
        a = _answer(row, 0)
        if older(a):
            found[a["id"]] = a
    indexed = _watermark(conn)
    q2 = select(rc, rs.c.pos).join(rs, rs.c.receipt_no == rc.c.no).where(rs.c.subject_id == subject_id)
    if before is not None:
        q2 = q2.where(rc.c.issued_at <= before[0])
    for row in conn.execute(q2.order_by(rc.c.issued_at.desc(), rc.c.id.desc()).limit(limit + 1)):
        a = _answer(row, int(row.pos) - 1)
        if older(a):
            found[a["id"]] = a
    needle = subject_id.encode("ascii")
    if len(needle) == ID_WIDTH:
        tail = select(rc).where(rc.c.no > indexed, rc.c.subject_id.is_(None)).order_by(rc.c.no)
        for row in conn.execute(tail):
            data = bytes(row.subjects)
            at = data.find(needle)
            while at >= 0:
                if at % ID_WIDTH == 0:
                    a = _answer(row, at // ID_WIDTH)
                    if older(a):
                        found[a["id"]] = a
                    break  # the first position of the subject in the batch, as the index keeps it
                at = data.find(needle, at + 1)
    return sorted(found.values(), key=lambda a: (a["issued_at"], a["id"]), reverse=True)[:limit]


# ------------------------------------------------------------------ the subjects index of batches


def _watermark(conn: Connection) -> int:
    got = conn.execute(select(ta.receipt_index.c.receipt_no).where(ta.receipt_index.c.id == 1)).scalar()
    return int(got or 0)


def index_batches(engine: Engine, max_receipts: int = 200) -> int:
    """Index the subjects of the batch receipts written since the last run; returns how many receipts.

    Safe to run from several processes: the watermark row is updated in the same transaction, and a
    second indexer of the same receipts fails on the primary key and leaves them to the first.
    """
    done = 0
    while True:
        with engine.begin() as conn:
            start = _watermark(conn)
            rows = conn.execute(
                select(ta.receipts.c.no, ta.receipts.c.subject_id, ta.receipts.c.subjects, ta.receipts.c.n)
                .where(ta.receipts.c.no > start)
                .order_by(ta.receipts.c.no)
                .limit(max_receipts)
            ).all()
            if not rows:
                return done
            entries: dict[tuple[str, int], int] = {}
            for no, subject, blob, n in rows:
                if subject is not None:
                    continue  # a single check: ix_receipts_subject finds it
                data = bytes(blob)
                for pos in range(int(n)):
                    sid = data[ID_WIDTH * pos : ID_WIDTH * pos + ID_WIDTH].decode("ascii")
                    entries.setdefault((sid, int(no)), pos + 1)
            repo.insert_rows(
                conn,
                "receipt_subjects",
                ("subject_id", "receipt_no", "pos"),
                sorted((sid, no, pos) for (sid, no), pos in entries.items()),
            )
            last = int(rows[-1][0])
            res = conn.execute(
                update(ta.receipt_index).where(ta.receipt_index.c.id == 1).values(receipt_no=last)
            )
            if not res.rowcount:
                conn.execute(insert(ta.receipt_index).values(id=1, receipt_no=last))
            done += len(rows)
        if len(rows) < max_receipts:
            return done


def counts_by_activity(conn: Connection) -> Iterator[tuple[str, str, int]]:
    """(activity, decision, answers) over every receipt: the public statistics' figures."""
    rc = ta.receipts
    for activity, n, restricted in conn.execute(
        select(rc.c.activity, func.sum(rc.c.n), func.sum(rc.c.restricted)).group_by(rc.c.activity)
    ):
        n, restricted = int(n or 0), int(restricted or 0)
        if n - restricted:
            yield str(activity), "allowed", n - restricted
        if restricted:
            yield str(activity), "restricted", restricted


# ------------------------------------------------------------------ reproduction


def reproduce(platform: Platform, receipt: dict[str, Any]) -> dict[str, Any]:
    """Recompute a receipt's answer from the ledger alone, up to the size it names.

    The subject's records as the first ``ledger_size`` entries left them (each record's submission and
    later operations up to that size, read from the ledger), the catalog document and the manual list
    actions on the ledger up to that size, and the lists published from above as this node held them
    then; entry ``ledger_size`` must still have the head hash the receipt names (the ledger was not
    rewritten since). The same :func:`~socred.domain.answers.check_answer` as the check service.
    """
    size = int(receipt["ledger_size"])
    try:
        sid = parse_subject_id(receipt["subject_id"])
    except IdentifierError as e:
        return {
            "receipt": receipt["id"],
            "match": False,
            "ledger_intact": False,
            "reason": f"stored subject is not valid: {e.reason}",
        }
    at = date.fromisoformat(receipt["at"])
    with platform.engine.connect() as conn:
        intact = ledger.hash_at(conn, size) == receipt["ledger_head"]
        out: dict[str, Any] = {"receipt": receipt["id"], "ledger_size": size, "ledger_intact": intact}
        if not intact:
            out.update(
                match=False, reason=f"the ledger's entry {size} no longer has the head hash of the receipt"
            )
            return out
        cache = ledger.BlockCache()
        doc = None
        manual: list[ListAction] = []
        for seq, kind, _actor in ledger.acts(conn, ["catalog.load", "list_action"], upto=size):
            act = cache.entry(conn, seq)
            if act is None:
                continue
            body = act.decoded()
            if kind == "catalog.load" and f"{body['id']}@{body['version']}" == receipt["catalog"]:
                doc = body["document"]
            elif kind == "list_action" and body.get("subject_id") == sid.value:
                manual.append(ListAction.from_body(seq, body))
        if doc is None:
            out.update(
                match=False,
                reason=f"catalog {receipt['catalog']} is not on the ledger's first {size} entries",
            )
            return out
        records = []
        rows = [r for r in repo.subject_rows(conn, [sid.value])[sid.value] if r.first_seq <= size]
        later = repo.op_seqs(conn, rows)
        for r in rows:
            first = cache.entry(conn, r.first_seq)
            if first is None:
                continue
            state = apply_body(None, json.loads(first.body), submit_body=first.body)
            for seq in later.get((r.source, r.record_id), ()):
                op = cache.entry(conn, seq) if seq <= size else None
                if op is not None:
                    state = apply_body(state, json.loads(op.body))
            records.append(state)
        national = federation.national_memberships(conn, size, sid.value).get(sid.value)
    catalog = parse_catalog(doc)
    scoring_records = [
        ScoringRecord(s.record_id, s.source, s.category, s.occurred_on, s.retracted, s.repaired_on)
        for s in records
    ]
    again = check_answer(
        catalog, sid.value, sid.kind, scoring_records, manual, national, receipt["activity"], at
    )
    out.update(recomputed=again, match=again == receipt["result"])
    return out
