"""Tables of the HTTP API: relying parties, check receipts, the access log and the keystore.

Core ``Table`` objects mirroring migration ``0002_api``. Timestamps are ISO text
(UTC, ``utc_timestamp``), like the ledger's.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, Index, Integer, LargeBinary, MetaData, String, Table, Text

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

# One row per request answered for a relying party (a single check, or a batch of up to 10,000): enough
# to reproduce every answer from the ledger. The answers are stored compactly: ``subjects`` holds the
# identifiers (18 ASCII bytes each, in the order asked), ``answers`` one little-endian uint16 per subject
# indexing ``classes``, the distinct answers (canonical JSON list, each without its subject_id). A batch
# of subjects with nothing on file is a few hundred bytes beside its identifiers.
receipts = Table(
    "receipts",
    metadata,
    Column("no", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("id", String(40), nullable=False, unique=True),  # rc_... (a check) or rb_... (a batch)
    Column("party", String(64), nullable=False),
    Column("activity", String(64), nullable=False),
    Column("at", Date, nullable=False),
    Column("issued_at", String(32), nullable=False),
    Column("ledger_size", BigInteger, nullable=False),
    Column("ledger_head", String(64), nullable=False),
    Column("n", Integer, nullable=False),  # answers
    Column("restricted", Integer, nullable=False),  # of them, restricted
    Column("subject_id", String(18)),  # a single check's subject (batches: receipt_subjects)
    Column("subjects", LargeBinary, nullable=False),
    Column("answers", LargeBinary, nullable=False),
    Column("classes", Text, nullable=False),
    Index("ix_receipts_subject", "subject_id", "issued_at", "id"),
    Index("ix_receipts_party", "party", "issued_at"),
)

# The subjects of batch receipts, for each subject's access log: filled after the answer by
# :func:`socred.service.receipts.index_batches` (a background task of ``socred serve``); the batches
# not yet indexed are searched directly, so the log is complete at every moment.
receipt_subjects = Table(
    "receipt_subjects",
    metadata,
    Column("subject_id", String(18), primary_key=True),
    Column("receipt_no", BigInteger, primary_key=True, autoincrement=False),
    Column("pos", Integer, nullable=False),  # from 1
    sqlite_with_rowid=False,
)

# How far receipt_subjects goes (one row, id = 1): every batch receipt up to ``receipt_no`` is indexed.
receipt_index = Table(
    "receipt_index",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("receipt_no", BigInteger, nullable=False),
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
