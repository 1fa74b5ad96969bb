"""Federation: city and provincial nodes feed a national node; national lists flow back down.

Up: a node pulls each registered source's ledger page by page (``GET /api/v1/ledger/entries``),
verifies it (:func:`socred.domain.federation.verify_page`) and applies it in one transaction: the
record operations through the same validation as any ingestion, catalog loads into
``node_catalogs``, where every operation came from into ``replicated``, one ``federation.sync``
entry in this ledger naming the page and its signed checkpoint, and the new verified position. A
page is applied entirely or not at all, so a sync killed at any point resumes without loss or
duplication.

Down: a national node publishes, for the regions a node may read, the memberships of its own
lists (``GET /api/v1/federation/lists``, signed); the node stores each new snapshot with a
``federation.lists`` ledger entry, and its checks add the national lists to the local answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
from sqlalchemy import Connection, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from socred.domain import clock, scoring
from socred.domain.catalog import Catalog, CatalogError, kinds_by_category, parse_catalog
from socred.domain.federation import (
    CATALOG_KIND,
    RECORD_KINDS,
    FederationError,
    NationalMeasure,
    NationalMembership,
    VerifiedPage,
    check_node_code,
    check_regions,
    public_key_from_text,
    snapshot_message,
    verify_page,
    verify_signed,
)
from socred.domain.ids import IdentifierError, parse_subject_id
from socred.domain.records import Context, canonical
from socred.domain.scoring import ScoringError, ScoringRecord
from socred.ingest.readers import Row
from socred.ledger.chain import GENESIS_HEX, utc_timestamp
from socred.ledger.merkle import Frontier
from socred.service.auth import NODE_PREFIX
from socred.service.common import as_day
from socred.service.platform import NotFound, Platform, UsageError, hash_key, new_key
from socred.store import ledger, repo
from socred.store import schema as t
from socred.store import schema_fed as tf
from socred.store.codes import codes_of

log = logging.getLogger("socred.federation")

PAGE_SIZE = 1000


# ------------------------------------------------------------------ registration


@dataclass(frozen=True, slots=True)
class Node:
    code: str
    url: str
    public_key: str
    regions: list[str]
    pull: str
    verified_seq: int
    verified_hash: str
    verified_at: str | None
    upstream_size: int
    upstream_seen_at: str | None
    oldest_pending_at: str | None
    applied: int
    duplicates: int
    rejected: int
    errors: int
    last_error: str | None
    last_error_at: str | None
    credential: str = field(repr=False, default="")
    frontier: list[str] = field(default_factory=list, repr=False)

    def status(self, now: float | None = None) -> dict[str, Any]:
        """Lag in entries and seconds behind (the age of the oldest entry not yet applied)."""
        lag_entries = max(0, self.upstream_size - self.verified_seq) if self.pull == "ledger" else 0
        lag_seconds = 0.0
        if lag_entries and self.oldest_pending_at:
            lag_seconds = max(0.0, (now or time.time()) - _epoch(self.oldest_pending_at))
        return {
            "code": self.code,
            "url": self.url,
            "pull": self.pull,
            "regions": self.regions,
            "verified_seq": self.verified_seq,
            "verified_hash": self.verified_hash,
            "verified_at": self.verified_at,
            "upstream_size": self.upstream_size,
            "lag_entries": lag_entries,
            "lag_seconds": round(lag_seconds, 3),
            "applied": self.applied,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": self.errors,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
        }


def _epoch(ts: str) -> float:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def _node(r: Any) -> Node:
    return Node(
        r.code,
        r.url,
        r.public_key,
        json.loads(r.regions),
        r.pull,
        int(r.verified_seq),
        r.verified_hash,
        r.verified_at,
        int(r.upstream_size),
        r.upstream_seen_at,
        r.oldest_pending_at,
        int(r.applied),
        int(r.duplicates),
        int(r.rejected),
        int(r.errors),
        r.last_error,
        r.last_error_at,
        r.credential,
        json.loads(r.frontier) if r.frontier else [],
    )


def add_node(
    platform: Platform,
    code: str,
    url: str,
    public_key: str,
    regions: Iterable[str],
    credential: str,
    pull: str = "ledger",
) -> Node:
    """Register an upstream source (``socred nodes add``); re-adding updates its URL, key and credential."""
    platform.ensure_schema()
    try:
        code = check_node_code(code)
        regs = check_regions(list(regions))
        public_key_from_text(public_key)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if pull not in ("ledger", "lists"):
        raise UsageError("pull must be 'ledger' (records come up from it) or 'lists' (its lists come down)")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"the node URL must start with http:// or https://, not {url!r}")
    if not credential.startswith(NODE_PREFIX):
        raise UsageError(
            f"the credential must be a node key ({NODE_PREFIX}…) issued by 'socred nodes allow' there"
        )
    values = {
        "url": url.rstrip("/"),
        "public_key": public_key.strip(),
        "regions": json.dumps(regs),
        "pull": pull,
        "credential": credential,
    }
    with platform.engine.begin() as conn:
        existing = conn.execute(select(tf.nodes.c.public_key).where(tf.nodes.c.code == code)).first()
        if existing is None:
            conn.execute(
                insert(tf.nodes).values(
                    code=code,
                    added_at=utc_timestamp(),
                    verified_seq=0,
                    verified_hash=GENESIS_HEX,
                    upstream_size=0,
                    applied=0,
                    duplicates=0,
                    rejected=0,
                    errors=0,
                    **values,
                )
            )
        else:
            conn.execute(update(tf.nodes).where(tf.nodes.c.code == code).values(**values))
    return get_node(platform, code)


def get_node(platform: Platform, code: str) -> Node:
    with platform.engine.connect() as conn:
        r = conn.execute(select(tf.nodes).where(tf.nodes.c.code == code)).first()
    if r is None:
        raise NotFound(f"no node {code!r} is registered here (socred nodes add)")
    return _node(r)


def list_nodes(platform: Platform) -> list[Node]:
    platform.ensure_schema()
    with platform.engine.connect() as conn:
        return [_node(r) for r in conn.execute(select(tf.nodes).order_by(tf.nodes.c.code))]


def allow_node(platform: Platform, code: str, regions: Iterable[str]) -> str:
    """Let a downstream node read this one (``socred nodes allow``); returns its new key, shown once."""
    platform.ensure_schema()
    try:
        code = check_node_code(code)
        regs = check_regions(list(regions))
    except ValueError as e:
        raise UsageError(str(e)) from None
    key = new_key(NODE_PREFIX.rstrip("_"))
    with platform.engine.begin() as conn:
        conn.execute(delete(tf.node_keys).where(tf.node_keys.c.code == code))
        conn.execute(
            insert(tf.node_keys).values(
                code=code, key_hash=hash_key(key), regions=json.dumps(regs), created_at=utc_timestamp()
            )
        )
    return key


def revoke_node(platform: Platform, code: str) -> None:
    with platform.engine.begin() as conn:
        n = conn.execute(
            update(tf.node_keys)
            .where(tf.node_keys.c.code == code, tf.node_keys.c.revoked_at.is_(None))
            .values(revoked_at=utc_timestamp())
        ).rowcount
    if not n:
        raise NotFound(f"no node {code!r} may read this one")


def node_by_key(platform: Platform, key: str) -> tuple[str, list[str]] | None:
    """(code, regions) of the downstream node holding ``key``, or None (unknown or revoked)."""
    with platform.engine.connect() as conn:
        r = conn.execute(
            select(tf.node_keys.c.code, tf.node_keys.c.regions, tf.node_keys.c.revoked_at).where(
                tf.node_keys.c.key_hash == hash_key(key)
            )
        ).first()
    if r is None or r.revoked_at is not None:
        return None
    return r.code, json.loads(r.regions)


# ------------------------------------------------------------------ serving a page


def serve_page(platform: Platform, signer: Any, after: int, limit: int) -> dict[str, Any]:
    """Entries after ``after`` with their proofs: the signed page checkpoint, the signed head, the
    anchor (this ledger's hash at ``after``) and the RFC 6962 consistency proof from ``after`` to the head."""
    from socred.store import merkle_store

    merkle_store.catch_up(platform.engine)
    with platform.engine.connect() as conn:
        size, root = repo.head(conn)
        entries = []
        for e in repo.iter_entries(conn, after, upto=after + limit):
            entries.append(e)
            if len(entries) >= limit:
                break
        anchor: str | None = GENESIS_HEX
        if after > 0:
            anchor = ledger.hash_at(conn, after)
        tree = merkle_store.Tree(conn)
        head = signer.checkpoint(size, root, tree.root(size).hex())
        consistency = [h.hex() for h in tree.consistency(after, size)] if 0 < after <= size else []
        checkpoint = None
        if entries:
            last = entries[-1]
            checkpoint = signer.checkpoint(last.seq, last.hash, tree.root(last.seq).hex())
    out: dict[str, Any] = {
        "entries": [e.to_json() for e in entries],
        "next_after": entries[-1].seq if entries and len(entries) == limit else None,
        "anchor": anchor,
        "head": head,
        "consistency": consistency,
    }
    if checkpoint is not None:
        out["checkpoint"] = checkpoint
    return out


# ------------------------------------------------------------------ sync: pulling and applying


@dataclass
class SyncReport:
    node: str
    pages: int = 0
    entries: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    catalogs: int = 0
    conflicts: int = 0
    verified_seq: int = 0
    upstream_size: int = 0
    seconds: float = 0.0
    error: str | None = None
    lists: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class Fetcher:
    """GETs JSON from another node; raises FederationError with a readable reason on any failure."""

    def __init__(self, client: httpx.Client | None = None, timeout: float = 30.0) -> None:
        self._client = client or httpx.Client(timeout=timeout)

    def get(self, node: Node, path: str, params: Mapping[str, Any]) -> Any:
        url = node.url + path
        try:
            r = self._client.get(
                url, params=dict(params), headers={"Authorization": f"Bearer {node.credential}"}
            )
        except httpx.HTTPError as e:
            raise FederationError(
                f"cannot reach node {node.code} at {node.url}: {e.__class__.__name__}: {e}"
            ) from None
        if r.status_code != 200:
            detail = r.text[:300].replace("\n", " ")
            raise FederationError(f"node {node.code} answered {r.status_code} to {path}: {detail}")
        try:
            return r.json()
        except ValueError:
            raise FederationError(
                f"node {node.code} answered {path} with something that is not JSON"
            ) from None

    def close(self) -> None:
        self._client.close()


def sync(
    platform: Platform,
    code: str | None = None,
    *,
    fetcher: Fetcher | None = None,
    page_size: int = PAGE_SIZE,
    max_pages: int | None = None,
    on_page: Callable[[SyncReport], None] | None = None,
) -> list[SyncReport]:
    """Pull from every registered node (or one), verify, apply. Errors are reported, never half-applied."""
    platform.ensure_schema()
    nodes = [get_node(platform, code)] if code else list_nodes(platform)
    own = fetcher is None
    fetcher = fetcher or Fetcher()
    try:
        reports = []
        for node in nodes:
            if node.pull == "lists":
                reports.append(pull_lists(platform, node, fetcher))
            else:
                reports.append(sync_ledger(platform, node, fetcher, page_size, max_pages, on_page))
        return reports
    finally:
        if own:
            fetcher.close()


def sync_ledger(
    platform: Platform,
    node: Node,
    fetcher: Fetcher,
    page_size: int = PAGE_SIZE,
    max_pages: int | None = None,
    on_page: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    started = time.perf_counter()
    report = SyncReport(node.code, verified_seq=node.verified_seq, upstream_size=node.upstream_size)
    key = public_key_from_text(node.public_key)
    held_seq, held_hash = node.verified_seq, node.verified_hash
    frontier = Frontier.from_hex(held_seq, node.frontier)

    def fetch(after: int) -> Any:
        params = {"after": after, "limit": page_size, "reason": "federation: replication to this node"}
        return fetcher.get(node, "/api/v1/ledger/entries", params)

    # The next page is fetched while this one is applied (one request in flight, never more).
    pool = ThreadPoolExecutor(1, thread_name_prefix=f"socred-sync-{node.code}")
    try:
        pending: Future[Any] | None = pool.submit(fetch, held_seq)
        while pending is not None and (max_pages is None or report.pages < max_pages):
            raw = pending.result()
            pending = None
            page = verify_page(
                raw,
                origin=node.code,
                public_key=key,
                held_seq=held_seq,
                held_hash=held_hash,
                frontier=frontier,
            )
            report.upstream_size = page.head_size
            if not page.entries:
                _seen(platform, node.code, page.head_size)
                break
            more = page.last_seq < page.head_size and (max_pages is None or report.pages + 1 < max_pages)
            if more:
                pending = pool.submit(fetch, page.last_seq)
            counts = apply_page(platform, node, page, held_seq)
            if counts is None:  # another process applied it first: start again from where it left
                fresh = get_node(platform, node.code)
                held_seq, held_hash = fresh.verified_seq, fresh.verified_hash
                frontier = Frontier.from_hex(held_seq, fresh.frontier)
                if pending is not None:
                    pending.cancel()
                pending = pool.submit(fetch, held_seq)
                continue
            report.pages += 1
            report.entries += len(page.entries)
            report.applied += counts["applied"]
            report.duplicates += counts["duplicates"]
            report.rejected += counts["rejected"]
            report.catalogs += counts["catalogs"]
            report.conflicts += counts["conflicts"]
            held_seq, held_hash, frontier = page.last_seq, page.last_hash, page.frontier
            report.verified_seq = held_seq
            if on_page:
                on_page(report)
    except FederationError as e:
        report.error = str(e)
        _failed(platform, node.code, str(e))
        log.error("sync from %s refused: %s", node.code, e, extra={"node": node.code, "alert": True})
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _seen(platform: Platform, code: str, size: int) -> None:
    with platform.engine.begin() as conn:
        conn.execute(
            update(tf.nodes)
            .where(tf.nodes.c.code == code)
            .values(
                upstream_size=size, upstream_seen_at=utc_timestamp(), oldest_pending_at=None, last_error=None
            )
        )


def _failed(platform: Platform, code: str, message: str) -> None:
    with platform.engine.begin() as conn:
        conn.execute(
            update(tf.nodes)
            .where(tf.nodes.c.code == code)
            .values(errors=tf.nodes.c.errors + 1, last_error=message[:2000], last_error_at=utc_timestamp())
        )


def _lock_node(conn: Connection, code: str) -> Any:
    q = select(tf.nodes).where(tf.nodes.c.code == code)
    if conn.dialect.name == "postgresql":
        q = q.with_for_update()
    return conn.execute(q).first()


def _all_categories(
    conn: Connection, own: list[Catalog], node: str, page: VerifiedPage
) -> dict[str, frozenset[str]]:
    """Categories this node knows plus those of the source node's catalogs (stored, and in this page)."""
    docs: list[Any] = [
        json.loads(r.document)
        for r in conn.execute(select(tf.node_catalogs.c.document).where(tf.node_catalogs.c.node == node))
    ]
    docs += [e.decoded()["document"] for e in page.entries if e.kind == CATALOG_KIND]
    catalogs = list(own)
    for d in docs:
        try:
            catalogs.append(parse_catalog(d))
        except (CatalogError, ValueError, KeyError):
            continue
    return dict(kinds_by_category(catalogs))


def apply_page(platform: Platform, node: Node, page: VerifiedPage, held_seq: int) -> dict[str, int] | None:
    """Apply a verified page in one transaction; None when the node moved past ``held_seq`` meanwhile."""
    from socred.ingest import bulk

    counts = {"applied": 0, "duplicates": 0, "rejected": 0, "catalogs": 0, "conflicts": 0}
    now = utc_timestamp()
    own = platform.catalogs()  # before the write transaction: it reads on its own connection
    with platform.engine.begin() as conn:
        current = _lock_node(conn, node.code)
        if current is None or int(current.verified_seq) != held_seq:
            return None
        kinds = _all_categories(conn, own, node.code, page)
        everything = frozenset(kinds)
        today = clock.today()
        # runs of consecutive record operations of one source, in ledger order
        runs: list[tuple[str, list[tuple[int, dict[str, Any], str, str]]]] = []
        provenance: list[dict[str, Any]] = []
        for e in page.entries:
            if e.kind == CATALOG_KIND:
                body = e.decoded()
                document = canonical(body["document"])
                exists = conn.execute(
                    select(tf.node_catalogs.c.digest).where(
                        tf.node_catalogs.c.node == node.code,
                        tf.node_catalogs.c.id == body["id"],
                        tf.node_catalogs.c.version == int(body["version"]),
                    )
                ).first()
                if exists is None:
                    conn.execute(
                        insert(tf.node_catalogs).values(
                            node=node.code,
                            id=body["id"],
                            version=int(body["version"]),
                            document=document,
                            digest=hashlib.sha256(document.encode()).hexdigest(),
                            origin_seq=e.seq,
                        )
                    )
                    counts["catalogs"] += 1
                continue
            if e.kind not in RECORD_KINDS:
                continue  # local business (providers, objections' case files, manual list actions): stays local
            body = e.decoded()
            source = str(body.get("source", e.actor))
            if runs and runs[-1][0] == source:
                runs[-1][1].append((e.seq, body, e.body, e.hash))
            else:
                runs.append((source, [(e.seq, body, e.body, e.hash)]))
        conflicts: list[dict[str, Any]] = []
        for source, ops in runs:
            ctx = Context(source=source, authorized=everything, kinds_by_category=kinds, today=today)
            names = _names_before(conn, ops)
            before, _ = repo.lock_head(conn)
            outcome = bulk.apply_in(conn, ctx, _prepare(ops, ctx))
            new = [(e.seq, e.body) for e in ledger.iter_entries(conn, before)]
            rejected = {line: msg for line, _row, _f, msg in outcome.errors}
            k = 0
            for i, (seq, body, text, hsh) in enumerate(ops):
                row = {
                    "node": node.code,
                    "origin_seq": seq,
                    "origin_hash": hsh,
                    "source": source,
                    "record_id": str(body.get("record_id", ""))[:128],
                    "local_seq": None,
                    "detail": None,
                }
                if i + 1 in rejected:
                    row.update(outcome="rejected", detail=rejected[i + 1][:1000])
                    counts["rejected"] += 1
                elif k < len(new) and new[k][1] == text:
                    row.update(outcome="applied", local_seq=int(new[k][0]))
                    k += 1
                    counts["applied"] += 1
                else:
                    row.update(outcome="duplicate")
                    counts["duplicates"] += 1
                provenance.append(row)
            conflicts += _restore_names(conn, node.code, ops, names, now)
        if provenance:
            try:
                conn.execute(insert(tf.replicated), provenance)
            except IntegrityError:
                raise FederationError(
                    f"entries {page.entries[0].seq}..{page.last_seq} of {node.code} were already taken in: "
                    "the upstream renumbered its ledger"
                ) from None
        if conflicts:
            conn.execute(insert(tf.name_conflicts), conflicts)
        counts["conflicts"] = len(conflicts)
        summary = {
            "node": node.code,
            "from_seq": page.entries[0].seq,
            "to_seq": page.last_seq,
            "root_hash": page.last_hash,
            "signature": page.checkpoint.get("signature"),
            **counts,
        }
        repo.append(conn, [(f"node:{node.code}", "federation.sync", canonical(summary))])
        pending_after = page.last_seq < page.head_size
        conn.execute(
            update(tf.nodes)
            .where(tf.nodes.c.code == node.code)
            .values(
                verified_seq=page.last_seq,
                verified_hash=page.last_hash,
                verified_at=now,
                checkpoint=json.dumps(page.checkpoint),
                frontier=json.dumps(page.frontier.to_hex()),
                upstream_size=page.head_size,
                upstream_seen_at=now,
                oldest_pending_at=page.entries[-1].recorded_at if pending_after else None,
                applied=tf.nodes.c.applied + counts["applied"],
                duplicates=tf.nodes.c.duplicates + counts["duplicates"],
                rejected=tf.nodes.c.rejected + counts["rejected"],
                last_error=None,
            )
        )
    return counts


def _prepare(ops: list[tuple[int, dict[str, Any], str, str]], ctx: Context) -> Any:
    """A run of operations for :func:`socred.ingest.bulk.apply_in`: submits through the vectorised
    pre-validation (as a Parquet file would go), anything else row by row. Same outcome either way."""
    import pyarrow as pa

    from socred.ingest import bulk

    rows: list[Row] = [(i + 1, body) for i, (_seq, body, _text, _hash) in enumerate(ops)]
    if len(ops) < 64 or any(b.get("op") != "submit" for _s, b, _t, _h in ops):
        return bulk.prepare_rows(rows)
    flat = [
        {k: (canonical(v) if k == "attributes" and isinstance(v, dict) else v) for k, v in b.items()}
        for _s, b, _t, _h in ops
    ]
    names = sorted(set().union(*flat))  # every field of any row (from_pylist would take the first row's)
    try:
        batch = pa.RecordBatch.from_pydict({k: [r.get(k) for r in flat] for k in names})
        return bulk.prevalidate(batch, ctx, 1)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return bulk.prepare_rows(rows)


def _names_before(conn: Connection, ops: list[tuple[int, dict[str, Any], str, str]]) -> dict[str, str]:
    ids = sorted(
        {str(b["subject_id"]) for _s, b, _t, _h in ops if b.get("op") == "submit" and "subject_id" in b}
    )
    out: dict[str, str] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        for sid, name in conn.execute(
            select(t.subjects.c.subject_id, t.subjects.c.name).where(t.subjects.c.subject_id.in_(chunk))
        ):
            out[sid] = name
    return out


def _restore_names(
    conn: Connection,
    node: str,
    ops: list[tuple[int, dict[str, Any], str, str]],
    before: dict[str, str],
    now: str,
) -> list[dict[str, Any]]:
    """A name arriving from another node that differs from the one held: keep the held one, flag both."""
    flagged: dict[tuple[str, str], dict[str, Any]] = {}
    for seq, body, _t, _h in ops:
        sid, name = body.get("subject_id"), body.get("subject_name")
        if body.get("op") != "submit" or not isinstance(sid, str) or not isinstance(name, str):
            continue
        held = before.get(sid)
        if held is None or held == name:
            continue
        flagged.setdefault(
            (sid, name),
            {
                "subject_id": sid,
                "name": held,
                "other_name": name,
                "node": node,
                "origin_seq": seq,
                "flagged_at": now,
            },
        )
    for sid in {k[0] for k in flagged}:
        conn.execute(update(t.subjects).where(t.subjects.c.subject_id == sid).values(name=before[sid]))
    if flagged:
        existing = {
            (r.subject_id, r.other_name)
            for r in conn.execute(
                select(tf.name_conflicts.c.subject_id, tf.name_conflicts.c.other_name).where(
                    tf.name_conflicts.c.subject_id.in_(sorted({k[0] for k in flagged})),
                    tf.name_conflicts.c.resolved_at.is_(None),
                )
            )
        }
        return [v for k, v in flagged.items() if k not in existing]
    return []


def conflicts(platform: Platform, open_only: bool = True) -> list[dict[str, Any]]:
    platform.ensure_schema()
    q = select(tf.name_conflicts).order_by(tf.name_conflicts.c.id)
    if open_only:
        q = q.where(tf.name_conflicts.c.resolved_at.is_(None))
    with platform.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def origin_of(platform: Platform, local_seq: int) -> tuple[str, int] | None:
    """(node, origin seq) of an entry of this ledger taken from another node; None for local entries."""
    with platform.engine.connect() as conn:
        r = conn.execute(
            select(tf.replicated.c.node, tf.replicated.c.origin_seq).where(
                tf.replicated.c.local_seq == local_seq
            )
        ).first()
    return (r.node, int(r.origin_seq)) if r else None


# ------------------------------------------------------------------ reproducing a node's answer


def node_catalogs(platform: Platform, node: str) -> list[Catalog]:
    with platform.engine.connect() as conn:
        docs = [
            r.document
            for r in conn.execute(select(tf.node_catalogs.c.document).where(tf.node_catalogs.c.node == node))
        ]
    return [parse_catalog(json.loads(d)) for d in docs]


def score_as_node(
    platform: Platform, node: str, subject_id: str, as_of: date | None = None
) -> scoring.ScoreResult:
    """The score node ``node`` gives: its records of the subject, under its catalogs (docs/federation.md)."""
    platform.ensure_schema()
    sid = platform.parse_subject(subject_id)
    as_of = as_of or clock.today()
    catalogs = node_catalogs(platform, node)
    if not catalogs:
        raise NotFound(f"no catalog of node {node!r} is held here: sync from it first")
    catalog = scoring.select_catalog(catalogs, sid.region, sid.kind, as_of)
    with platform.engine.connect() as conn:
        keys = {
            (r.source, r.record_id)
            for r in conn.execute(
                select(tf.replicated.c.source, tf.replicated.c.record_id)
                .where(tf.replicated.c.node == node, tf.replicated.c.outcome != "rejected")
                .distinct()
            )
        }
        states = repo.subject_records(conn, sid.value)
    records = [
        ScoringRecord(s.record_id, s.source, s.category, s.occurred_on, s.retracted, s.repaired_on)
        for s in states
        if (s.source, s.record_id) in keys
    ]
    return scoring.score(catalog, sid.value, sid.kind, records, as_of)


# ------------------------------------------------------------------ national lists flowing down


def list_snapshot(
    platform: Platform, signer: Any, regions: list[str], at: date | None = None
) -> dict[str, Any]:
    """This node's list memberships (with at least one measure) of subjects in ``regions``, signed."""
    platform.ensure_schema()
    at = at or clock.today()
    catalogs = platform.catalogs()
    memberships: list[dict[str, Any]] = []
    with platform.engine.connect() as conn:
        size, root = repo.head(conn)
        cond = [t.subject_region().like(f"{r}%") for r in regions] if regions else []
        from sqlalchemy import or_

        q = select(
            t.records.c.subject_id,
            t.records.c.source,
            t.records.c.record_id,
            t.records.c.category,
            t.records.c.occurred_on,
            t.records.c.retracted,
            t.records.c.repaired_on,
        ).order_by(t.records.c.subject_id)
        names = codes_of(conn).values(conn)
        if cond:
            q = q.where(or_(*cond))
        current: str | None = None
        batch: list[ScoringRecord] = []

        def flush() -> None:
            if current is None:
                return
            try:
                sid = parse_subject_id(current)
                catalog = scoring.select_catalog(catalogs, sid.region, sid.kind, at)
            except (IdentifierError, ScoringError):
                return
            result = scoring.score(catalog, sid.value, sid.kind, batch, at)
            for m in result.lists:
                d = catalog.lists[m.code]
                measures = [
                    {
                        "code": mc,
                        "activity": catalog.measures[mc].activity,
                        "effect": catalog.measures[mc].effect,
                    }
                    for mc in d.measures
                ]
                if not measures:
                    continue
                memberships.append(
                    {
                        "subject_id": sid.value,
                        "catalog": catalog.ref,
                        "list": m.code,
                        "kind": m.kind,
                        "title": d.title,
                        "since": m.since.isoformat() if m.since else None,
                        "until": m.until.isoformat() if m.until else None,
                        "measures": measures,
                    }
                )

        for sid_, src, rid, cat, occ, retracted, repaired in conn.execute(q):
            if sid_ != current:
                flush()
                current, batch = sid_, []
            batch.append(ScoringRecord(rid, names[src], names[cat], occ, bool(retracted), repaired))
        flush()
    payload: dict[str, Any] = {
        "node": signer.origin,
        "regions": regions,
        "as_of": at.isoformat(),
        "ledger_size": size,
        "root_hash": root,
        "memberships": memberships,
    }
    payload["signature"] = signer.sign_text(snapshot_message(payload))
    return payload


def pull_lists(platform: Platform, node: Node, fetcher: Fetcher) -> SyncReport:
    """Fetch the upstream's signed list snapshot for this node's regions and store it if it changed."""
    started = time.perf_counter()
    report = SyncReport(node.code)
    try:
        raw = fetcher.get(node, "/api/v1/federation/lists", {"regions": ",".join(node.regions)})
        if not isinstance(raw, dict) or not isinstance(raw.get("memberships"), list):
            raise FederationError("the list snapshot is not an object with memberships")
        if raw.get("node") != node.code:
            raise FederationError(f"the list snapshot is signed as {raw.get('node')!r}, not {node.code!r}")
        verify_signed(
            public_key_from_text(node.public_key),
            snapshot_message(raw),
            str(raw.get("signature", "")),
            "the list snapshot",
        )
        rows = [_membership_row(m, i) for i, m in enumerate(raw["memberships"])]
        digest = hashlib.sha256(
            snapshot_message({**raw, "as_of": "", "ledger_size": 0, "root_hash": ""}).encode()
        ).hexdigest()
        with platform.engine.begin() as conn:
            current = _lock_node(conn, node.code)
            last = json.loads(current.checkpoint) if current is not None and current.checkpoint else {}
            if last.get("digest") != digest:
                body = {
                    "node": node.code,
                    "as_of": raw.get("as_of"),
                    "ledger_size": raw.get("ledger_size"),
                    "root_hash": raw.get("root_hash"),
                    "memberships": len(rows),
                    "digest": digest,
                    "signature": raw.get("signature"),
                }
                (entry,) = repo.append(conn, [(f"node:{node.code}", "federation.lists", canonical(body))])
                if rows:
                    conn.execute(
                        insert(tf.national_lists),
                        [{**r, "node": node.code, "ledger_seq": entry.seq} for r in rows],
                    )
                last = {"digest": digest, "ledger_seq": entry.seq}
            conn.execute(
                update(tf.nodes)
                .where(tf.nodes.c.code == node.code)
                .values(
                    checkpoint=json.dumps(last),
                    verified_at=utc_timestamp(),
                    upstream_size=int(raw.get("ledger_size") or 0),
                    upstream_seen_at=utc_timestamp(),
                    last_error=None,
                )
            )
        report.lists = len(rows)
    except FederationError as e:
        report.error = str(e)
        _failed(platform, node.code, str(e))
        log.error("list snapshot from %s refused: %s", node.code, e, extra={"node": node.code, "alert": True})
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _membership_row(m: Any, i: int) -> dict[str, Any]:
    try:
        measures = [
            {"code": str(x["code"]), "activity": str(x["activity"]), "effect": str(x["effect"])}
            for x in m["measures"]
        ]
        return {
            "subject_id": str(m["subject_id"]),
            "list_code": str(m["list"]),
            "catalog": str(m["catalog"]),
            "kind": str(m["kind"]),
            "title": str(m["title"])[:200],
            "since": date.fromisoformat(m["since"]) if m.get("since") else None,
            "until": date.fromisoformat(m["until"]) if m.get("until") else None,
            "measures": json.dumps(measures, sort_keys=True),
        }
    except (KeyError, TypeError, ValueError) as e:
        raise FederationError(f"membership {i + 1} of the list snapshot is malformed: {e!s}") from None


def _snapshots(conn: Connection, at_seq: int | None) -> dict[str, int]:
    """node -> seq of its newest federation.lists entry (as of ledger size ``at_seq``)."""
    out: dict[str, int] = {}
    if at_seq is None:  # the current ones, from the nodes table (no ledger scan on the check path)
        for code, cp in conn.execute(
            select(tf.nodes.c.code, tf.nodes.c.checkpoint).where(tf.nodes.c.pull == "lists")
        ):
            seq = json.loads(cp).get("ledger_seq") if cp else None
            if seq:
                out[code] = int(seq)
        return out
    for seq, _kind, actor in ledger.acts(conn, ["federation.lists"], upto=at_seq):
        out[actor.removeprefix("node:")] = seq  # in seq order: the newest of each node wins
    return out


def national_memberships(
    conn: Connection,
    at_seq: int | None = None,
    subject_id: str | None = None,
    subject_ids: Iterable[str] | None = None,
) -> dict[str, list[NationalMembership]]:
    """Each subject's memberships (or only ``subject_id``'s, or those of ``subject_ids``) from the newest
    snapshot of every upstream, as of ledger size ``at_seq``."""
    out: dict[str, list[NationalMembership]] = {}
    ids: list[str] | None = None
    if subject_id is not None:
        ids = [subject_id]
    elif subject_ids is not None:
        ids = sorted(set(subject_ids))
    for node, seq in _snapshots(conn, at_seq).items():
        base = select(tf.national_lists).where(
            and_(tf.national_lists.c.node == node, tf.national_lists.c.ledger_seq == seq)
        )
        queries = (
            [base]
            if ids is None
            else [
                base.where(tf.national_lists.c.subject_id.in_(ids[i : i + 500]))
                for i in range(0, len(ids), 500)
            ]
        )
        for r in (row for q in queries for row in conn.execute(q)):
            out.setdefault(r.subject_id, []).append(
                NationalMembership(
                    node,
                    r.catalog,
                    r.list_code,
                    r.kind,
                    r.title,
                    as_day(r.since) if r.since is not None else None,
                    as_day(r.until) if r.until is not None else None,
                    tuple(
                        NationalMeasure(x["code"], x["activity"], x["effect"]) for x in json.loads(r.measures)
                    ),
                )
            )
    return out


def lists_marker(conn: Connection) -> tuple[tuple[str, int], ...]:
    """The current snapshot of every upstream: the check index reloads its overlay when it changes."""
    return tuple(sorted(_snapshots(conn, None).items()))


# ------------------------------------------------------------------ background loop


class SyncLoop:
    """``socred serve``'s background sync: every ``interval`` seconds, every registered node."""

    def __init__(self, platform: Platform, interval: float, fetcher: Fetcher | None = None) -> None:
        import threading

        self.platform = platform
        self.interval = interval
        self.fetcher = fetcher
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="socred-sync", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if list_nodes(self.platform):
                    sync(self.platform, fetcher=self.fetcher)
            except Exception:  # the loop must outlive any one failure; errors are kept per node
                log.exception("background sync failed")
