"""Public reads from a streaming-replication standby (LIS_READ_DATABASE_URLS).

A second embedded cluster, ``pg_basebackup -R`` of the session's, serves a real ``lis
serve``'s anonymous reads; writes and read-your-writes stay on the primary. The standby's
replay is paused around the write, so which server answered shows in the answer itself:
the standby still has the old address, the primary the new one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from landplatform.auth.tokens import issue_local
from landplatform.db import make_engine
from landplatform.pgcluster import EmbeddedCluster, EmbeddedStandby
from landplatform.roles import PUBLIC
from support import TEST_AUTH_SECRET, create_database, free_port, role_env, role_url, serving

DB = "lis_standby_reads"
WINDOW_S = 30  # LIS_READ_PRIMARY_AFTER_WRITE_S of the server under test


def primary_lsn(cluster: EmbeddedCluster) -> str:
    with psycopg.connect(**cluster.conninfo(), autocommit=True) as conn:
        return str(conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0])


@pytest.fixture(scope="module")
def db_url(server_url: URL, pg_cluster: EmbeddedCluster | None) -> URL:
    if pg_cluster is None:
        pytest.skip("a standby is made of the embedded test cluster")
    url = create_database(server_url, DB)
    subprocess.run([sys.executable, "-m", "lis.cli", "load", "samples"],
                   env={**os.environ, **role_env(url)}, check=True, capture_output=True,
                   text=True, timeout=300)
    return url


@pytest.fixture(scope="module")
def standby(db_url: URL, pg_cluster: EmbeddedCluster,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStandby]:
    node = EmbeddedStandby(tmp_path_factory.mktemp("standby"), free_port(), pg_cluster)
    try:
        node.ensure_running()
        node.wait_for(primary_lsn(pg_cluster))
        yield node
    finally:
        node.destroy()


@pytest.fixture(scope="module")
def served(db_url: URL, standby: EmbeddedStandby,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    roles = role_env(db_url)
    del roles["LIS_OWNER_DATABASE_URL"]
    read_url = role_url(db_url, PUBLIC).set(port=standby.port)
    env = {**os.environ, **roles, "PORT": str(free_port()), "HOST": "127.0.0.1",
           "LIS_VAR_DIR": str(tmp_path_factory.mktemp("var")),
           "LIS_AUTH_SECRET": TEST_AUTH_SECRET, "LIS_WORKERS": "1",
           "LIS_READ_DATABASE_URLS": read_url.render_as_string(hide_password=False),
           "LIS_READ_PRIMARY_AFTER_WRITE_S": str(WINDOW_S)}
    with serving(env, tmp_path_factory.mktemp("log") / "serve.log") as server:
        yield server.base


def standby_reads(standby: EmbeddedStandby) -> list[str]:
    """The last statement of each of the public pool's connections on the standby."""
    with psycopg.connect(**standby.conninfo(DB), autocommit=True) as conn:
        return [q for (q,) in conn.execute(
            "SELECT query FROM pg_stat_activity WHERE datname = %s AND usename = %s "
            "AND application_name = 'lis-api-standby'", (DB, PUBLIC)).fetchall()]


def test_the_standby_is_a_read_only_copy(standby: EmbeddedStandby, db_url: URL) -> None:
    with psycopg.connect(**standby.conninfo(DB), autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
        count = conn.execute("SELECT count(*) FROM cadastre.parcel").fetchone()[0]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE public.nope (x int)")
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM cadastre.parcel")).scalar() == count
    finally:
        engine.dispose()


def test_public_reads_go_to_the_standby_and_writers_read_their_writes(
        served: str, standby: EmbeddedStandby, pg_cluster: EmbeddedCluster,
        db_url: URL) -> None:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(text("""
            SELECT uid, commune_code, sheet_no, parcel_no, computed_area_m2, land_use,
                   address, ST_AsGeoJSON(geom, 9) AS geometry
              FROM cadastre.parcel WHERE district_code = '001' AND status = 'current'
             ORDER BY uid LIMIT 1
        """)).mappings().one()
    engine.dispose()
    item = f"{served}/collections/parcels-001/items/{row['uid']}"

    def address(**headers: str) -> str:
        r = httpx.get(item, params={"f": "json"}, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["properties"]["address"]

    # An anonymous read is answered from the standby (its pool ran the statement there).
    first = address()
    assert first == row["address"]
    assert any("publish.parcels" in q for q in standby_reads(standby))

    with psycopg.connect(**standby.conninfo(DB), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    try:
        officer = {"Authorization": "Bearer " + issue_local(
            TEST_AUTH_SECRET, sub="officer-001", role="officer", district="001")}
        changed = "12 Standby Street"
        body = {"type": "Feature", "geometry": json.loads(row["geometry"]),
                "properties": {"commune_code": row["commune_code"],
                               "sheet_no": row["sheet_no"], "parcel_no": row["parcel_no"],
                               "area_m2": float(row["computed_area_m2"]),
                               "land_use": row["land_use"], "address": changed}}
        writer = {"X-Forwarded-For": "10.0.0.1"}
        r = httpx.put(item, json=body, headers={**officer, **writer, "If-Match": "*"},
                      timeout=60)
        assert r.status_code == 200, r.text
        cookie = r.cookies.get("lis_read_primary")
        assert cookie is not None and f"Max-Age={WINDOW_S + 1}" in r.headers["set-cookie"]

        reader = {"X-Forwarded-For": "10.0.0.2"}
        # another anonymous client reads the standby, which has not replayed the write yet
        assert address(**reader) == first
        # the writer sees its write: by its token, its cookie (any worker), its address
        assert address(**reader, **officer) == changed
        assert address(**reader, Cookie=f"lis_read_primary={cookie}") == changed
        assert address(**writer) == changed
        # an expired or forged cookie sends nobody anywhere but the standby
        assert address(**reader, Cookie="lis_read_primary=1") == first
        assert address(**reader, Cookie="lis_read_primary=x") == first
    finally:
        with psycopg.connect(**standby.conninfo(DB), autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
    standby.wait_for(primary_lsn(pg_cluster))
    assert address(**{"X-Forwarded-For": "10.0.0.3"}) == changed  # the standby caught up


def test_a_standby_down_costs_the_primary_load_not_an_answer(
        served: str, standby: EmbeddedStandby) -> None:
    url = f"{served}/collections/parcels-003/items"
    assert httpx.get(url, params={"limit": "2"}, timeout=30).status_code == 200
    standby.stop()
    try:
        for _ in range(3):  # the pooled standby connections die, new ones are refused
            r = httpx.get(url, params={"limit": "2"}, timeout=30)
            assert r.status_code == 200, r.text
            assert len(r.json()["features"]) == 2
    finally:
        standby.start()


def test_standby_layout(standby: EmbeddedStandby) -> None:
    """The standby names its primary in its own files only; the primary's data folder
    holds one pg_hba line for the replication role and nothing else of the standby's."""
    auto = (standby.data_dir / "postgresql.auto.conf").read_text()
    assert f"port={standby.primary.port}" in auto and "lis_replicator" in auto
    assert "password=" not in auto  # the password stays in the passfile
    hba = Path(standby.primary.data_dir / "pg_hba.conf").read_text()
    assert hba.count("host replication lis_replicator 127.0.0.1/32") == 1
