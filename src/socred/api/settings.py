"""Settings of the HTTP server, from ``SOCRED_*`` environment variables (documented in docs/api.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every field is read from the environment variable ``SOCRED_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="SOCRED_", extra="ignore", case_sensitive=False)

    db: str | None = Field(default=None, description="Database URL or SQLite path (default ./socred.db).")
    token_secret: SecretStr | None = Field(
        default=None,
        description="HMAC secret of session tokens (>= 16 bytes); default: generated once, kept in the database.",
    )
    signing_key: SecretStr | None = Field(
        default=None,
        description="Ed25519 key signing ledger checkpoints: 64 hex digits, base64 of 32 bytes or PEM; "
        "default: generated once, kept in the database.",
    )
    signing_key_file: str | None = Field(
        default=None,
        description="File holding the Ed25519 ledger key (made by 'socred init'); default: DB.ledger-key beside "
        "a SQLite database.",
    )
    origin: str = Field(default="socred", description="The name this ledger signs its checkpoints under.")
    public_rate: str = Field(
        default="6000/minute",
        description="Public endpoints and portal: requests per client address (N/second|minute|hour, or off). "
        "Read when the first public request arrives.",
    )
    trusted_proxies: str = Field(
        default="", description="Comma-separated proxy addresses whose X-Forwarded-For is trusted."
    )
    max_body_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Largest request body accepted (413 above)."
    )
    token_ttl: int = Field(
        default=3600, ge=1, le=30 * 86400, description="Default life of issued session tokens, seconds."
    )
    token_verifier: str | None = Field(
        default=None,
        description="'module:factory' of another session-token verifier (e.g. OIDC); see docs/api.md.",
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="Server logs: one JSON object per line, or text."
    )
    log_level: str = Field(default="INFO", description="Log level of socred's and uvicorn's loggers.")
    access_log: bool = Field(
        default=True, description="Log one line per request (route template, status, duration)."
    )
    metrics: bool = Field(default=True, description="Serve Prometheus metrics at /metrics.")
    docs: bool = Field(default=True, description="Serve the interactive API documentation at /docs.")
    otel: bool = Field(
        default=False,
        description="Let FastAPI's OpenTelemetry instrumentation run (when a provider is set up).",
    )
    sync_interval: float = Field(
        default=0,
        ge=0,
        description="Seconds between background syncs from the registered upstream nodes (0: off; "
        "see docs/federation.md).",
    )
    check_inline: bool | None = Field(
        default=None,
        description="Answer checks in the event loop, one group per loop turn (default: on SQLite, where "
        "a group's reads and its receipt commit take microseconds; on PostgreSQL a worker thread waits on "
        "the network instead of the loop).",
    )
    init_db: bool = Field(
        default=False, description="Create or upgrade the schema at start (as 'socred init')."
    )
