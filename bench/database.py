"""The benchmark's one database: its own embedded cluster (or a server you name).

Every system under test reads this one database, so they all see the same rows, the same
indexes and the same shared buffers. The cluster lives under ``var/bench/pg`` on a free
port, apart from the developer's ``var/pg``. ``BENCH_DATABASE_URL`` names a server
instead: the benchmark then creates (and with ``fresh``, drops first) its own database
``lis_bench`` on it, so the URL's role needs CREATEDB; it never touches another database.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from landplatform.db import make_engine
from landplatform.migrate import upgrade
from landplatform.pgcluster import EmbeddedCluster
from lis import MIGRATIONS

DBNAME = "lis_bench"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class BenchDB:
    host: str
    port: int
    user: str
    password: str
    dbname: str
    cluster: EmbeddedCluster | None = None

    @property
    def url(self) -> str:
        """libpq URL (psycopg, tipg)."""
        return (f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
                f"@{self.host}:{self.port}/{quote(self.dbname, safe='')}")

    @property
    def sqlalchemy_url(self) -> str:
        return "postgresql+psycopg" + self.url[len("postgresql"):]

    @property
    def ogr_pg(self) -> str:
        """GDAL PG: connection string; the password travels in PGPASSWORD, not argv."""
        return f"PG:host={self.host} port={self.port} dbname={self.dbname} user={self.user}"

    def conninfo(self, dbname: str | None = None) -> dict:
        return {"host": self.host, "port": self.port, "user": self.user,
                "password": self.password, "dbname": dbname or self.dbname,
                "connect_timeout": 10}

    def connect(self, **kwargs) -> psycopg.Connection:  # noqa: ANN003
        return psycopg.connect(**self.conninfo(), **kwargs)

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()


def _recreate(db: BenchDB, maintenance: str, fresh: bool) -> None:
    with psycopg.connect(**db.conninfo(maintenance), autocommit=True) as conn:
        if fresh:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(db.dbname)))
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (db.dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db.dbname)))
    with db.connect(autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def open_database(root: Path, *, fresh: bool, dbname: str = DBNAME) -> BenchDB:
    """Start (or reach) the server, (re)create ``dbname``, migrate it to every head.

    ``dbname`` lets another bench command (``bench.loadtest``) keep its database apart from
    the benchmark's on a shared ``BENCH_DATABASE_URL`` server.
    """
    given = os.environ.get("BENCH_DATABASE_URL")
    if given:
        url = make_url(given)
        db = BenchDB(url.host or "127.0.0.1", url.port or 5432, url.username or "postgres",
                     url.password or "", dbname)
        _recreate(db, url.database or "postgres", fresh)
    else:
        cluster = EmbeddedCluster(root, free_port(), dbname=dbname)
        if cluster.is_running():
            cluster.port = cluster.running_port() or cluster.port
        cluster.ensure_running()
        db = BenchDB("127.0.0.1", cluster.port, cluster.user, cluster.password, dbname,
                     cluster)
        _recreate(db, "postgres", fresh)
    engine = make_engine(db.sqlalchemy_url, application_name="lis-bench")
    try:
        upgrade(engine, MIGRATIONS)
    finally:
        engine.dispose()
    return db


def drop_database(db: BenchDB) -> None:
    """Remove ``lis_bench`` (the end of a run without ``--keep``)."""
    with psycopg.connect(**db.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(db.dbname)))


def parcel_count(db: BenchDB) -> int:
    with db.connect() as conn:
        return conn.execute("SELECT count(*) FROM cadastre.parcel").fetchone()[0]


def wait_idle(db: BenchDB, max_s: float) -> tuple[float, int]:
    """Wait (at most ``max_s``) until no other session runs a query, then cancel the rest.

    A client that gave up (timeout) leaves its query running in the server, with its
    parallel workers; the next cell must not pay for it. Returns (seconds waited, queries
    cancelled). Only sessions on the bench database are touched.
    """
    started = time.monotonic()
    busy_sql = ("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'active' AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'")
    with db.connect(autocommit=True) as conn:
        while time.monotonic() - started < max_s:
            if not conn.execute(busy_sql).fetchall():
                return time.monotonic() - started, 0
            time.sleep(0.2)
        pids = [r[0] for r in conn.execute(busy_sql).fetchall()]
        for pid in pids:
            conn.execute("SELECT pg_cancel_backend(%s)", (pid,))
        time.sleep(1.0)
    return time.monotonic() - started, len(pids)


def vacuum(db: BenchDB) -> float:
    """``VACUUM (ANALYZE)`` the bench database (not timed): what autovacuum does in the
    minutes after a national load of a million new rows, before the day's next delivery.

    The re-delivery cell runs after it, so it is timed against the database a district
    delivered the next day meets, not against autovacuum starting on the national load
    in the middle of it (autovacuum wakes every minute). Returns the seconds it took."""
    started = time.monotonic()
    with db.connect(autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    return time.monotonic() - started


def prepare_for_reading(db: BenchDB, district: str) -> str:
    """ANALYZE after the load, and the per-district view the stock servers need.

    pygeoapi's stock provider and tipg serve a whole table or view per collection, with no
    fixed filter, so "one district" is a view ``bench.parcels_<code>`` over the same
    ``publish.parcels`` view the platform reads. Returns the view's name.
    """
    view = f"parcels_{district}"
    with db.connect(autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE cadastre.parcel")
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        conn.execute(sql.SQL(
            "CREATE OR REPLACE VIEW bench.{} AS SELECT * FROM publish.parcels "
            "WHERE district_code = {}").format(sql.Identifier(view), sql.Literal(district)))
    return view
