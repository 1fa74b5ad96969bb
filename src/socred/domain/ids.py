"""National identifiers of credit subjects (spec: identifiers.md).

Two kinds are accepted:

* the resident identity number of a person (GB 11643-1999), 18 characters
  ``RRRRRR YYYYMMDD SSS C`` with an ISO 7064 MOD 11-2 check character;
* the unified social credit code of an organization (GB 32100-2015), 18 characters from
  ``0123456789ABCDEFGHJKLMNPQRTUWXY`` with an embedded GB 11714 organization code (characters 9-17)
  and a MOD 31 check character.

A raw value is normalised (surrounding white space removed, letters upper-cased) and read as a
resident number if it is valid as one, else as a unified social credit code if valid as one, else it
is rejected with an :class:`IdentifierError` whose ``reason`` is one sentence a clerk can act on and
whose ``kind`` names the reading that came closest.

Choosing the closest reading of an invalid 18-character value: it is read as a resident number when
characters 1-17 are digits, characters 7-14 form a real calendar date (any year from 1000 on, so
that dates before 1900 or in the future get the resident error that says so) and character 18 is a
digit, ``X`` or a character outside the credit-code alphabet; every other 18-character value is
read as a unified social credit code.

This module is pure: no I/O beyond the time-zone data behind "today in Asia/Shanghai". It sits on
the ingest path (one parse per row), so the checksums use precomputed per-position tables.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone, tzinfo
from operator import getitem
from typing import Literal, NamedTuple

__all__ = [
    "IdentifierError",
    "Kind",
    "SubjectId",
    "check_identifier",
    "mask_person_name",
    "mask_plate",
    "mask_resident_id",
    "mask_subject_id",
    "normalise",
    "org_code_check_char",
    "parse_many",
    "parse_subject_id",
    "resident_check_char",
    "uscc_check_char",
    "validate_resident",
    "validate_uscc",
]

Kind = Literal["person", "organization"]

_LENGTH = 18

# --- resident identity number (GB 11643-1999) -------------------------------------------------------

_DIGITS = frozenset("0123456789")
_RES_WEIGHTS = tuple(pow(2, 18 - i, 11) for i in range(1, 18))  # 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2
_RES_CHECK = "10X98765432"
_RES_CHECK_CHARS = frozenset(_RES_CHECK)
# One table per position 1..17: digit -> digit * weight.
_RES_TABLES: tuple[dict[str, int], ...] = tuple({str(d): d * w for d in range(10)} for w in _RES_WEIGHTS)
# ISO 7064 MOD 11-2 with the check character (X = 10) weighted 1: a valid number sums to 1 mod 11.
_RES_TABLES_18 = (*_RES_TABLES, {ch: 10 if ch == "X" else int(ch) for ch in _RES_CHECK_CHARS})
_MIN_BIRTH_YEAR = 1900
_MIN_BIRTH_YMD = "19000101"
# Every real month-day; 29 February also needs a leap year.
_MONTH_DAYS = frozenset(
    f"{d.month:02d}{d.day:02d}" for d in (date(2000, 1, 1) + timedelta(days=i) for i in range(366))
)

# --- unified social credit code (GB 32100-2015) and organization code (GB 11714) --------------------

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_CHARS = frozenset(_USCC_ALPHABET)
# 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28
_USCC_WEIGHTS = tuple(pow(3, i - 1, 31) for i in range(1, 18))
# One table per position 1..17: character -> (alphabet index * weight). A KeyError means "not allowed".
_USCC_TABLES: tuple[dict[str, int], ...] = tuple(
    {ch: idx * w for idx, ch in enumerate(_USCC_ALPHABET)} for w in _USCC_WEIGHTS
)
# The check character (alphabet index, weight 1) completes the sum to 0 mod 31.
_USCC_TABLES_18 = (*_USCC_TABLES, {ch: idx for idx, ch in enumerate(_USCC_ALPHABET)})
_USCC_FORBIDDEN_LETTERS = frozenset("IOZSV")
# Letters of the credit-code alphabet other than X: a value ending in one of them is no resident number.
_USCC_ONLY_LETTERS = frozenset(ch for ch in _USCC_ALPHABET if ch.isalpha() and ch != "X")

_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_VALUES = {ch: int(ch, 36) for ch in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}  # 0-9 -> 0-9, A-Z -> 10-35
_ORG_TABLES: tuple[dict[str, int], ...] = tuple(
    {ch: v * w for ch, v in _ORG_VALUES.items()} for w in _ORG_WEIGHTS
)
# c = 11 - (sum mod 11); 10 is written X, 11 is written 0.
_ORG_CHECK = tuple("0" if c == 11 else "X" if c == 10 else str(c) for c in (11 - r for r in range(11)))
# The check character (X = 10, 0 = 11 = 0 mod 11) completes the sum to 0 mod 11.
_ORG_TABLES_9 = (*_ORG_TABLES, {ch: 10 if ch == "X" else int(ch) for ch in "0123456789X"})

_PILOT_NOTE = (
    " (the checksum fails; some early pilot codes are legal yet fail it, so confirm such a code"
    " with the registration authority)"
)

# --- "today" in Asia/Shanghai, cached until the next local midnight ---------------------------------


def _load_shanghai() -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Asia/Shanghai")
    except Exception:  # pragma: no cover - no tz database at all; Shanghai has been UTC+8 since 1991
        return timezone(timedelta(hours=8), "Asia/Shanghai")


_SHANGHAI = _load_shanghai()
# (start of the cached day in POSIX seconds, start of the next day, the day, the day as YYYYMMDD)
_today_cache: tuple[float, float, date, str] = (0.0, 0.0, date.min, "00010101")


def _refresh_today() -> tuple[float, float, date, str]:
    global _today_cache
    day = datetime.fromtimestamp(time.time(), _SHANGHAI).date()
    nxt = day + timedelta(days=1)
    _today_cache = (
        datetime(day.year, day.month, day.day, tzinfo=_SHANGHAI).timestamp(),
        datetime(nxt.year, nxt.month, nxt.day, tzinfo=_SHANGHAI).timestamp(),
        day,
        _ymd(day),
    )
    return _today_cache


def _shanghai_today() -> date:
    cache = _today_cache
    if not cache[0] <= time.time() < cache[1]:
        cache = _refresh_today()
    return cache[2]


def _shanghai_today_ymd() -> str:
    cache = _today_cache
    if not cache[0] <= time.time() < cache[1]:
        cache = _refresh_today()
    return cache[3]


def _ymd(day: date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def _acceptable_birth(ymd: str, today_ymd: str) -> bool:
    """Whether 8 ASCII digits are a real date from 1900 on and not after ``today_ymd`` (fast path)."""
    if not _MIN_BIRTH_YMD <= ymd <= today_ymd:
        return False
    md = ymd[4:]
    if md not in _MONTH_DAYS:
        return False
    if md == "0229":
        year = int(ymd[:4])
        return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return True


# --- public types -----------------------------------------------------------------------------------


class IdentifierError(ValueError):
    """An identifier that cannot be accepted.

    ``reason`` is one clear sentence a clerk can act on, e.g. ``"check character should be 'X', got
    '7'"``; ``kind`` is the reading that came closest (``None`` when neither reading applies, e.g. for
    an empty value or a value of the wrong length).
    """

    reason: str
    kind: Kind | None

    def __init__(self, reason: str, kind: Kind | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind

    def __str__(self) -> str:
        return self.reason


class SubjectId(NamedTuple):
    """A valid identifier: ``value`` normalised, its ``kind`` and its 6-digit home ``region``."""

    value: str
    kind: Kind
    region: str


# --- check characters -------------------------------------------------------------------------------


def resident_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character ('0'-'9' or 'X') of the first 17 digits of a resident number."""
    if len(first17) != 17:
        raise IdentifierError(
            f"a resident check character is computed from exactly 17 digits, got {len(first17)} characters",
            "person",
        )
    for pos, ch in enumerate(first17, 1):
        if ch not in _DIGITS:
            raise IdentifierError(
                f"character {pos} {ch!r} is not allowed in a resident identity number (characters 1-17 must be digits)",
                "person",
            )
    return _RES_CHECK[sum(map(getitem, _RES_TABLES, first17)) % 11]


