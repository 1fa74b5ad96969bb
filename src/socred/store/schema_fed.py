"""Tables of federation (migration ``0006_federation``): other nodes, what was taken from them, and what
flowed down from above. The replicated operations themselves are entries of this node's ledger; these
tables hold where they came from and how far each upstream has been verified.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# Upstream sources this node pulls from. pull = "ledger" (a local node below: its records come up)
# or "lists" (the national node above: its list memberships come down).
nodes = Table(
    "nodes",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("url", String(500), nullable=False),
    Column("public_key", String(64), nullable=False),  # base64 Ed25519, registered out of band
    Column("regions", Text, nullable=False),  # JSON list of region prefixes
    Column("pull", String(8), nullable=False),
    Column("credential", Text, nullable=False),  # the key this node presents to the upstream
    Column("added_at", String(32), nullable=False),
    Column("verified_seq", BigInteger, nullable=False, default=0),  # last upstream entry verified and applied
    Column("verified_hash", String(64), nullable=False),
    Column("verified_at", String(32)),
    Column("checkpoint", Text),  # JSON: the last signed checkpoint verified
    Column("frontier", Text),  # JSON list of hex: Merkle frontier of the verified_seq entries
    Column("upstream_size", BigInteger, nullable=False, default=0),  # the head last seen
    Column("upstream_seen_at", String(32)),
    Column("oldest_pending_at", String(32)),  # recorded_at of the first entry not yet applied
    Column("applied", BigInteger, nullable=False, default=0),
    Column("duplicates", BigInteger, nullable=False, default=0),
    Column("rejected", BigInteger, nullable=False, default=0),
    Column("errors", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("last_error_at", String(32)),
)

# Downstream nodes allowed to read this node (their keys, as hashes).
node_keys = Table(
    "node_keys",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("regions", Text, nullable=False),  # JSON list: what it may read of national lists
    Column("created_at", String(32), nullable=False),
    Column("revoked_at", String(32)),
)

# One row per upstream operation taken into this ledger: where each local entry came from.
replicated = Table(
    "replicated",
    metadata,
    Column("node", String(32), primary_key=True),
    Column("origin_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("origin_hash", String(64), nullable=False),
    Column("outcome", String(12), nullable=False),  # applied | duplicate | rejected
    Column("local_seq", BigInteger),  # the entry in this ledger (applied)
    Column("source", String(64)),  # the record operated on
    Column("record_id", String(128)),
    Column("detail", Text),  # why rejected
    Index("ix_replicated_local", "local_seq"),
    Index("ix_replicated_record", "node", "source", "record_id"),
)

# Catalogs of upstream nodes: kept to reproduce their answers, never chosen for this node's own scoring.
node_catalogs = Table(
    "node_catalogs",
    metadata,
    Column("node", String(32), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("document", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("origin_seq", BigInteger, nullable=False),
)

# The same subject under different names from different nodes: both kept, flagged for review.
name_conflicts = Table(
    "name_conflicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject_id", String(18), nullable=False),
    Column("name", String(200), nullable=False),  # the name kept on the subject
    Column("other_name", String(200), nullable=False),  # the name that arrived
    Column("node", String(32), nullable=False),
    Column("origin_seq", BigInteger, nullable=False),
    Column("flagged_at", String(32), nullable=False),
    Column("resolved_at", String(32)),
    Index("ix_name_conflicts_subject", "subject_id"),
)

# List memberships published by an upstream (national) node for this node's regions, one set per
# snapshot (ledger_seq = the federation.lists entry that brought it): past answers stay reproducible.
national_lists = Table(
    "national_lists",
    metadata,
    Column("node", String(32), primary_key=True),
    Column("ledger_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("subject_id", String(18), primary_key=True),
    Column("list_code", String(64), primary_key=True),
    Column("catalog", String(80), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("title", String(200), nullable=False),
    Column("since", Date),
    Column("until", Date),
    Column("measures", Text, nullable=False),  # JSON [{code, activity, effect}]
)
