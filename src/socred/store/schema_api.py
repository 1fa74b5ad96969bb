"""Tables of the HTTP API: relying parties, check receipts, the access log and the keystore.

Core ``Table`` objects mirroring migration ``0002_api``. Timestamps are ISO text
(UTC, ``utc_timestamp``), like the ledger's.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# Relying parties (airlines, railways, hotel chains, banks): only the SHA-256 of the key is kept.
parties = Table(
    "parties",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("activities", Text, nullable=False),  # JSON list of activity words
    Column("created_at", String(32), nullable=False),
    Column("rotated_at", String(32)),
    Column("revoked_at", String(32)),
)

# One row per answer given to a relying party: enough to reproduce it from the ledger.
receipts = Table(
    "receipts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("batch_id", String(40)),
    Column("party", String(64), nullable=False),
    Column("subject_id", String(18), nullable=False),
    Column("activity", String(64), nullable=False),
    Column("at", Date, nullable=False),
    Column("decision", String(16), nullable=False),
    Column("catalog", String(96), nullable=False),
    Column("ledger_size", BigInteger, nullable=False),
    Column("ledger_head", String(64), nullable=False),
    Column("issued_at", String(32), nullable=False),
    Column("result", Text, nullable=False),  # canonical JSON of the answer
    Index("ix_receipts_subject", "subject_id", "issued_at", "id"),
    Index("ix_receipts_party", "party", "issued_at"),
    Index("ix_receipts_batch", "batch_id"),
)

# Every read of a subject's non-public data by anyone but the subject.
access_log = Table(
    "access_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("subject_id", String(18), nullable=False),
    Column("at", String(32), nullable=False),
    Column("actor_kind", String(16), nullable=False),  # party | provider | reviewer | admin | auditor
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),  # what: check, report, ledger, access-log, receipt
    Column("purpose", String(500), nullable=False),  # why: the activity checked, or the stated reason
    Column("detail", Text),  # JSON: decision, receipt id, ...
    Index("ix_access_log_subject", "subject_id", "at", "id"),
)

# Secrets the platform generates once when the environment gives none (signing key, token secret).
keystore = Table(
    "keystore",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
)
