"""The cadastre's large tables partitioned by district (cadastre migrations 0020, 0024).

What has to hold: a request for one district reads one partition (the features path's
page statement of a district collection, a parcel by id in it, a national collection
filtered by district), an existing database converts in place without losing or
changing a row and loads on afterwards, and the way back (downgrade) is as exact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from cadastre.layers import PARCELS
from cadastre.merge import PARCEL_COLS
from landplatform.db import make_engine
from landplatform.migrate import downgrade, upgrade
from landplatform.publish.features_api import FeaturesService, collections_from_config
from landplatform.publish.query import FeatureQuery
from landplatform.publish.resources import collection
from landplatform.roles import OWNER, PUBLIC
from lis import MIGRATIONS
from support import create_database, data_snapshot, role_env, role_url

PARTITIONED = ("cadastre.parcel", "cadastre.parcel_history", "cadastre.parcel_land_use",
               "cadastre.parcel_event", "cadastre.parcel_lineage", "restricted.land_right",
               "restricted.encumbrance")
PARCEL_TABLES = {"parcel"} | {f"parcel_p{i:02d}" for i in range(100)} | {"parcel_default"}
# The samples' provinces: a province has partitions once parcels of it are loaded (0024).
EVERY = {"parcel_p01", "parcel_p48"}


def relations(plan: object) -> set[str]:
    """Every relation an EXPLAIN (FORMAT JSON) plan reads."""
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            found.add(plan["Relation Name"])
        for value in plan.values():
            found |= relations(value)
    elif isinstance(plan, list):
        for value in plan:
            found |= relations(value)
    return found


def explain(engine: Engine, sql: str, params: dict) -> set[str]:
    """The parcel tables (the partitioned one or its partitions) a statement reads."""
    with engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql, params).scalar_one()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return relations(plan) & PARCEL_TABLES


@pytest.fixture(scope="module")
def public(api_db_url: URL):  # noqa: ANN201 - an engine, disposed after
    engine = make_engine(role_url(api_db_url, PUBLIC), public=True)
    yield engine
    engine.dispose()


def service(engine: Engine, fixed: dict | None = None) -> FeaturesService:
    col = collection(PARCELS, title="t", description="t", bbox=[0, 0, 1, 1], crs=[],
                     fixed=fixed)
    name = "parcels-" + fixed["district_code"] if fixed else "parcels"
    return FeaturesService(engine, collections_from_config({"resources": {name: col}}),
                           "http://x", 10, 100)


def test_every_large_table_is_partitioned_by_the_provinces_loaded(api_db: Engine) -> None:
    """A province has its partitions from its first load on (0024): the samples' two
    provinces, each holding every district the reference data puts in it, and no DEFAULT
    (nothing was ever loaded for a district no province lists)."""
    with api_db.connect() as conn:
        provinces = dict(conn.execute(sa.text("""
            SELECT parent_code, array_agg(code ORDER BY code) FROM (
                SELECT DISTINCT ON (code) code, parent_code FROM admin.admin_unit
                 WHERE level = 'district' AND parent_code IN ('01', '48')
                 ORDER BY code, valid_from DESC NULLS LAST) d GROUP BY 1
        """)).all())
        for table in PARTITIONED:
            kind, strategy, key = conn.execute(sa.text("""
                SELECT c.relkind, p.partstrat, pg_get_partkeydef(c.oid)
                  FROM pg_class c LEFT JOIN pg_partitioned_table p ON p.partrelid = c.oid
                 WHERE c.oid = CAST(:t AS regclass)
            """), {"t": table}).one()
            assert (kind, strategy) == ("p", "l"), table
            assert key in ("LIST (district_code)", "LIST (child_district_code)"), table
            parts = dict(conn.execute(sa.text("""
                SELECT CAST(i.inhrelid AS regclass)::text,
                       pg_get_expr(c.relpartbound, c.oid)
                  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = CAST(:t AS regclass)
            """), {"t": table}).all())
            assert parts == {f"{table}_p{p}": "FOR VALUES IN ("
                             + ", ".join(f"'{d}'" for d in ds) + ")"
                             for p, ds in provinces.items()}, table
        assert dict(conn.execute(sa.text(
            "SELECT district_code, suffix FROM cadastre.partition_district")).all()) == {
            d: f"p{p}" for p, ds in provinces.items() for d in ds}
        # the sample districts' parcels are in their provinces' partitions
        placed = dict(conn.execute(sa.text(
            "SELECT DISTINCT district_code, CAST(tableoid AS regclass)::text "
            "FROM cadastre.parcel")).all())
        assert placed == {"001": "cadastre.parcel_p01", "003": "cadastre.parcel_p01",
                          "491": "cadastre.parcel_p48", "492": "cadastre.parcel_p48"}
        # the partitions built apart have every index and key the parents declare
        for table in PARTITIONED:
            assert conn.execute(sa.text("""
                SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                 WHERE i.indrelid = CAST(:p AS regclass)
            """), {"p": f"{table}_p48"}).scalar_one() == conn.execute(sa.text(
                "SELECT count(*) FROM pg_index WHERE indrelid = CAST(:t AS regclass)"),
                {"t": table}).scalar_one(), table
        keys = conn.execute(sa.text("""
            SELECT CAST(conrelid AS regclass)::text, pg_get_constraintdef(oid)
              FROM pg_constraint
             WHERE contype = 'f' AND CAST(conrelid AS regclass)::text LIKE '%\\_p48'
        """)).all()
        assert ("cadastre.parcel_land_use_p48", "FOREIGN KEY (district_code, parcel_uid) "
                "REFERENCES cadastre.parcel_p48(district_code, uid) ON DELETE CASCADE") in keys
        assert len(keys) == 9  # 4 between partitions, 5 on the parents' other tables


def test_a_district_collections_page_reads_one_partition(public: Engine) -> None:
    """The features path's page statement, as the API runs it, for parcels-492."""
    svc = service(public, {"district_code": "492"})
    fq, opts = svc.parse(svc.collections["parcels-492"], {"limit": "100"})
    sql, values = fq.page_sql(public.dialect, opts["limit"], count_cap=20_000)
    assert explain(public, sql, values) == {"parcel_p48"}
    # a later page (after a cursor) and a filtered one too
    sql, values = fq.page_sql(public.dialect, opts["limit"], after=10)
    assert explain(public, sql, values) == {"parcel_p48"}
    fq, opts = svc.parse(svc.collections["parcels-492"],
                         {"filter": "land_use = 'ODT' AND area_m2 > 100", "limit": "10"})
    sql, values = fq.page_sql(public.dialect, opts["limit"], count_cap=20_000)
    assert explain(public, sql, values) == {"parcel_p48"}


