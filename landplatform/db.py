"""Database URL resolution and engines.

One place decides which database the process talks to, and as which role
(``landplatform.roles``): DATABASE_URL (the application role), LIS_OWNER_DATABASE_URL
(migrations) and LIS_PUBLIC_DATABASE_URL (public reads) when set, otherwise the embedded
cluster under ``var_dir/pg`` (started on demand by ``lis up``), which has all three.
LIS_READ_DATABASE_URLS adds standbys to the public read pool (``ReadRouter``).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import OperationalError

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


def read_database_urls(settings: Settings | None = None) -> list[URL]:
    """The standbys' public read URLs (LIS_READ_DATABASE_URLS, comma-separated)."""
    settings = settings or get_settings()
    return [normalise_url(u.strip()) for u in (settings.read_database_urls or "").split(",")
            if u.strip()]


# Whether the current request must read the primary (set per request by
# ``landplatform.read_routing``; a context variable, so threads the request hands work to
# see it when they run in a copy of its context).
_READ_PRIMARY: ContextVar[bool] = ContextVar("lis_read_primary", default=False)


@contextmanager
def reading_primary(primary: bool = True) -> Iterator[None]:
    """Reads in this block (this request, its threads) go to the primary if ``primary``."""
    token = _READ_PRIMARY.set(primary)
    try:
        yield
    finally:
        _READ_PRIMARY.reset(token)


class ReadRouter:
    """The public read pool over a primary and its streaming-replication standbys.

    It stands where the public ``Engine`` stood (``connect``, ``begin``, ``dialect``,
    ``dispose``; anything else is the primary's), so the providers, the features path and
    the tiles need no change: each ``connect`` goes to the next standby in turn, or to the
    primary when the request must see the primary (``reading_primary``: writes,
    authenticated requests, a writer's reads just after its write). A standby that
    refuses a connection is left out for ``retry_after_s`` and the read goes to the
    primary: a standby down costs the primary load, never an answer.
    """

    def __init__(self, primary: Engine, standbys: list[Engine], *,
                 retry_after_s: float = 5.0) -> None:
        self.primary = primary
        self.standbys = standbys
        self.retry_after_s = retry_after_s
        self._turn = itertools.cycle(range(len(standbys))) if standbys else None
        self._down_until = [0.0] * len(standbys)
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> object:
        return getattr(self.primary, name)

    @property
    def dialect(self):  # noqa: ANN201 - the primary's Dialect
        return self.primary.dialect

    def _standby(self) -> int | None:
        """Index of the next standby to read from, or None for the primary."""
        if self._turn is None or _READ_PRIMARY.get():
            return None
        now = time.monotonic()
        with self._lock:
            for _ in range(len(self.standbys)):
                i = next(self._turn)
                if self._down_until[i] <= now:
                    return i
        return None

    def connect(self) -> Connection:
        i = self._standby()
        if i is not None:
            try:
                return self.standbys[i].connect()
            except OperationalError:
                with self._lock:
                    self._down_until[i] = time.monotonic() + self.retry_after_s
        return self.primary.connect()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        for engine in (self.primary, *self.standbys):
            engine.dispose()


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