def uscc_check_char(first17: str) -> str:
    """The check character (character 18) of a unified social credit code from its first 17 characters."""
    body = first17.upper()
    if len(body) != 17:
        raise IdentifierError(
            f"a credit-code check character is computed from exactly 17 characters, got {len(body)}",
            "organization",
        )
    try:
        total = sum(map(getitem, _USCC_TABLES, body))
    except KeyError:
        raise _uscc_alphabet_error(body) from None
    return _USCC_ALPHABET[-total % 31]


def org_code_check_char(body8: str) -> str:
    """The GB 11714 check character ('0'-'9' or 'X') of an 8-character organization code body."""
    body = body8.upper()
    if len(body) != 8:
        raise IdentifierError(
            f"an organization code check character is computed from exactly 8 characters, got {len(body)}",
            "organization",
        )
    try:
        total = sum(map(getitem, _ORG_TABLES, body))
    except KeyError:
        pos, ch = next((i, c) for i, c in enumerate(body, 1) if c not in _ORG_VALUES)
        raise IdentifierError(
            f"character {pos} {ch!r} is not allowed in an organization code body (digits and letters only)",
            "organization",
        ) from None
    return _ORG_CHECK[total % 11]


# --- validation -------------------------------------------------------------------------------------


def normalise(raw: str) -> str:
    """Remove surrounding white space and upper-case letters (so a final ``x`` becomes ``X``)."""
    return raw.strip().upper()