def test_a_national_collection_filtered_by_district_reads_one_partition(
        public: Engine) -> None:
    svc = service(public)
    fq, opts = svc.parse(svc.collections["parcels"], {"district_code": "001", "limit": "5"})
    sql, values = fq.page_sql(public.dialect, opts["limit"])
    assert explain(public, sql, values) == {"parcel_p01"}
    fq, opts = svc.parse(svc.collections["parcels"], {"limit": "5"})
    sql, values = fq.page_sql(public.dialect, opts["limit"])
    assert explain(public, sql, values) == EVERY  # no district: every partition


def test_a_national_bbox_plans_the_partitions_of_the_districts_it_meets(
        public: Engine) -> None:
    """A bbox over the national collection names the districts whose extents it meets
    (``Layer.extents``, kept by every writer), so it plans their province's partition
    only, and answers exactly what the whole table answers."""
    svc = service(public)
    col = svc.collections["parcels"]
    with public.connect() as conn:
        x0, y0, x1, y1 = conn.execute(sa.text(
            "SELECT min_lon, min_lat, max_lon, max_lat FROM publish.districts "
            "WHERE district_code = '492'")).one()
    bbox = f"{x0},{y0},{(x0 + x1) / 2},{(y0 + y1) / 2}"
    fq, opts = svc.parse(col, {"bbox": bbox, "limit": "100"})
    sql, values = fq.page_sql(public.dialect, opts["limit"])
    assert explain(public, sql, values) == EVERY  # not yet pruned: every partition
    with public.connect() as conn:
        whole = conn.exec_driver_sql(sql, values).one()
    svc.prune(fq)
    assert "492" in fq.units and set(fq.units) <= {"491", "492"}
    sql, values = fq.page_sql(public.dialect, opts["limit"])
    assert explain(public, sql, values) == {"parcel_p48"}
    with public.connect() as conn:
        assert conn.exec_driver_sql(sql, values).one() == whole
        assert whole[1] == 100
    # a bbox that meets no district plans no partition at all and answers nothing
    fq, opts = svc.parse(col, {"bbox": "0,0,1,1"})
    svc.prune(fq)
    assert fq.units == []
    sql, values = fq.page_sql(public.dialect, opts["limit"])
    assert explain(public, sql, values) == set()
    response = svc.items(col, {"bbox": bbox, "limit": "100"})
    assert json.loads(response.body)["features"] == json.loads(whole[0])
    # datetime= reads every version, whose extents the summary does not keep: no pruning
    fq, _ = svc.parse(col, {"bbox": bbox, "datetime": "2020-01-01T00:00:00Z"})
    svc.prune(fq)
    assert fq.units is None


