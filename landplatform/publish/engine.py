"""The API's read-only connection pool, shared by every provider instance.

pygeoapi instantiates a provider per request, so the pool must live outside it. Every
connection runs as the ``lis_public`` role, which can read ``publish.*`` and nothing else.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy.engine import Engine

from landplatform.db import database_url, make_engine
from landplatform.settings import get_settings


@lru_cache
def get_public_engine() -> Engine:
    settings = get_settings()
    return make_engine(database_url(settings), public=True, pool_size=settings.pool_size,
                       pool_timeout=settings.pool_timeout, application_name="lis-api")