def _birth_date_error(value: str, today: date) -> str | None:
    """The reason characters 7-14 of ``value`` (digits) are no acceptable date of birth, or None."""
    if isinstance(today, datetime):
        today = today.date()
    ymd = value[6:14]
    try:
        born = date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:]))
    except ValueError:
        return f"date of birth '{ymd}' (characters 7-14) is not a real calendar date"
    if born.year < _MIN_BIRTH_YEAR:
        return f"date of birth {born.isoformat()} (characters 7-14) is before {_MIN_BIRTH_YEAR}"
    if born > today:
        return f"date of birth {born.isoformat()} (characters 7-14) is in the future (today is {today.isoformat()})"
    return None


def _resident_reason(value: str, today: date | None) -> str | None:
    """Why the normalised ``value`` is no valid resident number, or None if it is one."""
    n = len(value)
    if n != _LENGTH:
        return f"resident identity number must be {_LENGTH} characters, got {n}"
    for pos, ch in enumerate(value[:17], 1):
        if ch not in _DIGITS:
            return f"character {pos} {ch!r} is not allowed in a resident identity number (characters 1-17 must be digits)"
    last = value[17]
    if last not in _RES_CHECK_CHARS:
        return f"check character (position 18) {last!r} is not allowed in a resident identity number (must be a digit or 'X')"
    reason = _birth_date_error(value, _shanghai_today() if today is None else today)
    if reason is not None:
        return reason
    expected = _RES_CHECK[sum(map(getitem, _RES_TABLES, value)) % 11]
    if expected != last:
        return f"check character should be '{expected}', got '{last}'"
    return None


def _uscc_alphabet_error(value: str) -> IdentifierError:
    pos, ch = next((i, c) for i, c in enumerate(value, 1) if c not in _USCC_CHARS)
    if ch in _USCC_FORBIDDEN_LETTERS:
        hint = "(no I, O, Z, S, V)"
    else:
        hint = "(only digits and the letters A-Y except I, O, S, V)"
    return IdentifierError(
        f"character {pos} {ch!r} is not allowed in a unified social credit code {hint}", "organization"
    )


