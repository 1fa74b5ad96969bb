"""Use cases: what the CLI, the HTTP API and the portal call.

A :class:`Platform` wraps one database. It combines the domain core (records,
catalogs, scoring), the ledger and the store; it holds no state of its own but
a cache of parsed catalogs, refreshed when the catalogs table changes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, select

from socred.domain import answers, clock
from socred.domain.catalog import Catalog, CatalogError, kinds_by_category, parse_catalog
from socred.domain.federation import NationalMembership
from socred.domain.ids import IdentifierError, SubjectId, parse_subject_id
from socred.domain.list_actions import ListAction
from socred.domain.records import (
    Context,
    RecordState,
    apply_body,
    canonical,
)
from socred.domain.scoring import CheckResult, ScoreResult, ScoringError, ScoringRecord, select_catalog
from socred.ingest.readers import Row
from socred.ledger.chain import VerifyResult, utc_timestamp
from socred.store import repo
from socred.store import schema as t
from socred.store.codes import codes_of
from socred.store.db import open_engine

PROVIDER_CODE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789.-")


class UsageError(Exception):
    """The request cannot be carried out as asked (CLI exit 2, HTTP 4xx)."""


class NotFound(UsageError):
    pass


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


@dataclass
class IngestSummary:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": self.errors,
        }


class Platform:
    def __init__(self, url: str | None = None, engine: Engine | None = None) -> None:
        self.engine = engine or open_engine(url)
        self._catalog_cache: tuple[Any, list[Catalog]] | None = None

    # ------------------------------------------------------------- schema

    def init(self) -> None:
        from socred.store.migrate import upgrade  # Alembic is slow to import: only when needed

        upgrade(self.engine)

    def ensure_schema(self) -> None:
        """Fail with a clear sentence when ``socred init`` was never run."""
        from sqlalchemy import inspect

        if not inspect(self.engine).has_table("ledger_blocks"):
            raise UsageError("the database has no socred schema yet: run 'socred init' first")

    # ------------------------------------------------------------- catalogs

    def load_catalog_file(self, path: Path) -> str:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot read {str(path)!r}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"{str(path)!r} is not UTF-8 text") from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise UsageError(f"{path.name} is not valid YAML: {e}".replace("\n", " ")) from None
        return self.load_catalog(doc)

    def load_catalog(self, doc: Any) -> str:
        catalog = parse_catalog(doc)
        document = canonical(_jsonable(doc))
        digest = hashlib.sha256(document.encode()).hexdigest()
        self.ensure_schema()
        with self.engine.begin() as conn:
            existing = repo.catalog_exists(conn, catalog.id, catalog.version)
            if existing is not None and existing != digest:
                raise CatalogError(
                    f"catalog {catalog.ref} is already loaded with different content; versions are immutable, "
                    f"load the change as version {catalog.version + 1}"
                )
            if existing is None:
                body = canonical(
                    {
                        "id": catalog.id,
                        "version": catalog.version,
                        "digest": digest,
                        "document": json.loads(document),
                    }
                )
                (entry,) = repo.append(conn, [("admin", "catalog.load", body)])
                codes_of(conn).ensure(conn, "category", catalog.categories)
                repo.store_catalog(
                    conn,
                    {
                        "id": catalog.id,
                        "version": catalog.version,
                        "title": catalog.title[:200],
                        "effective_from": catalog.effective_from,
                        "document": document,
                        "digest": digest,
                        "active": True,
                        "loaded_at": entry.recorded_at,
                        "ledger_seq": entry.seq,
                    },
                )
            repo.set_catalog_active(conn, catalog.id, True)
        self._catalog_cache = None
        return catalog.ref

    def catalogs(self) -> list[Catalog]:
        """All versions of all active catalogs, parsed (cached until the catalogs table changes)."""
        with self.engine.connect() as conn:
            marker = conn.execute(select(t.catalogs.c.id, t.catalogs.c.version, t.catalogs.c.active)).all()
            key = tuple(sorted(marker))
            if self._catalog_cache is not None and self._catalog_cache[0] == key:
                return self._catalog_cache[1]
            rows = repo.catalog_documents(conn)
        parsed = [parse_catalog(json.loads(r.document)) for r in rows]
        self._catalog_cache = (key, parsed)
        return parsed

    def kinds_by_category(self) -> dict[str, frozenset[str]]:
        return dict(kinds_by_category(self.catalogs()))

    # ------------------------------------------------------------- providers

    def add_provider(self, code: str, name: str, categories: Sequence[str]) -> str:
        code = code.strip()
        if not code or not set(code) <= PROVIDER_CODE_CHARS or len(code) > 64:
            raise UsageError(
                f"provider code {code!r} must use only a-z, 0-9, '.' and '-' (at most 64 characters)"
            )
        if not name.strip():
            raise UsageError("provider name must not be empty")
        cats = sorted({c.strip().upper() for c in categories if c.strip()})
        if not cats:
            raise UsageError("a provider needs at least one authorized category (--categories C1,C2)")
        known = self.kinds_by_category()
        unknown = [c for c in cats if c not in known]
        if unknown and known:
            raise UsageError(f"unknown category {unknown[0]!r}: it is defined in no loaded catalog")
        key = new_key("sp")
        self.ensure_schema()
        with self.engine.begin() as conn:
            repo.lock_head(conn)  # serialises the dictionary codes with every other writer
            if repo.get_provider(conn, code) is not None:
                raise UsageError(f"provider {code!r} is already registered")
            repo.add_provider(conn, code, name.strip(), hash_key(key), cats)
            codes_of(conn).ensure(conn, "source", [code])
        return key

    def provider(self, code: str) -> repo.Provider:
        with self.engine.connect() as conn:
            p = repo.get_provider(conn, code)
        if p is None:
            raise UsageError(f"unknown provider {code!r}: register it with 'socred providers add'")
        if p.revoked:
            raise UsageError(f"provider {code!r} is revoked")
        return p

    def provider_by_key(self, key: str) -> repo.Provider | None:
        with self.engine.connect() as conn:
            return repo.provider_by_key_hash(conn, hash_key(key))

    # ------------------------------------------------------------- ingestion

    def ingest(
        self,
        source: str,
        rows: Iterable[Row],
        *,
        batch_size: int = 2000,
        on_batch: Callable[[int], None] | None = None,
        on_reject: Callable[[int, Mapping[str, Any] | None, str, str], None] | None = None,
        today: date | None = None,
    ) -> IngestSummary:
        """Validate and apply operations batch by batch; each batch commits as a whole.

        ``rows`` read from Arrow (:class:`socred.ingest.bulk.ArrowOperations`, e.g. a Parquet file)
        take the vectorised path; any other iterable of rows is validated row by row. Both give
        the same outcome (records.md); ``tests/ingest`` proves it.
        """
        from socred.ingest import bulk

        self.ensure_schema()
        provider = self.provider(source)
        ctx = Context(
            source=source,
            authorized=provider.categories,
            kinds_by_category=self.kinds_by_category(),
            today=today or clock.today(),
        )
        summary = IngestSummary()
        if isinstance(rows, bulk.ArrowOperations):
            for outcome in bulk.ingest_arrow(self.engine, ctx, rows, batch_size, on_batch):
                _tally(summary, outcome, on_reject)
            return summary
        batch: list[Row] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= batch_size:
                self._ingest_batch(ctx, batch, summary, on_reject)
                if on_batch:
                    on_batch(len(batch))
                batch = []
        if batch:
            self._ingest_batch(ctx, batch, summary, on_reject)
            if on_batch:
                on_batch(len(batch))
        return summary

    def _ingest_batch(
        self,
        ctx: Context,
        batch: list[Row],
        summary: IngestSummary,
        on_reject: Callable[[int, Mapping[str, Any] | None, str, str], None] | None,
    ) -> None:
        """One transaction: every row validated by validate(), the accepted ones sealed and written."""
        from socred.ingest import bulk

        _tally(summary, bulk.apply_batch(self.engine, ctx, bulk.prepare_rows(batch)), on_reject)

    # ------------------------------------------------------------- scoring

    def parse_subject(self, subject_id: str) -> SubjectId:
        try:
            return parse_subject_id(subject_id)
        except IdentifierError as e:
            raise UsageError(f"invalid subject identifier {subject_id.strip()!r}: {e.reason}") from None

    def scoring_records(self, subject_id: str) -> list[ScoringRecord]:
        with self.engine.connect() as conn:
            return repo.scoring_records(conn, [subject_id])[subject_id]

    def choose_catalog(self, sid: SubjectId, as_of: date, catalog_id: str | None) -> Catalog:
        return select_catalog(self.catalogs(), sid.region, sid.kind, as_of, catalog_id)

    def score(self, subject_id: str, as_of: date | None = None, catalog_id: str | None = None) -> ScoreResult:
        self.ensure_schema()
        sid = self.parse_subject(subject_id)
        as_of = as_of or clock.today()
        catalog = self.choose_catalog(sid, as_of, catalog_id)
        records, actions, _national = self._standing(sid, with_national=False)
        return answers.subject_score(catalog, sid.value, sid.kind, records, actions, as_of)

    def _standing(
        self, sid: SubjectId, *, with_national: bool = True
    ) -> tuple[list[ScoringRecord], list[ListAction], list[NationalMembership] | None]:
        """What the per-subject answer reads about one subject: its records, its approved manual list
        actions and the lists published from above (one read snapshot)."""
        from socred.service import federation, list_actions  # they import this module

        with self.engine.connect() as conn:
            records = repo.scoring_records(conn, [sid.value])[sid.value]
            actions = list_actions.approved(conn, [sid.value])
            national = (
                federation.national_memberships(conn, subject_id=sid.value).get(sid.value)
                if with_national
                else None
            )
        return records, actions, national

    def check(
        self, subject_id: str, activity: str, at: date | None = None, catalog_id: str | None = None
    ) -> CheckResult:
        self.ensure_schema()
        sid = self.parse_subject(subject_id)
        at = at or clock.today()
        catalog = self.choose_catalog(sid, at, catalog_id)
        records, actions, national = self._standing(sid)
        d = answers.check_answer(catalog, sid.value, sid.kind, records, actions, national, activity, at)
        return CheckResult(
            d["subject_id"],
            activity,
            at,
            d["catalog"],
            d["decision"],
            tuple(d["measures"]),
            tuple(d["lists"]),
            date.fromisoformat(d["until"]) if d["until"] else None,
        )

    # ------------------------------------------------------------- ledger

    def verify_ledger(self) -> VerifyResult:
        self.ensure_schema()
        with self.engine.connect() as conn:
            return repo.verify(conn)

    def rebuild_projections(self) -> int:
        """Replay the whole ledger into fresh projections; returns the number of entries replayed."""
        self.ensure_schema()
        with self.engine.begin() as conn:
            ops: list[tuple[str, RecordState, int]] = []
            states: dict[tuple[str, str], RecordState] = {}
            manual: list[tuple[int, dict[str, Any]]] = []  # approved manual list actions
            n = 0
            for e in repo.iter_entries(conn):
                n += 1
                if e.kind == "list_action":
                    manual.append((e.seq, e.decoded()))
                if e.kind not in ("submit", "correct", "retract", "repair"):
                    continue
                body = e.decoded()
                k = (body["source"], body["record_id"])
                st = states[k] = apply_body(
                    states.get(k), body, submit_body=e.body if e.kind == "submit" else None
                )
                ops.append((e.kind, st, e.seq))
            repo.clear_projections(conn)
            repo.project(conn, ops)
            from socred.service import list_actions

            list_actions.replay(conn, manual)
        return n

    def head(self) -> tuple[int, str]:
        with self.engine.connect() as conn:
            return repo.head(conn)


def _tally(
    summary: IngestSummary,
    outcome: Any,
    on_reject: Callable[[int, Mapping[str, Any] | None, str, str], None] | None,
) -> None:
    """Add a committed batch's outcome (:class:`socred.ingest.bulk.BatchOutcome`) to the summary."""
    summary.accepted += outcome.accepted
    summary.duplicates += outcome.duplicates
    summary.rejected += len(outcome.errors)
    for line, row, fld, msg in outcome.errors:
        summary.errors.append({"line": line, "field": fld, "message": msg})
        if on_reject:
            on_reject(line, row, fld, msg)


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, date):
        return v.isoformat()
    return v


__all__ = ["CatalogError", "IdentifierError", "Platform", "ScoringError", "UsageError", "utc_timestamp"]
