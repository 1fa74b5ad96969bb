"""Compact storage: the ledger in compressed blocks, a narrow records projection, dictionary codes.

Before: about 1,200 bytes per operation (the ledger body, a second full copy of it in
``records.submit_body``, hashes as hex text, wide records rows and five indexes on them).
After: about 250 (see docs/performance.md).

* ``ledger`` (a row per entry) becomes ``ledger_blocks``: up to 256 consecutive entries per row,
  each entry's canonical bytes (exactly what its hash covers) joined by newlines and compressed with
  zstd, beside the entries' hashes as 32 raw bytes each; ``ledger_acts`` indexes the entries that are
  not record operations by kind. The same triggers refuse UPDATE and DELETE.
* ``records`` keeps the fields scoring and the public pages need: provider and category as small
  codes of the new ``codes`` table, dates as day numbers, the kind as 0/1, the case number, the
  record's region where it differs from the subject's, and the seqs of its first and last operation;
  its texts stay on the ledger. ``record_ops`` lists the seqs of each record's later operations.
  Indexes: the primary key (clustered on SQLite), (subject_id, category), occurred_on.

Existing data is carried over as it is: every entry keeps its bytes and its stored hash, so a
ledger that was tampered with before still fails ``socred ledger verify`` afterwards.

The table definitions are written out here (not taken from the live schema module), so this
migration means the same thing whatever the schema module says later.

Revision ID: 0008_compact_storage
Revises: 0007_merkle
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from alembic import op

revision = "0008_compact_storage"
down_revision = "0007_merkle"
branch_labels = None
depends_on = None

BLOCK = 256
RECORD_OPS = ("submit", "correct", "retract", "repair")
EPOCH = date(1970, 1, 1).toordinal()

PG_IMMUTABLE = """
CREATE OR REPLACE FUNCTION socred_ledger_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'the socred ledger is append-only: % is refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_blocks_no_update_delete BEFORE UPDATE OR DELETE ON ledger_blocks
  FOR EACH ROW EXECUTE FUNCTION socred_ledger_append_only();
CREATE TRIGGER ledger_blocks_no_truncate BEFORE TRUNCATE ON ledger_blocks
  FOR EACH STATEMENT EXECUTE FUNCTION socred_ledger_append_only();