def _uscc_reason(value: str) -> str | None:
    """Why the normalised ``value`` is no valid unified social credit code, or None if it is one."""
    n = len(value)
    if n != _LENGTH:
        return f"unified social credit code must be {_LENGTH} characters, got {n}"
    if value[17] not in _USCC_CHARS:
        return _uscc_alphabet_error(value).reason
    try:
        total = sum(map(getitem, _USCC_TABLES, value))
    except KeyError:
        return _uscc_alphabet_error(value).reason
    org_expected = _ORG_CHECK[sum(map(getitem, _ORG_TABLES, value[8:16])) % 11]
    if org_expected != value[16]:
        return (
            f"organization code check character (position 17) should be '{org_expected}', got '{value[16]}'"
        )
    expected = _USCC_ALPHABET[-total % 31]
    if expected != value[17]:
        return f"check character should be '{expected}', got '{value[17]}'{_PILOT_NOTE}"
    return None


def validate_resident(value: str, today: date | None = None) -> None:
    """Raise :class:`IdentifierError` (kind ``"person"``) unless ``value`` is a valid resident number.

    ``value`` is normalised first. ``today`` (default: today in Asia/Shanghai) bounds the date of birth.
    Checks, in order: length, digits in characters 1-17, the check character is a digit or ``X``, the
    date of birth (a real date, from 1900, not in the future), the MOD 11-2 check character.
    """
    reason = _resident_reason(normalise(value), today)
    if reason is not None:
        raise IdentifierError(reason, "person")


def validate_uscc(value: str) -> None:
    """Raise :class:`IdentifierError` (kind ``"organization"``) unless ``value`` is a valid credit code.

    ``value`` is normalised first. Checks, in order: length, alphabet, the organization-code check
    character (position 17), the whole-code check character (position 18).
    """
    reason = _uscc_reason(normalise(value))
    if reason is not None:
        raise IdentifierError(reason, "organization")


def _reads_as_resident(value: str) -> bool:
    """Whether an invalid 18-character value is closer to a resident number than to a credit code."""
    if value[17] in _USCC_ONLY_LETTERS:
        return False
    head = value[:17]
    if not (head.isascii() and head.isdigit()) or value[6] == "0":
        return False
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return True


def parse_subject_id(raw: str, today: date | None = None) -> SubjectId:
    """Read ``raw`` as a resident number, else as a unified social credit code; raise if it is neither.

    ``today`` (default: today in Asia/Shanghai) bounds a resident's date of birth.
    """
    value = raw.strip().upper()
    if len(value) != _LENGTH:
        if not value:
            raise IdentifierError(
                "identifier is empty: enter an 18-character resident identity number or unified social credit code"
            )
        raise IdentifierError(f"identifier must be {_LENGTH} characters, got {len(value)}")

    # Fast path, resident number: 17 ASCII digits, a check character that completes the MOD 11-2 sum,
    # an acceptable date of birth.
    if (
        value.isascii()
        and value[:17].isdigit()
        and value[17] in _RES_CHECK_CHARS
        and sum(map(getitem, _RES_TABLES_18, value)) % 11 == 1
        and _acceptable_birth(value[6:14], _shanghai_today_ymd() if today is None else _ymd(today))
    ):
        return SubjectId(value, "person", value[:6])

    # Fast path, unified social credit code: alphabet and whole-code check, organization-code check.
    try:
        if (
            sum(map(getitem, _USCC_TABLES_18, value)) % 31 == 0
            and sum(map(getitem, _ORG_TABLES_9, value[8:17])) % 11 == 0
        ):
            return SubjectId(value, "organization", value[2:8])
    except KeyError:  # a character outside the alphabet, or a letter other than X at position 17
        pass

    # Invalid: report the reading that came closest.
    if _reads_as_resident(value):
        reason = _resident_reason(value, today)
        kind: Kind = "person"
    else:
        reason = _uscc_reason(value)
        kind = "organization"
    if reason is None:  # pragma: no cover - both fast paths above agree with the slow checks
        raise AssertionError(f"inconsistent identifier checks for {value!r}")
    raise IdentifierError(reason, kind)


