"""Small helpers the use cases share: case-file ids and dates as the databases return them."""

from __future__ import annotations

import os
import random
import time
from datetime import date
from typing import Any

# Seeded once from the OS; ids need uniqueness, not secrecy, and os.urandom per id would release the
# GIL on the check worker's hot path (each release costs a wait behind the event loop).
_RANDOM = random.Random(os.urandom(32))
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str) -> str:
    """A time-ordered unique id (ULID layout: 48-bit milliseconds, 80 random bits) after ``prefix``."""
    n = (int(time.time() * 1000) << 80) | _RANDOM.getrandbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[n & 31])
        n >>= 5
    return prefix + "".join(reversed(chars))


def as_day(v: Any) -> date:
    """A DATE column's value (a date on PostgreSQL, ISO text on SQLite) as a date."""
    return v if isinstance(v, date) else date.fromisoformat(str(v)[:10])


def iso_day(v: Any) -> str | None:
    return None if v is None else as_day(v).isoformat()
