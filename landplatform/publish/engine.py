"""The API's read-only connection pool, shared by every provider instance.

pygeoapi instantiates a provider per request, so the pool must live outside it. Every
connection logs in as the ``lis_public`` role, which can read ``publish.*`` and nothing else
(``landplatform.roles``). With LIS_READ_DATABASE_URLS the pool also reads from standbys
(``landplatform.db.ReadRouter``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from landplatform.db import ReadRouter, make_engine, public_database_url, read_database_urls
from landplatform.settings import get_settings


@lru_cache
def get_public_engine() -> Engine | ReadRouter:
    """The public read pool: the primary's, and the standbys' when there are any (their
    URLs log in as the public role too, or SET ROLE to it as the primary's does)."""
    settings = get_settings()
    url, set_role = public_database_url(settings)
    primary = make_engine(url, public=True, set_role=set_role, pool_size=settings.pool_size,
                          pool_timeout=settings.pool_timeout, application_name="lis-api")
    standbys = [make_engine(u, public=True, set_role=set_role, pool_size=settings.pool_size,
                            pool_timeout=settings.pool_timeout,
                            application_name="lis-api-standby")
                for u in read_database_urls(settings)]
    return ReadRouter(primary, standbys) if standbys else primary



def read[T](engine: Engine, fn: Callable[[Connection], T]) -> T:
    """``fn`` on a pooled connection; once more on a fresh one if the first was dead.

    The public engine does not ping on checkout (a round trip per request). After a
    PostgreSQL restart the first statement on an old connection fails as a disconnect;
    SQLAlchemy then invalidates that connection and every older one in the pool, and the
    retry gets a new connection. Reads have no side effects, so running one twice is safe.
    """
    try:
        with engine.connect() as conn:
            return fn(conn)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    with engine.connect() as conn:
        return fn(conn)