def check_identifier(raw: str, today: date | None = None) -> dict[str, object]:
    """The outcome of reading ``raw``, as published by the identifier-check endpoint.

    Exactly ``{"value", "valid", "kind", "region", "error"}``: ``value`` is ``raw`` as given; for an
    invalid value ``kind`` and ``region`` are ``None`` and ``error`` is the reason.
    """
    try:
        sid = parse_subject_id(raw, today)
    except IdentifierError as e:
        return {"value": raw, "valid": False, "kind": None, "region": None, "error": e.reason}
    return {"value": raw, "valid": True, "kind": sid.kind, "region": sid.region, "error": None}


# --- masking for public display ---------------------------------------------------------------------


def _mask_middle(value: str) -> str:
    """First 4 and last 4 kept when at least 10 characters would still be hidden, else all masked."""
    n = len(value)
    if n >= _LENGTH:
        return value[:4] + "*" * (n - 8) + value[-4:]
    return "*" * n


def mask_resident_id(value: str) -> str:
    """``1101**********002X``: first 4 and last 4 characters kept, the 10 between replaced by ``*``.

    The value is normalised first. A value of another length (so no resident number) keeps its first
    and last 4 only when it is longer than 18; a shorter one is masked entirely.
    """
    return _mask_middle(normalise(value))


def _looks_like_resident(value: str) -> bool:
    """17 digits, a digit or X, and characters 7-14 a plausible date of birth (year 1900 or later)."""
    if len(value) != _LENGTH or value[17] not in _RES_CHECK_CHARS:
        return False
    head = value[:17]
    if not (head.isascii() and head.isdigit()):
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return born.year >= _MIN_BIRTH_YEAR


def mask_subject_id(value: str) -> str:
    """A subject identifier fit for a public page.

    A valid unified social credit code is public registration data and is shown in full (normalised),
    unless it could also pass for a resident number (17 digits, a digit or X, a date of birth in
    characters 7-14): such a value is masked like a resident number, so that a mistyped resident number
    that happens to pass the credit-code checksums is never shown. Resident numbers and invalid values
    keep only their first 4 and last 4 characters (values shorter than 18 are masked entirely).
    """
    v = normalise(value)
    if len(v) == _LENGTH and _uscc_reason(v) is None and not _looks_like_resident(v):
        return v
    return _mask_middle(v)


_NAME_SEPARATORS = frozenset(" ·•・")


def mask_person_name(name: str) -> str:
    """A person's name fit for a public page: the first character kept, every other one replaced by ``*``.

    ``'张三丰' -> '张**'``. The first character stands for the surname; for a compound surname
    (``'欧阳修' -> '欧**'``) only its first character is kept, which hides more, never less. Latin-script
    names are treated alike, character by character (``'John Smith' -> 'J*** *****'``): which word is
    the surname cannot be told reliably, and keeping only the first letter never reveals a whole word.
    Separators (spaces, the middle dot of transliterated names such as ``'阿依古丽·买买提'``) are kept.
    Surrounding white space is removed and internal runs of white space collapse to one space. A name
    that would come out unchanged (a single character, say) is masked entirely (``'张' -> '*'``), so
    the full name is never returned.
    """
    cleaned = " ".join(name.split())
    masked = cleaned[:1] + "".join(ch if ch in _NAME_SEPARATORS else "*" for ch in cleaned[1:])
    if masked == cleaned:  # a single character, or nothing but separators after the first
        return "*" * len(cleaned)
    return masked


_PLATE_SEPARATORS = str.maketrans("", "", " \t·•・-.")


