"""Small helpers the use cases share: case-file ids and dates as the databases return them."""

from __future__ import annotations

import base64
import os
import random
import time
from datetime import date
from typing import Any

# Seeded once from the OS; ids need uniqueness, not secrecy, and os.urandom per id would release the
# GIL on the check worker's hot path (each release costs a wait behind the event loop).
_RANDOM = random.Random(os.urandom(32))
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


_TO_CROCKFORD = str.maketrans("0123456789ABCDEFGHIJKLMNOPQRSTUV", _CROCKFORD)


def new_id(prefix: str) -> str:
    """A time-ordered unique id (ULID layout: 48-bit milliseconds, 80 random bits) after ``prefix``."""
    n = (int(time.time() * 1000) << 80) | _RANDOM.getrandbits(80)
    # the 26 characters are the 130-bit number (two leading zero bits) in 5-bit groups: base32hex of its
    # bits left-aligned in 17 bytes, in the Crockford alphabet (done in C, not a loop of 26 steps)
    return prefix + base64.b32hexencode((n << 6).to_bytes(17, "big"))[:26].decode("ascii").translate(
        _TO_CROCKFORD
    )


def as_day(v: Any) -> date:
    """A DATE column's value (a date on PostgreSQL, ISO text on SQLite) as a date."""
    return v if isinstance(v, date) else date.fromisoformat(str(v)[:10])


def iso_day(v: Any) -> str | None:
    return None if v is None else as_day(v).isoformat()