def test_a_national_tile_plans_the_partitions_of_the_districts_it_meets(
        public: Engine) -> None:
    from landplatform.publish.tiles import GRIDS, TMS, tile_statement, tile_units

    svc = service(public)
    col, grid = svc.collections["parcels"], GRIDS[TMS]
    with public.connect() as conn:
        lon, lat = conn.execute(sa.text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_PointOnSurface(geom) AS c "
            "FROM publish.parcels WHERE district_code = '492' LIMIT 1) p")).one()
        x, y = grid.tile_of(lon, lat, 15)
        units = tile_units(conn, col, grid, 15, x, y, col.layer)
        assert "492" in units and set(units) <= {"491", "492"}
        pruned = tile_statement(col, 15, x, y, grid, col.layer, units).compile(
            dialect=public.dialect)
        whole = tile_statement(col, 15, x, y, grid, col.layer).compile(
            dialect=public.dialect)
        pruned_tile = conn.exec_driver_sql(pruned.string, pruned.params).one()
        whole_tile = conn.exec_driver_sql(whole.string, whole.params).one()
    assert pruned_tile[1] > 0 and pruned_tile == whole_tile
    assert explain(public, pruned.string, pruned.params) == {"parcel_p48"}
    assert explain(public, whole.string, whole.params) == EVERY


def test_a_parcel_by_id_in_a_district_collection_reads_one_partition(public: Engine) -> None:
    """The one-feature statement of items/{id}, compiled as the service compiles it."""
    svc = service(public, {"district_code": "001"})
    col = svc.collections["parcels-001"]
    with public.connect() as conn:
        uid = conn.execute(sa.text("SELECT min(id) FROM publish.parcels "
                                   "WHERE district_code = '001'")).scalar_one()
    fq = FeatureQuery(col.layer, col.table,
                      fixed={**col.fixed, col.layer.id_field: sa.bindparam("fid")})
    compiled = fq.page_stmt(1).compile(dialect=public.dialect)
    assert explain(public, compiled.string,
                   compiled.construct_params({"fid": uid})) == {"parcel_p01"}
    response = svc.item(col, str(uid), {})
    assert response.status_code == 200 and json.loads(response.body)["id"] == uid


def test_a_national_request_is_not_compiled_by_jit(public: Engine) -> None:
    """A bbox over the national collection plans a scan per province partition, and its
    cost estimate crossed ``jit_above_cost``: compiling it took longer than running it.
    The database starts every session with JIT off (platform migration 0022)."""
    sql = ("SELECT p.id FROM publish.parcels p WHERE ST_Intersects(p.geom, "
           "ST_MakeEnvelope(105.0, 20.0, 109.0, 22.0, 4326)) ORDER BY p.id LIMIT 1000")
    with public.connect() as conn:
        assert conn.exec_driver_sql("SHOW jit").scalar_one() == "off"
        conn.exec_driver_sql("SET jit_above_cost = 0")  # would compile anything if on
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql).scalar_one()
        plan = json.loads(plan) if isinstance(plan, str) else plan
        assert "JIT" not in plan[0], plan[0].get("JIT")
        conn.exec_driver_sql("SET jit = on")  # and the test can fail: JIT is there
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql).scalar_one()
        plan = json.loads(plan) if isinstance(plan, str) else plan
        if conn.exec_driver_sql("SELECT pg_jit_available()").scalar_one():
            assert "JIT" in plan[0]


