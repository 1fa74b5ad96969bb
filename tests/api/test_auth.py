"""Session tokens: signature, expiry, algorithm, claims; keys only as hashes."""

from __future__ import annotations

import base64
import json

import pytest

from socred.service.auth import LedgerSigner, TokenCodec, TokenError, parse_ttl, verify_checkpoint
from socred.service.platform import UsageError
from tests.helpers import PERSON

SECRET = "unit-secret-0123456789"


def b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def test_round_trip_and_claims() -> None:
    c = TokenCodec(SECRET)
    t = c.issue(PERSON.lower(), "subject", ttl=60, now=1_000)
    p = c.verify(t, now=1_030)
    assert (p.kind, p.id, p.expires_at) == ("subject", PERSON, 1_060)
    staff = c.verify(c.issue("bob@court", "reviewer", now=1_000), now=1_001)
    assert (staff.kind, staff.id) == ("reviewer", "bob@court")


@pytest.mark.parametrize(
    "mutate", ["expired", "future", "tampered", "other_key", "alg_none", "parts", "garbage", "role"]
)
def test_rejections(mutate: str) -> None:
    c = TokenCodec(SECRET)
    t = c.issue("alice", "admin", ttl=60, now=1_000)
    now = 1_010
    head, payload, sig = t.split(".")
    if mutate == "expired":
        now = 1_060
    elif mutate == "future":
        now = 900
    elif mutate == "tampered":
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        t = f"{head}.{b64({**claims, 'role': 'auditor'})}.{sig}"
    elif mutate == "other_key":
        t = TokenCodec("another-secret-0123456789").issue("alice", "admin", ttl=60, now=1_000)
    elif mutate == "alg_none":
        t = f"{b64({'alg': 'none'})}.{payload}."
    elif mutate == "parts":
        t = f"{head}.{payload}"
    elif mutate == "garbage":
        t = "a.b!.c"
    elif mutate == "role":
        forged = TokenCodec(SECRET)
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        body = f"{head}.{b64({**claims, 'role': 'king'})}"
        t = f"{body}.{forged._sign(body)}"
    with pytest.raises(TokenError):
        c.verify(t, now=now)


def test_ttl_and_subjects() -> None:
    assert [parse_ttl(v) for v in ("90", "90s", "15m", "8h", "7d")] == [90, 90, 900, 28_800, 604_800]
    for bad in ("0", "31d", "soon", "-5", "1w"):
        with pytest.raises(UsageError):
            parse_ttl(bad)
    c = TokenCodec(SECRET)
    with pytest.raises(UsageError):
        c.issue(PERSON[:-1] + "7", "subject")
    with pytest.raises(UsageError):
        c.issue("bad user", "admin")
    with pytest.raises(UsageError):
        TokenCodec("short")


def test_checkpoint_signature() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    s = LedgerSigner(Ed25519PrivateKey.generate(), "o")
    cp = s.checkpoint(3, "ab" * 32)
    assert verify_checkpoint(cp)
    assert not verify_checkpoint({**cp, "signature": base64.b64encode(b"x" * 64).decode()})
    assert not verify_checkpoint({**cp, "key_id": "0" * 16})
