"""Credentials: API keys of providers and relying parties, signed session tokens, the keystore.

* **API keys** (providers ``sp_…``, relying parties ``rp_…``) are random; only their
  SHA-256 is stored. Revoking sets ``revoked_at``; rotating replaces the hash, so the
  old key stops working at once and the new one is shown once.
* **Session tokens** for subjects, reviewers, administrators and auditors are compact
  JWTs signed with HMAC-SHA256 (``alg: HS256``) under ``SOCRED_TOKEN_SECRET`` (or a
  secret generated once and kept in the keystore table). They carry ``sub``, ``role``,
  ``iat``, ``exp``, ``jti`` and ``iss``. Another verifier (OIDC) can replace them: see
  docs/api.md.
* **The ledger signing key** is Ed25519, from ``SOCRED_SIGNING_KEY`` or generated once and
  kept in the keystore table; it signs checkpoints of the ledger head.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from socred.domain.ids import IdentifierError, parse_subject_id
from socred.ledger.chain import GENESIS_HEX, checkpoint_message, utc_timestamp
from socred.service.platform import NotFound, Platform, UsageError, hash_key, new_key
from socred.store import ledger, repo
from socred.store import schema as t
from socred.store import schema_api as ta

PrincipalKind = Literal["provider", "party", "subject", "reviewer", "admin", "auditor", "node"]
TOKEN_ROLES: tuple[str, ...] = ("subject", "reviewer", "admin", "auditor")
STAFF_ROLES: frozenset[str] = frozenset({"reviewer", "admin", "auditor"})

PARTY_CODE_RE = re.compile(r"^[a-z0-9.-]{1,64}$")
ACTIVITY_RE = re.compile(r"^[a-z0-9_]{1,64}$")
USER_RE = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
PROVIDER_PREFIX = "sp_"
PARTY_PREFIX = "rp_"
NODE_PREFIX = "nk_"
ISSUER = "socred"
MAX_TTL = 30 * 24 * 3600
CLOCK_SKEW = 30


class TokenError(Exception):
    """A session token that cannot be accepted; the message says why (never echoes the token)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the kind of credential, its holder and what it may touch."""

    kind: PrincipalKind
    id: str  # provider code, party code, subject identifier or user name
    name: str = ""
    activities: frozenset[str] = frozenset()  # relying parties
    categories: frozenset[str] = frozenset()  # providers
    token_id: str | None = None
    expires_at: int | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def role(self) -> str:
        return self.kind

    def describe(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True, slots=True)
class Party:
    code: str
    name: str
    activities: frozenset[str]
    revoked: bool
    created_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "activities": sorted(self.activities),
            "revoked": self.revoked,
            "created_at": self.created_at,
        }


# ------------------------------------------------------------------ relying parties


def _party(r: Any) -> Party:
    return Party(r.code, r.name, frozenset(json.loads(r.activities)), r.revoked_at is not None, r.created_at)


def known_activities(platform: Platform) -> frozenset[str]:
    """Activity words named by a measure of any loaded catalog."""
    out: set[str] = set()
    for c in platform.catalogs():
        out.update(m.activity for m in c.measures.values())
    return frozenset(out)


def _clean_activities(platform: Platform, activities: Iterable[str]) -> list[str]:
    acts = sorted({a.strip().lower() for a in activities if a.strip()})
    if not acts:
        raise UsageError(
            "a relying party needs at least one activity (--activities air_travel,rail_first_class)"
        )
    for a in acts:
        if not ACTIVITY_RE.match(a):
            raise UsageError(f"activity {a!r} must use only a-z, 0-9 and '_' (at most 64 characters)")
    known = known_activities(platform)
    unknown = [a for a in acts if a not in known]
    if unknown and known:
        raise UsageError(f"unknown activity {unknown[0]!r}: no measure of a loaded catalog names it")
    return acts


def add_party(platform: Platform, code: str, name: str, activities: Iterable[str]) -> str:
    """Register a relying party; returns its API key (shown once, only the hash is kept)."""
    code = code.strip()
    if not PARTY_CODE_RE.match(code):
        raise UsageError(f"party code {code!r} must use only a-z, 0-9, '.' and '-' (at most 64 characters)")
    if not name.strip():
        raise UsageError("party name must not be empty")
    acts = _clean_activities(platform, activities)
    platform.ensure_schema()
    key = new_key(PARTY_PREFIX.rstrip("_"))
    with platform.engine.begin() as conn:
        if get_party(conn, code) is not None:
            raise UsageError(f"relying party {code!r} is already registered")
        conn.execute(
            insert(ta.parties).values(
                code=code,
                name=name.strip()[:200],
                key_hash=hash_key(key),
                activities=json.dumps(acts),
                created_at=utc_timestamp(),
                rotated_at=None,
                revoked_at=None,
            )
        )
    return key


def get_party(conn: Connection, code: str) -> Party | None:
    r = conn.execute(select(ta.parties).where(ta.parties.c.code == code)).first()
    return _party(r) if r else None


def party_by_key_hash(conn: Connection, key_hash: str) -> Party | None:
    r = conn.execute(select(ta.parties).where(ta.parties.c.key_hash == key_hash)).first()
    return _party(r) if r else None


def parties_by_key_hashes(conn: Connection, hashes: Iterable[str]) -> dict[str, Party]:
    hs = list(set(hashes))
    if not hs:
        return {}
    rows = conn.execute(select(ta.parties).where(ta.parties.c.key_hash.in_(hs))).all()
    return {r.key_hash: _party(r) for r in rows}


def list_parties(platform: Platform) -> list[Party]:
    platform.ensure_schema()
    with platform.engine.connect() as conn:
        return [_party(r) for r in conn.execute(select(ta.parties).order_by(ta.parties.c.code))]


def revoke_party(platform: Platform, code: str) -> None:
    platform.ensure_schema()
    with platform.engine.begin() as conn:
        if get_party(conn, code) is None:
            raise NotFound(f"unknown relying party {code!r}")
        conn.execute(update(ta.parties).where(ta.parties.c.code == code).values(revoked_at=utc_timestamp()))


def rotate_party(platform: Platform, code: str) -> str:
    """Replace a party's key (the old one stops working at once); a revoked party is re-enabled."""
    platform.ensure_schema()
    key = new_key(PARTY_PREFIX.rstrip("_"))
    with platform.engine.begin() as conn:
        if get_party(conn, code) is None:
            raise NotFound(f"unknown relying party {code!r}")
        conn.execute(
            update(ta.parties)
            .where(ta.parties.c.code == code)
            .values(key_hash=hash_key(key), rotated_at=utc_timestamp(), revoked_at=None)
        )
    return key