def test_an_existing_database_converts_in_place_and_back(server_url: URL) -> None:
    """Data in plain tables (before 0020), upgraded: every row as it was, in its province's
    partition; it loads on (a re-delivery, idempotent) and writes; downgraded: as exact.
    The samples are loaded at the head and the database taken back to 0017 (today's
    loader calls functions the old schema lacks), then rows only writes make are added."""
    url = create_database(server_url, "lis_partition_convert")
    owner = make_engine(role_url(url, OWNER))
    check = make_engine(url)
    try:
        env = {**os.environ, **role_env(url)}
        subprocess.run([sys.executable, "-m", "lis.cli", "load", "samples"], env=env,
                       check=True, capture_output=True, text=True, timeout=300)
        downgrade(owner, MIGRATIONS, "0017")  # the revision before 0020
        with check.connect() as conn:
            assert conn.execute(sa.text("SELECT relkind FROM pg_class WHERE oid = "
                                        "CAST('cadastre.parcel' AS regclass)")).scalar() == "r"
        with check.begin() as conn:  # a lineage edge and a history row, so those move too
            conn.execute(sa.text("""
                WITH p AS (SELECT district_code, uid FROM cadastre.parcel
                            WHERE district_code = '491' ORDER BY uid LIMIT 2),
                e AS (INSERT INTO cadastre.parcel_event (district_code, parcel_uid, kind)
                      SELECT district_code, max(uid), 'split' FROM p GROUP BY 1
                      RETURNING event_id, district_code, parcel_uid)
                INSERT INTO cadastre.parcel_lineage (event_id, parent_district_code,
                       parent_uid, child_district_code, child_uid, kind)
                SELECT e.event_id, e.district_code, (SELECT min(uid) FROM p),
                       e.district_code, e.parcel_uid, 'split' FROM e
            """))
            conn.execute(sa.text(
                f"INSERT INTO cadastre.parcel_history (uid, {PARCEL_COLS}) "
                f"SELECT uid, {PARCEL_COLS} FROM cadastre.parcel WHERE district_code = '003' "
                "ORDER BY uid LIMIT 3"))
        before = data_snapshot(check)
        with check.connect() as conn:
            lineage = conn.execute(sa.text(
                "SELECT count(*) FROM cadastre.parcel_lineage")).scalar_one()
            next_uid = conn.execute(sa.text(
                "SELECT max(uid) FROM cadastre.parcel")).scalar_one() + 1
        assert lineage == 1

        upgrade(owner, MIGRATIONS)
        assert data_snapshot(check) == before
        with check.connect() as conn:
            assert conn.execute(sa.text(
                "SELECT count(*) FROM cadastre.parcel_lineage_p48")).scalar_one() == 1
            assert conn.execute(sa.text(
                "SELECT count(*) FROM cadastre.parcel_history_p01")).scalar_one() == 3
            # empty partitions are dropped (0024): the DEFAULT and the provinces unloaded
            assert conn.execute(sa.text(
                "SELECT to_regclass('cadastre.parcel_default')")).scalar_one() is None
        # the views were recreated with their grants: the public role reads them
        pub = make_engine(role_url(url, PUBLIC), public=True)
        try:
            with pub.connect() as conn:
                assert conn.execute(sa.text(
                    "SELECT count(*) FROM publish.parcel_lineage")).scalar_one() == 1
                assert conn.execute(sa.text(
                    "SELECT count(*) FROM publish.parcels")).scalar_one() > 7000
        finally:
            pub.dispose()
        subprocess.run([sys.executable, "-m", "lis.cli", "load", "samples"], env=env,
                       check=True, capture_output=True, text=True, timeout=300)
        assert data_snapshot(check) == before  # a re-delivery changes nothing
        app = make_engine(role_url(url, "lis_app"))
        try:
            with app.begin() as conn:  # the identity goes on where it was, as lis_app
                uid = conn.execute(sa.text("""
                    INSERT INTO cadastre.parcel (province_code, district_code, commune_code,
                           sheet_no, parcel_no, area_m2, computed_area_m2, land_use,
                           source_srid, geom)
                    VALUES ('01', '001', '00001', 999, 1, 10, 10, 'ODT', 4326,
                            ST_Multi(ST_MakeEnvelope(105, 21, 105.0001, 21.0001, 4326)))
                    RETURNING uid
                """)).scalar_one()
                assert uid >= next_uid
                conn.execute(sa.text("DELETE FROM cadastre.parcel WHERE uid = :u"),
                             {"u": uid})
        finally:
            app.dispose()

        downgrade(owner, MIGRATIONS, "0017")  # the revision before 0020
        assert data_snapshot(check) == before
        with check.connect() as conn:
            assert conn.execute(sa.text(
                "SELECT count(*) FROM pg_class WHERE relkind = 'p'")).scalar_one() == 0
        upgrade(owner, MIGRATIONS)
    finally:
        owner.dispose()
        check.dispose()
