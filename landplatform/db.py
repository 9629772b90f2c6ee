"""Database URL resolution and engines.

One place decides which database the process talks to, and as which role
(``landplatform.roles``): DATABASE_URL (the application role), LIS_OWNER_DATABASE_URL
(migrations) and LIS_PUBLIC_DATABASE_URL (public reads) when set, otherwise the embedded
cluster under ``var_dir/pg`` (started on demand by ``lis up``), which has all three.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url

from landplatform.roles import APP, OWNER, PUBLIC
from landplatform.settings import Settings, get_settings

PUBLIC_ROLE = PUBLIC


def normalise_url(url: str) -> URL:
    """Accept postgres://, postgresql:// and postgresql+psycopg:// alike (psycopg 3 driver)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def embedded_cluster(settings: Settings | None = None):
    """The embedded cluster object for these settings (not started)."""
    from landplatform.pgcluster import EmbeddedCluster

    settings = settings or get_settings()
    return EmbeddedCluster(settings.var_dir / "pg", settings.embedded_pg_port)


def database_url(settings: Settings | None = None) -> URL:
    """The application role's URL: DATABASE_URL, else the embedded cluster's (running)."""
    settings = settings or get_settings()
    if settings.database_url:
        return normalise_url(settings.database_url)
    return normalise_url(embedded_cluster(settings).role_url(APP))


def owner_database_url(settings: Settings | None = None) -> URL:
    """The schema owner's URL, for migrations: LIS_OWNER_DATABASE_URL, else DATABASE_URL
    (one role for everything, as before the roles), else the embedded cluster's owner."""
    settings = settings or get_settings()
    if settings.owner_database_url:
        return normalise_url(settings.owner_database_url)
    if settings.database_url:
        return normalise_url(settings.database_url)
    return normalise_url(embedded_cluster(settings).role_url(OWNER))


def public_database_url(settings: Settings | None = None) -> tuple[URL, bool]:
    """The public read pool's URL, and whether it must ``SET ROLE lis_public`` itself
    (only when no LIS_PUBLIC_DATABASE_URL is given for an external DATABASE_URL)."""
    settings = settings or get_settings()
    if settings.public_database_url:
        return normalise_url(settings.public_database_url), False
    if settings.database_url:
        return normalise_url(settings.database_url), True
    return normalise_url(embedded_cluster(settings).role_url(PUBLIC)), False


def make_engine(url: URL | str, *, public: bool = False, set_role: bool = False,
                pool_size: int = 5, pool_timeout: float = 30.0,
                application_name: str = "lis") -> Engine:
    """An engine; ``public=True`` for the public read pool, ``set_role=True`` when its URL
    is not the public role's own and every connection must ``SET ROLE lis_public`` (the
    weaker arrangement kept for a deployment with only DATABASE_URL).

    The read/write engine pings each connection on checkout (``pool_pre_ping``) so that a
    PostgreSQL restart is survived. The public engine serves single-statement reads, where
    every round trip counts: it runs in autocommit (no BEGIN/ROLLBACK per request) and does
    not ping; ``landplatform.publish.engine.read`` retries a read once on a connection the
    restart killed instead.
    """
    extra: dict = {"isolation_level": "AUTOCOMMIT"} if public else {"pool_pre_ping": True}
    engine = create_engine(
        url if isinstance(url, URL) else normalise_url(url),
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=pool_timeout,
        connect_args={"application_name": application_name},
        **extra,
    )
    if set_role:
        @event.listens_for(engine, "connect")
        def _set_role(dbapi_conn, _record) -> None:  # noqa: ANN001 - DBAPI types
            with dbapi_conn.cursor() as cur:
                cur.execute(f"SET ROLE {PUBLIC_ROLE}")
            dbapi_conn.commit()

    return engine


@lru_cache
def get_engine() -> Engine:
    """The process-wide read/write engine of the application role (ETL, CLI, writes)."""
    return make_engine(database_url(), application_name="lis-cli")


def owner_engine() -> Engine:
    """A short-lived engine of the schema owner, for migrations (dispose it after)."""
    return make_engine(owner_database_url(), pool_size=1, application_name="lis-migrate")