def set_party_activities(platform: Platform, code: str, activities: Iterable[str]) -> Party:
    acts = _clean_activities(platform, activities)
    with platform.engine.begin() as conn:
        if get_party(conn, code) is None:
            raise NotFound(f"unknown relying party {code!r}")
        conn.execute(update(ta.parties).where(ta.parties.c.code == code).values(activities=json.dumps(acts)))
        p = get_party(conn, code)
    assert p is not None
    return p


# ------------------------------------------------------------------ providers' keys


def revoke_provider(platform: Platform, code: str) -> None:
    platform.ensure_schema()
    with platform.engine.begin() as conn:
        res = conn.execute(
            update(t.providers).where(t.providers.c.code == code).values(revoked_at=utc_timestamp())
        )
        if not res.rowcount:
            raise NotFound(f"unknown provider {code!r}")


def rotate_provider(platform: Platform, code: str) -> str:
    """Replace a provider's key (the old one stops working at once); a revoked provider is re-enabled."""
    platform.ensure_schema()
    key = new_key(PROVIDER_PREFIX.rstrip("_"))
    with platform.engine.begin() as conn:
        res = conn.execute(
            update(t.providers)
            .where(t.providers.c.code == code)
            .values(key_hash=hash_key(key), revoked_at=None)
        )
        if not res.rowcount:
            raise NotFound(f"unknown provider {code!r}")
    return key


# ------------------------------------------------------------------ keystore


