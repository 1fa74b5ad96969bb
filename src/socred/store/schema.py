"""Tables of the system of record (the ledger) and its projections.

The Core ``Table`` objects here are what queries use; the migrations under ``migrations/versions``
create them (0008 gives the ledger and the records projection the shape below). The layout is
sized for a country: about 250 bytes per accepted operation, all tables and indexes included.

* **ledger_blocks** — the ledger, in immutable blocks of up to 256 consecutive entries. A block
  keeps each entry's canonical bytes (exactly what its hash covers, records.md), joined by newlines
  and compressed with zstd (operations of one provider compress about tenfold), and the entries'
  SHA-256 hashes as 32 raw bytes each. ``prev_hash`` is not stored: it is the previous entry's hash.
  Appends insert new blocks; nothing updates or deletes one (triggers refuse it).
* **ledger_acts** — seq and kind of the entries that are not record operations (catalog loads,
  list actions, decisions, federation entries): the few the application looks up by kind.
* **records** — the current state of each record as scoring needs it, one narrow row: provider and
  category as small dictionary codes (``codes``), dates as day numbers, the kind as 0/1. The record's
  texts (name, summary, attributes, reasons) stay in the ledger only; ``first_seq`` points at its
  submission and ``record_ops`` at its later operations. Clustered on (source, record_id) on SQLite.
* **subjects** — one row per subject: kind, home region, current name (the search index follows it).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Dialect,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    case,
    func,
)
from sqlalchemy.sql.elements import ColumnElement

metadata = MetaData()

#: The day numbers of ``records``: days since 1970-01-01 (so 2026-12-06 is 20,793).
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def day_number(d: date) -> int:
    return d.toordinal() - EPOCH_ORDINAL


def from_day_number(n: int) -> date:
    return date.fromordinal(int(n) + EPOCH_ORDINAL)


class Day(TypeDecorator[date]):
    """A calendar date stored as its day number (an integer: 2-3 bytes on SQLite, 4 on PostgreSQL)."""

    impl = Integer
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if isinstance(value, date):
            return day_number(value)
        return int(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> date | None:
        return None if value is None else from_day_number(value)


KINDS = ("person", "organization")


class KindCode(TypeDecorator[str]):
    """``person`` / ``organization`` stored as 0 / 1."""

    impl = SmallInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return value if isinstance(value, int) else KINDS.index(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else KINDS[int(value)]


#: A ledger seq as a primary key: BIGINT, and on SQLite the rowid itself (INTEGER PRIMARY KEY).
SEQ = BigInteger().with_variant(Integer, "sqlite")

ledger_blocks = Table(
    "ledger_blocks",
    metadata,
    Column("first_seq", SEQ, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("raw_size", Integer, nullable=False),  # bytes of the entries before compression
    Column("entries", LargeBinary, nullable=False),  # zstd(entry bytes joined by b"\n")
    Column("hashes", LargeBinary, nullable=False),  # 32 raw bytes per entry
)

# The entries that are not record operations, by kind (catalog.load, list_action, ...).
ledger_acts = Table(
    "ledger_acts",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=False),
    Column("kind", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Index("ix_ledger_acts_kind", "kind", "seq"),
)

# One row (id = 1): the head of the ledger as last written by the application.
# Appends lock it, so seq has no gaps under concurrent writers; verify compares
# the chain's end with it, so a truncated tail is noticed.
ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

# Small dictionary codes of providers (domain "source") and categories (domain "category"),
# assigned when a provider is registered or a catalog loaded; never changed afterwards.
codes = Table(
    "codes",
    metadata,
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("domain", String(16), nullable=False),
    Column("value", String(128), nullable=False),
    Index("ux_codes_value", "domain", "value", unique=True),
)

records = Table(
    "records",
    metadata,
    # fixed-width columns first, widest first: no alignment padding in PostgreSQL's rows
    Column("first_seq", BigInteger, nullable=False),  # the submission on the ledger
    Column("last_seq", BigInteger, nullable=False),  # the last operation on the ledger
    Column("occurred_on", Day, nullable=False),
    Column("repaired_on", Day),
    Column("source", SmallInteger, primary_key=True, autoincrement=False),  # codes: source
    Column("category", SmallInteger, nullable=False),  # codes: category
    Column("kind", KindCode, nullable=False),
    Column("retracted", Boolean, nullable=False),
    Column("record_id", String(128), primary_key=True),
    Column("subject_id", String(18), nullable=False),
    Column("case_number", String(128)),
    Column("region", String(6)),  # only where it differs from the subject's region
    Index("ix_records_subject", "subject_id", "category"),
    Index("ix_records_occurred_on", "occurred_on"),
    sqlite_with_rowid=False,
)

# The ledger seqs of every operation on a record after its submission (corrections, retractions,
# repairs): with ``records.first_seq`` they replay the record's full state from the ledger.
record_ops = Table(
    "record_ops",
    metadata,
    Column("source", SmallInteger, primary_key=True, autoincrement=False),
    Column("record_id", String(128), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    sqlite_with_rowid=False,
)

subjects = Table(
    "subjects",
    metadata,
    Column("subject_id", String(18), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("region", String(6), nullable=False),
    Column("name", String(200), nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Index("ix_subjects_name", "name"),
)

providers = Table(
    "providers",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("categories", Text, nullable=False),  # JSON list
    Column("created_at", String(32), nullable=False),
    Column("revoked_at", String(32)),
)

catalogs = Table(
    "catalogs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("title", String(200), nullable=False),
    Column("effective_from", Date, nullable=False),
    Column("document", Text, nullable=False),  # canonical JSON of the YAML document
    Column("digest", String(64), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("loaded_at", String(32), nullable=False),
    Column("ledger_seq", BigInteger, nullable=False),
)


def subject_region(r: Any = records) -> ColumnElement[str]:
    """The subject's home region of a ``records`` row, from its identifier (identifiers.md)."""
    return case(
        (r.c.kind == "organization", func.substr(r.c.subject_id, 3, 6)),
        else_=func.substr(r.c.subject_id, 1, 6),
    )


def record_region(r: Any = records) -> ColumnElement[str]:
    """The record's own region: the ``region`` given with it, else the subject's."""
    return func.coalesce(r.c.region, subject_region(r))
