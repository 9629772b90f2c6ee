"""Runtime configuration, read once from the environment (12-factor, like tipg/titiler).

Everything a deployment changes is an environment variable; nothing edits generated files.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_SOURCE_TREE = Path(__file__).resolve().parent.parent
# A checkout (editable install) keeps var/ and data/ beside the code; an installed package
# (e.g. in the container image) uses the working directory instead of site-packages.
PROJECT_DIR = _SOURCE_TREE if (_SOURCE_TREE / "pyproject.toml").exists() else Path.cwd()


class Settings(BaseSettings):
    """Platform settings. Unprefixed names are the conventional ones (DATABASE_URL, PORT)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL/PostGIS URL of the application role (lis_app: the server's "
                    "writes and the loaders). Unset: the embedded cluster under var_dir.",
    )
    owner_database_url: str | None = Field(
        default=None, validation_alias="LIS_OWNER_DATABASE_URL",
        description="URL of the schema owner (lis_owner), for migrations only. Unset with "
                    "DATABASE_URL set: migrations run as DATABASE_URL's user.")
    public_database_url: str | None = Field(
        default=None, validation_alias="LIS_PUBLIC_DATABASE_URL",
        description="URL of the public read role (lis_public). Unset with DATABASE_URL set: "
                    "public reads run as DATABASE_URL's user after SET ROLE lis_public, "
                    "which a RESET ROLE undoes (docs/SECURITY.md).")
    read_database_urls: str | None = Field(
        default=None, validation_alias="LIS_READ_DATABASE_URLS",
        description="Comma-separated URLs of the public read role on streaming-replication "
                    "standbys: anonymous GET requests read from them (in turn), writes, "
                    "authenticated requests and a writer's reads shortly after its write "
                    "read the primary (docs/SCALING.md). Unset: every read on the primary.")
    read_primary_after_write_s: float = Field(
        default=10.0, ge=0, validation_alias="LIS_READ_PRIMARY_AFTER_WRITE_S",
        description="With standbys: how long after a write the same client (its cookie, or "
                    "its address on the same worker) keeps reading the primary, so it sees "
                    "its write whatever the standby's replay lag.")
    var_dir: Path = Field(
        default=PROJECT_DIR / "var",
        validation_alias="LIS_VAR_DIR",
        description="Where the embedded cluster, generated config and logs live.",
    )
    embedded_pg_port: int = Field(default=54329, validation_alias="LIS_PG_PORT")
    host: str = Field(default="127.0.0.1", validation_alias="HOST")
    port: int = Field(default=8000, validation_alias="PORT")
    public_url: str | None = Field(
        default=None,
        validation_alias="LIS_PUBLIC_URL",
        description="Base URL clients see (behind a proxy). Default http://HOST:PORT.",
    )
    samples_dir: Path = Field(default=PROJECT_DIR / "data" / "samples",
                              validation_alias="LIS_SAMPLES_DIR")
    workers: int = Field(
        default_factory=lambda: min(len(os.sched_getaffinity(0)), 4), ge=1,
        validation_alias="LIS_WORKERS",
        description="Server processes of `lis serve` (default: one per core, at most 4). "
                    "Each has its own pools, tile cache and concurrency limits.")
    pool_size: int = Field(default=8, validation_alias="LIS_POOL_SIZE",
                           description="Public read connections per worker process.")
    html_page_limit: int = Field(
        default=500, ge=1, validation_alias="LIS_HTML_PAGE_LIMIT",
        description="Most items an HTML items page shows (a larger limit is lowered).")
    max_concurrent_uploads: int = Field(
        default=2, ge=1, validation_alias="LIS_MAX_CONCURRENT_UPLOADS",
        description="File loads through the API at once; more get 503 with Retry-After "
                    "(a load takes a core and a transaction: cheap requests keep theirs).")
    max_concurrent_processes: int = Field(
        default=2, ge=1, validation_alias="LIS_MAX_CONCURRENT_PROCESSES",
        description="OGC API process executions at once; more get 503 with Retry-After.")
    pool_timeout: float = Field(default=5.0, validation_alias="LIS_POOL_TIMEOUT")
    page_limit_default: int = Field(default=100, validation_alias="LIS_PAGE_LIMIT_DEFAULT")
    page_limit_max: int = Field(default=10000, validation_alias="LIS_PAGE_LIMIT_MAX")
    max_body_bytes: int = Field(default=20 * 1024 * 1024, validation_alias="LIS_MAX_BODY_BYTES",
                                description="Largest request body accepted (413 above).")
    max_upload_bytes: int = Field(
        default=200 * 1024 * 1024, validation_alias="LIS_MAX_UPLOAD_BYTES",
        description="Largest file upload accepted by the routes a domain declares as "
                    "taking uploads (413 above). Other routes keep LIS_MAX_BODY_BYTES.")
    max_delivery_bytes: int = Field(
        default=4 * 1024**3, validation_alias="LIS_MAX_DELIVERY_BYTES",
        description="Largest delivery a loader reads: the files on disk and, for a .zip, "
                    "what it expands to. Larger deliveries are refused before reading.")
    cors_origins: str = Field(
        default="*", validation_alias="LIS_CORS_ORIGINS",
        description="Origins whose pages may read the API from a browser: * (anyone, the "
                    "default for public data) or comma-separated origins, e.g. "
                    "https://map.example.vn,https://gis.example.vn (docs/SECURITY.md).")
    # Authentication (docs/SECURITY.md): an external OIDC provider's JWKS, or else the
    # embedded local issuer's HS256 secret (generated into var_dir/auth/secret when unset).
    auth_jwks_url: str | None = Field(default=None, validation_alias="LIS_AUTH_JWKS_URL",
                                      description="JWKS URL of the OIDC provider (RS256/ES256).")
    auth_issuer: str | None = Field(default=None, validation_alias="LIS_AUTH_ISSUER",
                                    description="Required `iss` of tokens (external provider).")
    auth_audience: str | None = Field(default=None, validation_alias="LIS_AUTH_AUDIENCE",
                                      description="Required `aud` of tokens, when set.")
    auth_secret: str | None = Field(default=None, validation_alias="LIS_AUTH_SECRET",
                                    description="HS256 secret of the local token issuer.")

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


@lru_cache
def get_settings() -> Settings:
    """One settings object per process; tests clear the cache after changing the env."""
    return Settings()