def keystore_get_or_create(engine: Engine, name: str, make: Callable[[], str]) -> str:
    """The stored value of ``name``; created with ``make()`` the first time (race-safe)."""
    with engine.connect() as conn:
        r = conn.execute(select(ta.keystore.c.value).where(ta.keystore.c.name == name)).first()
    if r is not None:
        return str(r[0])
    value = make()
    try:
        with engine.begin() as conn:
            conn.execute(insert(ta.keystore).values(name=name, value=value, created_at=utc_timestamp()))
        return value
    except IntegrityError:  # another process created it first
        with engine.connect() as conn:
            return str(
                conn.execute(select(ta.keystore.c.value).where(ta.keystore.c.name == name)).scalar_one()
            )


# ------------------------------------------------------------------ session tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


def parse_ttl(value: str | int) -> int:
    """Seconds from ``3600``, ``90s``, ``15m``, ``8h`` or ``7d``; at most 30 days."""
    s = str(value).strip().lower()
    m = re.fullmatch(r"(\d{1,9})([smhd]?)", s)
    if not m:
        raise UsageError(f"--ttl must be a number of seconds or like 15m, 8h, 7d; got {value!r}")
    n = int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if n <= 0 or n > MAX_TTL:
        raise UsageError(f"--ttl must be between 1 second and 30 days, got {value!r}")
    return n


def normalise_token_subject(subject: str, role: str) -> str:
    """A subject token names a valid identifier; a staff token names a user."""
    if role not in TOKEN_ROLES:
        raise UsageError(f"role must be one of {', '.join(TOKEN_ROLES)}; got {role!r}")
    if role == "subject":
        try:
            return parse_subject_id(subject).value
        except IdentifierError as e:
            raise UsageError(f"a subject token needs a valid identifier: {e.reason}") from None
    s = subject.strip()
    if not USER_RE.match(s):
        raise UsageError(f"user name {s!r} must use only letters, digits and . _ @ - (at most 64 characters)")
    return s


