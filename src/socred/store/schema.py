"""Tables of the system of record (the ledger) and its projections.

The Core ``Table`` objects here are what queries use; the migrations under
``migrations/versions`` create them. Dates are SQL DATE, timestamps ISO text
(the ledger hashes the text it stores, so it must round-trip exactly).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

ledger = Table(
    "ledger",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("recorded_at", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
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

records = Table(
    "records",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("record_id", String(128), primary_key=True),
    Column("subject_id", String(18), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("subject_region", String(6), nullable=False),
    Column("subject_name", String(200), nullable=False),
    Column("category", String(64), nullable=False),
    Column("occurred_on", Date, nullable=False),
    Column("case_number", String(128)),
    Column("summary", Text),
    Column("region", String(6)),
    Column("attributes", Text),
    Column("retracted", Boolean, nullable=False, default=False),
    Column("retract_reason", Text),
    Column("repaired_on", Date),
    Column("repair_reason", Text),
    Column("submit_body", Text, nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Index("ix_records_subject", "subject_id"),
    Index("ix_records_last_seq", "last_seq"),
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
