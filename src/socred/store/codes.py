"""Small dictionary codes for providers and categories (the ``codes`` table).

``records`` keeps a provider and a category as a small integer instead of its text: two bytes
where the text took ten to thirty, in the row and in every index that carries it. A code is
assigned once — when a provider is registered, a catalog loaded, or a replicated record names a
provider of another node — and never changes, so every process may cache the table and reads it
again only when it meets a code it does not know.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Literal

from sqlalchemy import Connection, Engine, func, insert, select

from socred.store import schema as t

Domain = Literal["source", "category"]

__all__ = ["Codes", "Domain", "codes_of"]


class Codes:
    """The codes of one database, cached. Thread-safe; ids never change once given."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: dict[tuple[str, str], int] = {}
        self._values: dict[int, tuple[str, str]] = {}

    def load(self, conn: Connection) -> None:
        """Read the table again, on a connection of its own: only committed codes are ever cached (a
        code given in a transaction that rolls back must not be remembered)."""
        raw = conn.engine.raw_connection()  # no BEGIN IMMEDIATE: never waits for the caller's lock
        try:
            cur = raw.cursor()
            cur.execute("SELECT id, domain, value FROM codes")
            rows = cur.fetchall()
            cur.close()
            raw.rollback()
        finally:
            raw.close()
        with self._lock:
            for cid, domain, value in rows:
                self._ids[(domain, value)] = int(cid)
                self._values[int(cid)] = (domain, value)

    def get(self, conn: Connection, domain: Domain, value: str) -> int | None:
        """The code of ``value``, or None when it has none (read again from the table on a miss)."""
        got = self._ids.get((domain, value))
        if got is None:
            self.load(conn)
            got = self._ids.get((domain, value))
        return got

    def ids(self, conn: Connection, domain: Domain, values: Iterable[str]) -> dict[str, int]:
        """The codes of those ``values`` that have one."""
        wanted = set(values)
        if any((domain, v) not in self._ids for v in wanted):
            self.load(conn)
        return {v: self._ids[(domain, v)] for v in wanted if (domain, v) in self._ids}

    def value(self, conn: Connection, code: int) -> str:
        """The text behind a code (a provider code or a category code)."""
        got = self._values.get(code)
        if got is None:
            self.load(conn)
            got = self._values.get(code)
            if got is None:
                raise KeyError(f"no dictionary code {code}")
        return got[1]

    def values(self, conn: Connection) -> dict[int, str]:
        """Every code with its text (for decoding many rows at once)."""
        if not self._values:
            self.load(conn)
        return {cid: v for cid, (_d, v) in self._values.items()}

    def ensure(self, conn: Connection, domain: Domain, values: Iterable[str]) -> dict[str, int]:
        """Codes for ``values``, giving new ones to those without, inside the caller's transaction.

        The caller must hold the ledger's append lock (:func:`socred.store.repo.lock_head`): writers
        are serialised by it, so two of them never give one number twice.
        """
        wanted = sorted(set(values))
        have = self.ids(conn, domain, wanted)
        missing = [v for v in wanted if v not in have]
        if missing:  # given earlier in this same transaction?
            for cid, value in conn.execute(
                select(t.codes.c.id, t.codes.c.value).where(
                    t.codes.c.domain == domain, t.codes.c.value.in_(missing)
                )
            ):
                have[str(value)] = int(cid)
            missing = [v for v in wanted if v not in have]
        if missing:
            top = int(conn.execute(select(func.coalesce(func.max(t.codes.c.id), 0))).scalar_one())
            given = {v: top + i + 1 for i, v in enumerate(missing)}
            if top + len(missing) > 32767:
                raise RuntimeError("the dictionary of provider and category codes is full (32,767 codes)")
            conn.execute(insert(t.codes), [{"id": i, "domain": domain, "value": v} for v, i in given.items()])
            have.update(given)
            # not cached yet: the transaction may still roll back; the next miss reads them
        return have


_BY_ENGINE: weakref.WeakKeyDictionary[Engine, Codes] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def codes_of(conn_or_engine: Connection | Engine) -> Codes:
    """The process's cache of the codes of this database."""
    engine = conn_or_engine.engine if isinstance(conn_or_engine, Connection) else conn_or_engine
    with _GUARD:
        got = _BY_ENGINE.get(engine)
        if got is None:
            got = _BY_ENGINE[engine] = Codes()
        return got