class TokenCodec:
    """HS256 JWTs: issue and verify socred session tokens."""

    def __init__(self, secret: str | bytes) -> None:
        self._key = secret.encode() if isinstance(secret, str) else secret
        if len(self._key) < 16:
            raise UsageError("the token secret must be at least 16 bytes long")

    def _sign(self, signing_input: str) -> str:
        return _b64(hmac.new(self._key, signing_input.encode("ascii"), hashlib.sha256).digest())

    def issue(self, subject: str, role: str, ttl: int = 3600, now: int | None = None) -> str:
        sub = normalise_token_subject(subject, role)
        iat = int(now if now is not None else time.time())
        claims = {
            "iss": ISSUER,
            "sub": sub,
            "role": role,
            "iat": iat,
            "exp": iat + int(ttl),
            "jti": secrets.token_hex(8),
        }
        payload = _b64(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
        signing_input = f"{_HEADER}.{payload}"
        return f"{signing_input}.{self._sign(signing_input)}"

    def verify(self, token: str, now: int | None = None) -> Principal:
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("malformed session token")
        head, payload, sig = parts
        try:
            header = json.loads(_unb64(head))
        except ValueError:
            raise TokenError("malformed session token") from None
        if not isinstance(header, dict) or header.get("alg") != "HS256":
            raise TokenError("unsupported token algorithm (socred tokens are HS256)")
        if not hmac.compare_digest(self._sign(f"{head}.{payload}"), sig):
            raise TokenError("bad token signature")
        try:
            claims = json.loads(_unb64(payload))
        except ValueError:
            raise TokenError("malformed token claims") from None
        if not isinstance(claims, dict):
            raise TokenError("malformed token claims")
        current = int(now if now is not None else time.time())
        exp, iat, role, sub = claims.get("exp"), claims.get("iat"), claims.get("role"), claims.get("sub")
        if claims.get("iss") != ISSUER:
            raise TokenError("token from another issuer")
        if not isinstance(exp, int) or not isinstance(iat, int) or not isinstance(sub, str):
            raise TokenError("malformed token claims")
        if exp <= current:
            raise TokenError("session token expired")
        if iat > current + CLOCK_SKEW:
            raise TokenError("session token issued in the future")
        if role not in TOKEN_ROLES:
            raise TokenError("unknown role in session token")
        return Principal(
            kind=role, id=sub, token_id=str(claims.get("jti") or ""), expires_at=exp, claims=claims
        )


def token_secret(engine: Engine, configured: str | None) -> str:
    if configured:
        return configured
    return keystore_get_or_create(engine, "token_secret", lambda: secrets.token_hex(32))


# ------------------------------------------------------------------ ledger signing key


def _load_private_key(text: str) -> Ed25519PrivateKey:
    s = text.strip()
    try:
        if s.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(s.encode(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise UsageError("SOCRED_SIGNING_KEY must be an Ed25519 key")
            return key
        if re.fullmatch(r"[0-9a-fA-F]{64}", s):
            return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(s))
        raw = base64.b64decode(s + "=" * (-len(s) % 4), altchars=b"-_" if ("-" in s or "_" in s) else None)
        if len(raw) == 32:
            return Ed25519PrivateKey.from_private_bytes(raw)
    except UsageError:
        raise
    except Exception:
        pass
    raise UsageError(
        "SOCRED_SIGNING_KEY must be an Ed25519 private key: 64 hex digits, base64 of 32 bytes, "
        "or PEM (PKCS#8)"
    )


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class LedgerSigner:
    """Signs checkpoints of the ledger head with Ed25519."""

    def __init__(self, private_key: Ed25519PrivateKey, origin: str = "socred") -> None:
        self._key = private_key
        self.origin = origin
        self.public_key = _raw_public(private_key.public_key())
        self.key_id = hashlib.sha256(self.public_key).hexdigest()[:16]

    @classmethod
    def load(
        cls, engine: Engine, configured: str | None, origin: str = "socred", key_file: str | None = None
    ) -> LedgerSigner:
        """The key: ``configured`` (SOCRED_SIGNING_KEY), else the key file (SOCRED_SIGNING_KEY_FILE, or the
        one ``socred init`` writes beside a SQLite database), else the database's keystore (legacy)."""
        if configured:
            return cls(_load_private_key(configured), origin)
        path = signing_key_file(engine, key_file)
        if path is not None and path.exists():
            try:
                text = path.read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as e:
                raise UsageError(f"cannot read the ledger signing key file {str(path)!r}: {e}") from None
            return cls(_load_private_key(text), origin)
        seed = keystore_get_or_create(
            engine,
            "ledger_signing_key",
            lambda: (
                Ed25519PrivateKey.generate()
                .private_bytes(
                    serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
                )
                .hex()
            ),
        )
        return cls(_load_private_key(seed), origin)

    @staticmethod
    def message(origin: str, size: int, root_hash: str, merkle_root: str | None = None) -> str:
        return checkpoint_message(origin, size, root_hash, merkle_root)

    def sign_text(self, text: str) -> str:
        """Base64 Ed25519 signature of ``text`` (UTF-8): list snapshots published to other nodes."""
        return base64.b64encode(self._key.sign(text.encode())).decode()

    def checkpoint(self, size: int, root_hash: str, merkle_root: str | None = None) -> dict[str, Any]:
        message = self.message(self.origin, size, root_hash, merkle_root)
        signature = self._key.sign(message.encode())
        out: dict[str, Any] = {
            "origin": self.origin,
            "size": size,
            "root_hash": root_hash,
        }
        if merkle_root is not None:
            out["merkle_root"] = merkle_root
        out.update(
            {
                "algorithm": "Ed25519",
                "key_id": self.key_id,
                "public_key": base64.b64encode(self.public_key).decode(),
                "signed_message": message,
                "signature": base64.b64encode(signature).decode(),
            }
        )
        return out


def signing_key_file(engine: Engine, given: str | None = None) -> Path | None:
    """Where the ledger signing key lives outside the database: ``given``, SOCRED_SIGNING_KEY_FILE, or
    ``<database>.ledger-key`` beside a SQLite file; None for a server database without either."""
    explicit = given or os.environ.get("SOCRED_SIGNING_KEY_FILE")
    if explicit:
        return Path(explicit)
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database + ".ledger-key")
    return None


def create_signing_key_file(engine: Engine, given: str | None = None) -> Path | None:
    """``socred init``: make the ledger signing key, readable by the owner only, outside the database.

    Nothing is made when SOCRED_SIGNING_KEY is set, when the file exists, when there is no place for
    it, or when the database already signs with a key of its keystore (changing it would orphan the
    checkpoints already published). Returns the path written, or None.
    """
    if os.environ.get("SOCRED_SIGNING_KEY"):
        return None
    path = signing_key_file(engine, given)
    if path is None or path.exists():
        return None
    with engine.connect() as conn:
        if conn.execute(select(ta.keystore.c.name).where(ta.keystore.c.name == "ledger_signing_key")).first():
            return None
    seed = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    except OSError as e:  # say where it could not go and how to choose another place
        raise UsageError(
            f"cannot write the ledger signing key to {str(path)!r} ({e.strerror}): set SOCRED_SIGNING_KEY_FILE "
            "to a writable place, or SOCRED_SIGNING_KEY"
        ) from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(seed.hex() + "\n")
    return path


def verify_checkpoint(cp: dict[str, Any]) -> bool:
    """Check a checkpoint's signature against the public key it names (for outsiders and tests)."""
    try:
        pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(cp["public_key"]))
        message = LedgerSigner.message(cp["origin"], int(cp["size"]), cp["root_hash"], cp.get("merkle_root"))
        if message != cp.get("signed_message", message):
            return False
        pub.verify(base64.b64decode(cp["signature"]), message.encode())
        return hashlib.sha256(_raw_public(pub)).hexdigest()[:16] == cp["key_id"]
    except Exception:
        return False