def mask_plate(plate: str) -> str:
    """A vehicle plate fit for a public page: ``'沪A12345' -> '沪A***45'``.

    The province character, the authority letter and the last 2 characters are kept, each character
    between replaced by ``*`` (new-energy plates: ``'沪AD12345' -> '沪A****45'``). Letters are
    upper-cased and white space and separators (``·``, ``-``, ``.``) dropped first. A plate of 4
    characters or fewer keeps only its first 2 characters.
    """
    p = plate.translate(_PLATE_SEPARATORS).upper()
    n = len(p)
    if n > 4:
        return p[:2] + "*" * (n - 4) + p[-2:]
    return p[:2] + "*" * (n - 2) if n > 2 else "*" * n


def parse_many(raw: Sequence[str], today: date | None = None) -> list[SubjectId | None]:
    """:func:`parse_subject_id` of many values at once (the checksums as array arithmetic): the parsed
    identifier, or None where the value is invalid (:func:`parse_subject_id` then says why).

    The same reading as :func:`parse_subject_id` (tests/domain/test_ids.py compares the two): a resident
    number when 17 digits, a check character completing MOD 11-2 and a real date of birth from 1900
    to ``today``; else a unified social credit code when in the alphabet with both checks.
    """
    import numpy as np

    values = [v.strip().upper() for v in raw]
    n = len(values)
    if n == 0:
        return []
    shaped = np.array([len(v) == _LENGTH and v.isascii() for v in values], dtype=bool)
    filler = "0" * _LENGTH
    buf = "".join(v if ok else filler for v, ok in zip(values, shaped.tolist(), strict=True)).encode("ascii")
    m = np.frombuffer(buf, dtype=np.uint8).reshape(n, _LENGTH).astype(np.int64)
    d = m - 48
    digits17 = np.all((m[:, :17] >= 48) & (m[:, :17] <= 57), axis=1)
    last = m[:, 17]
    check = np.where(last == ord("X"), 10, d[:, 17])
    res_ok = (d[:, :17] @ np.array(_RES_WEIGHTS, dtype=np.int64) + check) % 11 == 1
    y = d[:, 6:10] @ np.array([1000, 100, 10, 1])
    mo = d[:, 10:12] @ np.array([10, 1])
    dd = d[:, 12:14] @ np.array([10, 1])
    ymd = y * 10000 + mo * 100 + dd
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    dim = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(mo, 0, 12)] - (
        (mo == 2) & ~leap
    )
    real = (mo >= 1) & (mo <= 12) & (dd >= 1) & (dd <= dim)
    top = int(_shanghai_today_ymd() if today is None else _ymd(today))
    person = (
        shaped
        & digits17
        & (((last >= 48) & (last <= 57)) | (last == ord("X")))
        & res_ok
        & (ymd >= int(_MIN_BIRTH_YMD))
        & (ymd <= top)
        & real
    )
    index = np.full(256, -1, dtype=np.int64)
    for i, ch in enumerate(_USCC_ALPHABET):
        index[ord(ch)] = i
    base36 = np.full(256, -1, dtype=np.int64)
    for ch, v in _ORG_VALUES.items():
        base36[ord(ch)] = v
    idx = index[m]
    in_alphabet = np.all(idx >= 0, axis=1)
    uscc_ok = (idx[:, :17] @ np.array(_USCC_WEIGHTS, dtype=np.int64) + idx[:, 17]) % 31 == 0
    org_last = m[:, 16]
    org_check_ok = ((org_last >= 48) & (org_last <= 57)) | (org_last == ord("X"))
    body = base36[m[:, 8:16]]
    org_ok = (
        body @ np.array(_ORG_WEIGHTS, dtype=np.int64) + np.where(org_last == ord("X"), 10, d[:, 16])
    ) % 11 == 0
    org = shaped & ~person & in_alphabet & uscc_ok & org_check_ok & np.all(body >= 0, axis=1) & org_ok
    kind = np.where(person, 1, np.where(org, 2, 0)).tolist()
    return [
        SubjectId(v, "person", v[:6]) if k == 1 else SubjectId(v, "organization", v[2:8]) if k == 2 else None
        for v, k in zip(values, kind, strict=True)
    ]