ALTER TABLE ledger_blocks ALTER COLUMN entries SET STORAGE EXTERNAL;
ALTER TABLE ledger_blocks ALTER COLUMN hashes SET STORAGE EXTERNAL;
"""

SQLITE_IMMUTABLE = [
    "CREATE TRIGGER ledger_blocks_no_update BEFORE UPDATE ON ledger_blocks "
    "BEGIN SELECT RAISE(ABORT, 'the socred ledger is append-only: UPDATE is refused'); END",
    "CREATE TRIGGER ledger_blocks_no_delete BEFORE DELETE ON ledger_blocks "
    "BEGIN SELECT RAISE(ABORT, 'the socred ledger is append-only: DELETE is refused'); END",
]


def _entry_bytes(seq: int, recorded_at: str, actor: str, kind: str, body: str) -> bytes:
    # the canonical JSON of {actor, body, kind, recorded_at, seq} (records.md), keys in sorted order
    return (
        '{"actor":'
        + json.dumps(actor, ensure_ascii=False)
        + ',"body":'
        + body
        + ',"kind":'
        + json.dumps(kind, ensure_ascii=False)
        + ',"recorded_at":'
        + json.dumps(recorded_at)
        + ',"seq":'
        + str(int(seq))
        + "}"
    ).encode("utf-8")


def _day(v: Any) -> int | None:
    if v is None:
        return None
    d = v if isinstance(v, date) else date.fromisoformat(str(v)[:10])
    return d.toordinal() - EPOCH


def _create_tables(sqlite: bool) -> None:
    seq_type: Any = sa.Integer if sqlite else sa.BigInteger
    op.create_table(
        "codes",
        sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("domain", sa.String(16), nullable=False),
        sa.Column("value", sa.String(128), nullable=False),
    )
    op.create_index("ux_codes_value", "codes", ["domain", "value"], unique=True)
    op.create_table(
        "ledger_blocks",
        sa.Column("first_seq", seq_type, primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("raw_size", sa.Integer, nullable=False),
        sa.Column("entries", sa.LargeBinary, nullable=False),
        sa.Column("hashes", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "ledger_acts",
        sa.Column("seq", seq_type, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
    )
    op.create_index("ix_ledger_acts_kind", "ledger_acts", ["kind", "seq"])
    kw = {"sqlite_with_rowid": False} if sqlite else {}
    op.create_table(
        "records_v2",
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("occurred_on", sa.Integer, nullable=False),
        sa.Column("repaired_on", sa.Integer),
        sa.Column("source", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("category", sa.SmallInteger, nullable=False),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.Column("retracted", sa.Boolean, nullable=False),
        sa.Column("record_id", sa.String(128), primary_key=True),
        sa.Column("subject_id", sa.String(18), nullable=False),
        sa.Column("case_number", sa.String(128)),
        sa.Column("region", sa.String(6)),
        **kw,
    )
    op.create_table(
        "record_ops",
        sa.Column("source", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("record_id", sa.String(128), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        **kw,
    )


def _carry_codes(conn: sa.Connection) -> tuple[dict[str, int], dict[str, int]]:
    sources: set[str] = {r[0] for r in conn.exec_driver_sql("SELECT code FROM providers")}
    sources |= {r[0] for r in conn.exec_driver_sql("SELECT DISTINCT source FROM records")}
    categories: set[str] = {r[0] for r in conn.exec_driver_sql("SELECT DISTINCT category FROM records")}
    for (document,) in conn.exec_driver_sql("SELECT document FROM catalogs"):
        try:
            categories |= {str(c["code"]) for c in json.loads(document).get("categories") or []}
        except (ValueError, TypeError, KeyError, AttributeError):
            continue
    rows: list[dict[str, Any]] = []
    source_ids: dict[str, int] = {}
    category_ids: dict[str, int] = {}
    for value in sorted(sources):
        source_ids[value] = len(rows) + 1
        rows.append({"id": len(rows) + 1, "domain": "source", "value": value})
    for value in sorted(categories):
        category_ids[value] = len(rows) + 1
        rows.append({"id": len(rows) + 1, "domain": "category", "value": value})
    if rows:
        codes = sa.table("codes", sa.column("id"), sa.column("domain"), sa.column("value"))
        conn.execute(sa.insert(codes), rows)
    return source_ids, category_ids


def _carry_ledger(conn: sa.Connection, source_ids: dict[str, int]) -> None:
    codec = pa.Codec("zstd", compression_level=3)
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    raw: Any = conn.connection.driver_connection
    read = conn.exec_driver_sql(
        "SELECT seq, recorded_at, actor, kind, body, hash FROM ledger ORDER BY seq",
        execution_options={"stream_results": True},
    )
    lines: list[bytes] = []
    digests: list[bytes] = []
    first: int | None = None
    acts: list[tuple[int, str, str]] = []
    ops: list[tuple[int, str, int]] = []

    def flush() -> None:
        nonlocal lines, digests, first
        if not lines or first is None:
            return
        data = b"\n".join(lines)
        cur = raw.cursor()
        cur.execute(
            f"INSERT INTO ledger_blocks (first_seq, last_seq, raw_size, entries, hashes) VALUES ({mark}, {mark}, {mark}, {mark}, {mark})",
            (first, first + len(lines) - 1, len(data), codec.compress(data, asbytes=True), b"".join(digests)),
        )
        cur.close()
        lines, digests, first = [], [], None

    for seq, recorded_at, actor, kind, body, hash_hex in read:
        if first is not None and (len(lines) >= BLOCK or seq != first + len(lines)):
            flush()  # a gap (an entry deleted behind the application's back) starts a new block
        if first is None:
            first = int(seq)
        lines.append(_entry_bytes(int(seq), recorded_at, actor, kind, body))
        try:
            digests.append(bytes.fromhex(hash_hex))
        except ValueError:
            digests.append(bytes(32))  # an edited hash: verify reports the entry
        if kind not in RECORD_OPS:
            acts.append((int(seq), str(kind)[:32], str(actor)[:128]))
        elif kind != "submit":
            try:
                b = json.loads(body)
                ops.append((source_ids[b["source"]], str(b["record_id"]), int(seq)))
            except (ValueError, KeyError, TypeError):
                pass
    flush()
    cur = raw.cursor()
    if acts:
        cur.executemany(f"INSERT INTO ledger_acts (seq, kind, actor) VALUES ({mark}, {mark}, {mark})", acts)
    if ops:
        cur.executemany(
            f"INSERT INTO record_ops (source, record_id, seq) VALUES ({mark}, {mark}, {mark})",
            sorted(set(ops)),
        )
    cur.close()


def _carry_records(conn: sa.Connection, source_ids: dict[str, int], category_ids: dict[str, int]) -> None:
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    raw: Any = conn.connection.driver_connection
    sql = (
        "INSERT INTO records_v2 (first_seq, last_seq, occurred_on, repaired_on, source, category, kind, "
        "retracted, record_id, subject_id, case_number, region) VALUES (" + ", ".join([mark] * 12) + ")"
    )
    read = conn.exec_driver_sql(
        "SELECT source, record_id, subject_id, kind, subject_region, category, occurred_on, retracted, "
        "repaired_on, first_seq, last_seq, case_number, region FROM records",
        execution_options={"stream_results": True},
    )
    while True:
        chunk = read.fetchmany(10_000)
        if not chunk:
            break
        rows = [
            (
                int(r[9]),
                int(r[10]),
                _day(r[6]),
                _day(r[8]),
                source_ids[r[0]],
                category_ids[r[5]],
                1 if r[3] == "organization" else 0,
                bool(r[7]),
                r[1],
                r[2],
                r[11],
                None if r[12] in (None, r[4]) else r[12],
            )
            for r in chunk
        ]
        cur = raw.cursor()
        cur.executemany(sql, rows)
        cur.close()


def upgrade() -> None:
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    _create_tables(sqlite)
    source_ids, category_ids = _carry_codes(conn)
    _carry_ledger(conn, source_ids)
    _carry_records(conn, source_ids, category_ids)
    for index in (
        "ix_records_subject",
        "ix_records_last_seq",
        "ix_records_occurred_on",
        "ix_records_first_seq",
    ):
        op.drop_index(index, table_name="records")
    op.drop_table("records")
    op.rename_table("records_v2", "records")
    op.create_index("ix_records_subject", "records", ["subject_id", "category"])
    op.create_index("ix_records_occurred_on", "records", ["occurred_on"])
    op.drop_table("ledger")  # its triggers go with it
    if sqlite:
        for stmt in SQLITE_IMMUTABLE:
            op.execute(stmt)
    else:
        op.execute(PG_IMMUTABLE)


def downgrade() -> None:
    raise NotImplementedError("0008 is not reversible: restore from a backup taken before the upgrade")