def ledger_checkpoint(platform: Platform, signer: LedgerSigner, size: int | None = None) -> dict[str, Any]:
    """The signed checkpoint of the head (or of the first ``size`` entries), with its Merkle root."""
    from socred.store import merkle_store

    platform.ensure_schema()
    merkle_store.catch_up(platform.engine)
    with platform.engine.connect() as conn:
        head, root = repo.head(conn)
        if size is not None and size != head:
            if not 0 <= size <= head:
                raise UsageError(f"the ledger has {head} entries, not {size}")
            root = ledger.hash_at(conn, size) or GENESIS_HEX
            head = size
        merkle_root = merkle_store.Tree(conn).root(head).hex()
    return signer.checkpoint(head, root, merkle_root)


# ------------------------------------------------------------------ authentication


class Authenticator:
    """Turns a bearer credential into a :class:`Principal`.

    ``sp_…`` are provider keys, ``rp_…`` relying-party keys (both looked up by hash);
    anything else is a session token, verified by the socred codec or by a plugged-in
    verifier (``SOCRED_TOKEN_VERIFIER``, e.g. OIDC) that returns a Principal or raises
    :class:`TokenError`.
    """

    def __init__(
        self,
        platform: Platform,
        codec: Callable[[], TokenCodec],
        verifier: Callable[[str], Principal] | None = None,
    ) -> None:
        self.platform = platform
        self._codec = codec
        self._verifier = verifier

    def codec(self) -> TokenCodec:
        return self._codec()

    def authenticate(self, credential: str) -> Principal:
        """The principal of a credential; :class:`TokenError` (a 401) when it is unknown, revoked or expired."""
        if not credential or len(credential) > 4096:
            raise TokenError("missing or oversized credential")
        if credential.startswith(PROVIDER_PREFIX):
            principal = self.provider(credential)
            if principal is None:
                raise TokenError("unknown or revoked provider key")
            return principal
        if credential.startswith(PARTY_PREFIX):
            party = self.party(credential)
            if party is None:
                raise TokenError("unknown or revoked relying-party key")
            return party_principal(party)
        if credential.startswith(NODE_PREFIX):
            from socred.service import federation  # it imports the platform, as this module does

            found = federation.node_by_key(self.platform, credential)
            if found is None:
                raise TokenError("unknown or revoked node key")
            return Principal(kind="node", id=found[0], name=found[0], claims={"regions": found[1]})
        if self._verifier is not None:
            return self._verifier(credential)
        return self._codec().verify(credential)

    def provider(self, key: str) -> Principal | None:
        p = self.platform.provider_by_key(key)
        if p is None or p.revoked:
            return None
        return Principal(kind="provider", id=p.code, name=p.name, categories=p.categories)

    def party(self, key: str) -> Party | None:
        with self.platform.engine.connect() as conn:
            p = party_by_key_hash(conn, hash_key(key))
        return None if p is None or p.revoked else p


def party_principal(p: Party) -> Principal:
    return Principal(kind="party", id=p.code, name=p.name, activities=p.activities)
