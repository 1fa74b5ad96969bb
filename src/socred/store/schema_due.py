"""Tables of due process: objections and appeals, credit repair applications, notices and their outbox.

Core ``Table`` objects mirroring migration ``0004_due_process``. Timestamps are ISO text (UTC,
``utc_timestamp``), dates SQL DATE (Asia/Shanghai calendar days). The outcomes themselves
(retractions, repairs, decisions) are ledger entries; these tables hold the case files.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, Index, MetaData, String, Table, Text

metadata = MetaData()

# An objection to a record, or an appeal against a rejected objection (appeal_of = the objection).
objections = Table(
    "objections",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("subject_id", String(18), nullable=False),
    Column("source", String(64), nullable=False),
    Column("record_id", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("status", String(16), nullable=False),  # open | upheld | rejected
    Column("filed_at", String(32), nullable=False),
    Column("due_by", Date, nullable=False),
    Column("appeal_of", String(40), unique=True),  # at most one appeal per objection
    Column("decided_by", String(128)),
    Column("decided_at", String(32)),
    Column("decision_reason", Text),
    Column("ledger_seq", BigInteger),
    Index("ix_objections_subject", "subject_id", "filed_at"),
    Index("ix_objections_status", "status", "due_by"),
    Index("ix_objections_record", "source", "record_id"),
)

# A credit repair application: applied (subject) -> confirmed (provider or admin) -> approved | refused.
repairs = Table(
    "repairs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("subject_id", String(18), nullable=False),
    Column("source", String(64), nullable=False),
    Column("record_id", String(128), nullable=False),
    Column("commitment", Text, nullable=False),
    Column("status", String(16), nullable=False),  # applied | confirmed | approved | refused
    Column("applied_at", String(32), nullable=False),
    Column("eligible_on", Date, nullable=False),
    Column("confirmed_by", String(128)),
    Column("confirmed_at", String(32)),
    Column("decided_by", String(128)),
    Column("decided_at", String(32)),
    Column("decision_reason", Text),
    Column("repaired_on", Date),
    Column("ledger_seq", BigInteger),
    Index("ix_repairs_subject", "subject_id", "applied_at"),
    Index("ix_repairs_record", "source", "record_id"),
)

# Notices to subjects (a list placement with its measures), which are also the e-mail outbox.
notices = Table(
    "notices",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("subject_id", String(18), nullable=False),
    Column("kind", String(32), nullable=False),  # list.placed
    Column("list_code", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("body", Text, nullable=False),  # JSON: reasons, legal basis, measures, how to object and repair
    Column("delivery", String(16), nullable=False),  # pending | sent | failed | no_address
    Column("delivered_at", String(32)),
    Column("attempts", BigInteger, nullable=False, default=0),
    Index("ix_notices_subject", "subject_id", "created_at"),
    Index("ix_notices_delivery", "delivery"),
)

# The lists each subject was on when notices were last generated: the "before" of the next comparison.
notice_lists = Table(
    "notice_lists",
    metadata,
    Column("subject_id", String(18), primary_key=True),
    Column("list_code", String(64), primary_key=True),
    Column("since", String(10), nullable=False),  # the membership's since date, or "grade"
)

# Small key/value state: the ledger seq up to which notices were generated.
due_state = Table(
    "due_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Manual list actions (migration 0005): an administrator proposes adding or removing a subject on a
# list outside the rules; another administrator approves (a ``list_action`` ledger entry naming both)
# or refuses. Approved rows are a projection of the ledger (rebuilt by ``rebuild_projections``).
list_actions = Table(
    "list_actions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("subject_id", String(18), nullable=False),
    Column("list_code", String(64), nullable=False),
    Column("action", String(8), nullable=False),  # add | remove
    Column("reason", Text, nullable=False),
    Column("until", Date),  # the action applies before this date; null = until another action
    Column("status", String(16), nullable=False),  # pending | approved | refused
    Column("proposed_by", String(128), nullable=False),
    Column("proposed_at", String(32), nullable=False),
    Column("decided_by", String(128)),
    Column("decided_at", String(32)),
    Column("decision_reason", Text),
    Column("effective_from", Date),  # the approval date (Asia/Shanghai)
    Column("ledger_seq", BigInteger),
    Index("ix_list_actions_subject", "subject_id", "status"),
    Index("ix_list_actions_status", "status", "proposed_at"),
    Index("ix_list_actions_seq", "ledger_seq"),
)
