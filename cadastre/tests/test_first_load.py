"""A province's first load: its partitions built apart, then attached (cadastre 0024).

What has to hold: a first load writes exactly what the general merge writes into
partitions that already exist (every row of every table, but the times), leaves the
partitions with every index and key, and a delivery over a loaded province and a new one
merges both; the owner's functions are the application role's alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError

from cadastre.loader import load_parcels
from landplatform.db import make_engine
from landplatform.roles import APP, PUBLIC
from support import SAMPLES, create_database, role_url

GEOJSON = SAMPLES / "parcels_491_thanh_khe.geojson"
SHAPEFILE = SAMPLES / "parcels_001_ba_dinh.shp"
# Everything a parcel load writes, compared row by row.
TABLES = ("cadastre.parcel", "cadastre.parcel_land_use", "cadastre.parcel_event",
          "cadastre.parcel_history", "cadastre.parcel_lineage", "cadastre.map_sheet",
          "cadastre.district_summary", "cadastre.parcel_summary", "restricted.party",
          "restricted.certificate", "restricted.land_right")
# The Ba Đình shapefile's headings as the Thanh Khê GeoJSON writes them.
HEADINGS = {"MaXa": "ma_xa", "SoHieuToBa": "so_to", "SoThuTuThu": "so_thua",
            "DienTich": "dien_tich", "KyHieuMucD": "muc_dich",
            "DienTichMu": "dien_tich_muc_dich", "LoaiChu": "loai_chu", "TenChu": "ten_chu",
            "SoCCCD": "so_cccd", "SoGCN": "so_gcn", "NgayCapGCN": "ngay_cap_gcn"}


def rows(engine: Engine, table: str) -> list[str]:
    """A table's rows as text, sorted, without its time columns (when a row was written
    differs from one database to the other; what was written must not) and without the
    rights' ids (the general merge numbers a parcel's rights in the order its join
    yields them, which nothing fixes)."""
    schema, name = table.split(".")
    with engine.connect() as conn:
        times = conn.execute(text("""
            SELECT coalesce(array_agg(CAST(column_name AS text)), '{}')
              FROM information_schema.columns
             WHERE table_schema = :s AND table_name = :n AND data_type LIKE 'timestamp%'
        """), {"s": schema, "n": name}).scalar_one() + ["right_id"]
        return conn.execute(text(
            f"SELECT (to_jsonb(t) - CAST(:times AS text[]))::text AS r FROM {table} t "
            "ORDER BY 1"), {"times": list(times)}).scalars().all()


@pytest.fixture(scope="module")
def databases(server_url: URL) -> Iterator[tuple[Engine, Engine]]:
    """Two fresh databases, as the application role: the first loads into nothing, the
    second has Đà Nẵng's partitions made empty beforehand (the general merge's case)."""
    first = make_engine(role_url(create_database(server_url, "lis_first_load"), APP))
    general = make_engine(role_url(create_database(server_url, "lis_first_general"), APP))
    with general.begin() as conn:
        for suffix, districts in conn.execute(text(
                "SELECT suffix, members FROM cadastre.build_partitions(ARRAY['491'])")).all():
            conn.execute(text("SELECT cadastre.attach_partitions(:s, CAST(:d AS text[]))"),
                         {"s": suffix, "d": districts})
    yield first, general
    first.dispose()
    general.dispose()


def test_a_first_load_writes_what_the_general_merge_writes(
        databases: tuple[Engine, Engine]) -> None:
    first, general = databases
    bulk = load_parcels(first, GEOJSON)
    plain = load_parcels(general, GEOJSON)
    assert bulk.status == plain.status == "loaded", (bulk.summary(), plain.summary())
    assert bulk.first_load and not plain.first_load
    assert bulk.inserted == plain.inserted == 7109
    for table in TABLES:
        assert rows(first, table) == rows(general, table), table
    with first.connect() as conn:  # in the province's partition, attached
        assert conn.execute(text(
            "SELECT count(*) FROM cadastre.parcel_p48")).scalar_one() == 7109
        assert conn.execute(text(
            "SELECT count(*) FROM restricted.land_right_p48")).scalar_one() > 7109
    # the same file again is merged by the general path and changes nothing
    again = load_parcels(first, GEOJSON)
    assert again.status == "loaded" and not again.first_load
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 7109)


def test_a_delivery_over_a_loaded_and_a_new_province(databases: tuple[Engine, Engine],
                                                      tmp_path: Path) -> None:
    """Thanh Khê's first 20 parcels (loaded) and Ba Đình's first 20 (Hà Nội: no
    partitions yet) in one file: Hà Nội's partitions are made empty and the delivery
    merges as any other, both provinces in one transaction."""
    first, _ = databases
    thanh_khe = gpd.read_file(GEOJSON).head(20)
    ba_dinh = gpd.read_file(SHAPEFILE).head(20).rename(columns=HEADINGS).to_crs(4326)
    mixed = gpd.GeoDataFrame(pd.concat([thanh_khe, ba_dinh], ignore_index=True),
                             crs=4326)
    path = tmp_path / "two_provinces.geojson"
    mixed.to_file(path, driver="GeoJSON")
    result = load_parcels(first, path)
    assert result.status == "loaded", result.summary()
    assert not result.first_load
    assert (result.inserted, result.unchanged) == (20, 20)
    with first.connect() as conn:
        placed = dict(conn.execute(text(
            "SELECT CAST(tableoid AS regclass)::text, count(*) FROM cadastre.parcel "
            "GROUP BY 1")).all())
    assert placed == {"cadastre.parcel_p48": 7109, "cadastre.parcel_p01": 20}


def test_only_the_application_role_builds_partitions(
        databases: tuple[Engine, Engine]) -> None:
    first, _ = databases
    public = make_engine(role_url(first.url, PUBLIC), public=True)
    try:
        with public.connect() as conn, pytest.raises(DBAPIError,
                                                     match="permission denied"):
            conn.execute(text("SELECT * FROM cadastre.build_partitions(ARRAY['001'])"))
    finally:
        public.dispose()
    with first.begin() as conn, pytest.raises(DBAPIError, match="without partitions"):
        conn.execute(text("SELECT cadastre.attach_partitions('p48', ARRAY['491'])"))  # placed
    with first.begin() as conn, pytest.raises(DBAPIError, match="one province"):
        conn.execute(text("SELECT cadastre.attach_partitions('p79', ARRAY['001', '760'])"))
    # tables built and committed without attaching them are made again by the next build
    with first.begin() as conn:
        built = conn.execute(text(
            "SELECT suffix, members FROM cadastre.build_partitions(ARRAY['760'])")).one()
        conn.execute(text("INSERT INTO cadastre.parcel_event_p79 (district_code, parcel_uid, "
                          "kind) VALUES ('760', 1, 'create')"))
    assert built.suffix == "p79" and "760" in built.members
    with first.connect() as conn:  # rolled back at the end: the database stays as it was
        again = conn.execute(text(
            "SELECT suffix, members FROM cadastre.build_partitions(ARRAY['760'])")).one()
        assert tuple(again) == tuple(built)
        assert conn.execute(text("SELECT count(*) FROM cadastre.parcel_event_p79")
                            ).scalar_one() == 0
        conn.execute(text("SELECT cadastre.attach_partitions(:s, CAST(:d AS text[]))"),
                     {"s": again.suffix, "d": again.members})
        assert conn.execute(text("SELECT to_regclass('cadastre.parcel_p79')")).scalar_one()
