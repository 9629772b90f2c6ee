"""Stage validated parcels with COPY and merge them in ONE transaction.

The database does the set work: which rows are new, changed or unchanged, the history of
changed parcels, land-use parts, map sheets, events, owners. Python only streams rows in.
A crash or kill anywhere before COMMIT leaves the database exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection

from etl.staging import advisory_lock, copy_rows

STAGE_DDL = """
CREATE TEMP TABLE stage_parcel (
    feature_no int, province_code text, district_code text, commune_code text,
    sheet_no int, parcel_no int, area_m2 numeric(14,1), computed_area_m2 numeric(14,1),
    legal_area_m2 numeric(14,1), land_use text, land_use_source text, address text,
    current_province_code text, current_commune_code text, source_srid int,
    geom geometry(MultiPolygon, 4326), owner_name text, owner_id_number text,
    certificate_serial text, certificate_date date
) ON COMMIT DROP
"""
COPY_COLUMNS = (
    "feature_no, province_code, district_code, commune_code, sheet_no, parcel_no, area_m2, "
    "computed_area_m2, legal_area_m2, land_use, land_use_source, address, "
    "current_province_code, current_commune_code, source_srid, geom, owner_name, "
    "owner_id_number, certificate_serial, certificate_date"
)
STAGE_STATS_COLUMNS = ("feature_no, district_code, commune_code, sheet_no, parcel_no, "
                       "owner_name, owner_id_number, certificate_serial")
# Attributes whose change makes a new version of a parcel (history + 'update' event).
# The source CRS alone is not a change of the parcel: the same parcel delivered again in
# another CRS is the same parcel (its geometry decides).
VERSIONED = ("area_m2", "computed_area_m2", "legal_area_m2", "land_use", "address",
             "current_province_code", "current_commune_code")
PARCEL_COLS = ("province_code, district_code, commune_code, sheet_no, parcel_no, national_id, "
               "current_province_code, current_commune_code, area_m2, computed_area_m2, "
               "legal_area_m2, land_use, address, status, valid_from, valid_to, source_srid, "
               "load_run_id, geom")


def stage(conn: Connection, rows: pd.DataFrame,
          progress: Callable[[int, int], None] | None = None) -> None:
    """COPY the rows into a temp table (geometry as hex EWKB, parsed by PostGIS)."""
    # The merge's statements are big joins over the whole stage: their estimated cost
    # crosses jit_above_cost at a few hundred thousand rows, and compiling them costs more
    # than it saves (seconds per statement). Off for this transaction only.
    conn.execute(text("SET LOCAL jit = off"))
    conn.execute(text(STAGE_DDL))
    copy_rows(conn, "stage_parcel", COPY_COLUMNS, rows, progress)
    # No index on the stage: every merge step reads all of it (hash joins, or probes of
    # the parcel table's natural-key index from each stage row), never the other way.
    # Statistics for the columns the merge joins and filters on; sampling the geometry
    # column (PostGIS computes its histogram) is the bulk of a full ANALYZE and unused.
    conn.execute(text(f"ANALYZE stage_parcel ({STAGE_STATS_COLUMNS})"))


def lock_districts(conn: Connection, districts: list[str]) -> None:
    """Serialise concurrent loads of the same district's parcels."""
    advisory_lock(conn, "parcels", districts)


def merge(conn: Connection, run_id: int) -> dict[str, int]:
    """Merge stage_parcel into the cadastre; return counts."""
    changed_expr = " OR ".join(f"p.{c} IS DISTINCT FROM s.{c}" for c in VERSIONED)
    conn.execute(text(f"""
        CREATE TEMP TABLE merge_plan ON COMMIT DROP AS
        SELECT s.feature_no, p.uid,
               CASE WHEN p.uid IS NULL THEN 'new'
                    WHEN {changed_expr} OR ST_AsBinary(p.geom) <> ST_AsBinary(s.geom)
                    THEN 'changed' ELSE 'unchanged' END AS action
          FROM stage_parcel s
          LEFT JOIN cadastre.parcel p
            ON p.district_code = s.district_code AND p.commune_code = s.commune_code
           AND p.sheet_no = s.sheet_no AND p.parcel_no = s.parcel_no
    """))
    # Without statistics the planner guesses a handful of 'new' rows and picks nested
    # loops over the whole stage for every later step.
    conn.execute(text("ANALYZE merge_plan"))
    params = {"run": run_id}
    # Keep the superseded version, then update in place (the uid stays the parcel's).
    conn.execute(text(f"""
        INSERT INTO cadastre.parcel_history (uid, {PARCEL_COLS}, superseded_by_run)
        SELECT p.uid, {', '.join('p.' + c.strip() for c in PARCEL_COLS.split(','))}, :run
          FROM cadastre.parcel p JOIN merge_plan m ON m.uid = p.uid AND m.action = 'changed'
    """), params)
    set_list = ", ".join(f"{c} = s.{c}" for c in VERSIONED)
    conn.execute(text(f"""
        UPDATE cadastre.parcel p
           SET {set_list}, geom = s.geom, load_run_id = :run, valid_from = now()
          FROM merge_plan m JOIN stage_parcel s USING (feature_no)
         WHERE m.action = 'changed' AND p.uid = m.uid AND p.district_code = s.district_code
    """), params)
    # New parcels, and their uids back into the plan from RETURNING (hash-joined on the
    # key) rather than by probing the parcel table's index once per new row.
    conn.execute(text("""
        WITH inserted AS (
            INSERT INTO cadastre.parcel
                   (province_code, district_code, commune_code, sheet_no, parcel_no,
                    current_province_code, current_commune_code, area_m2, computed_area_m2,
                    legal_area_m2, land_use, address, source_srid, load_run_id, geom)
            SELECT s.province_code, s.district_code, s.commune_code, s.sheet_no,
                   s.parcel_no, s.current_province_code, s.current_commune_code, s.area_m2,
                   s.computed_area_m2, s.legal_area_m2, s.land_use, s.address,
                   s.source_srid, :run, s.geom
              FROM stage_parcel s JOIN merge_plan m USING (feature_no)
             WHERE m.action = 'new'
             ORDER BY s.district_code COLLATE "C", s.commune_code COLLATE "C", s.sheet_no,
                      s.parcel_no
            RETURNING uid, district_code, commune_code, sheet_no, parcel_no)
        UPDATE merge_plan m SET uid = i.uid
          FROM inserted i JOIN stage_parcel s
            ON s.district_code = i.district_code AND s.commune_code = i.commune_code
           AND s.sheet_no = i.sheet_no AND s.parcel_no = i.parcel_no
         WHERE s.feature_no = m.feature_no
    """), params)
    # Land-use parts: replaced wholesale for new and changed parcels.
    conn.execute(text("""
        DELETE FROM cadastre.parcel_land_use u USING merge_plan m, stage_parcel s
         WHERE m.action = 'changed' AND s.feature_no = m.feature_no
           AND u.district_code = s.district_code AND u.parcel_uid = m.uid
    """))
    conn.execute(text("""
        INSERT INTO cadastre.parcel_land_use
               (district_code, parcel_uid, seq, code, source_code, area_m2, is_primary)
        SELECT s.district_code, m.uid, part.seq, part.code, s.land_use_source,
               CASE WHEN cardinality(string_to_array(s.land_use, '+')) = 1 THEN s.area_m2 END,
               part.seq = 1
          FROM stage_parcel s JOIN merge_plan m USING (feature_no)
          CROSS JOIN LATERAL unnest(string_to_array(s.land_use, '+'))
                     WITH ORDINALITY AS part(code, seq)
         WHERE m.action IN ('new', 'changed')
    """))
    conn.execute(text("""
        INSERT INTO cadastre.map_sheet (district_code, commune_code, sheet_no, source_srid)
        SELECT DISTINCT district_code, commune_code, sheet_no, source_srid FROM stage_parcel
        ON CONFLICT DO NOTHING
    """))
    conn.execute(text("""
        INSERT INTO cadastre.parcel_event (district_code, parcel_uid, kind, load_run_id, detail)
        SELECT s.district_code, m.uid, CASE m.action WHEN 'new' THEN 'create' ELSE 'update' END,
               :run, jsonb_build_object('feature_no', s.feature_no)
          FROM merge_plan m JOIN stage_parcel s USING (feature_no)
         WHERE m.action IN ('new', 'changed')
    """), params)
    owners = _merge_owners(conn, run_id)
    refresh_district_summary(conn)
    counts = dict(conn.execute(text(
        "SELECT action, count(*) FROM merge_plan GROUP BY action")).all())
    return {"inserted": counts.get("new", 0), "updated": counts.get("changed", 0),
            "unchanged": counts.get("unchanged", 0), **owners}


def refresh_district_summary(conn: Connection, districts: list[str] | None = None) -> None:
    """Recount the districts this load touched (one indexed scan per district): those in
    stage_parcel, or ``districts`` when a write changed status without staging (a retire)."""
    touched = ("SELECT DISTINCT district_code FROM stage_parcel" if districts is None
               else "SELECT unnest(CAST(:districts AS text[]))")
    conn.execute(text(f"""
        INSERT INTO cadastre.district_summary AS d
               (district_code, parcel_count, min_lon, min_lat, max_lon, max_lat, updated_at)
        SELECT t.code, count(p.uid), ST_XMin(ST_Extent(p.geom)), ST_YMin(ST_Extent(p.geom)),
               ST_XMax(ST_Extent(p.geom)), ST_YMax(ST_Extent(p.geom)), now()
          FROM ({touched}) AS t(code)
          LEFT JOIN cadastre.parcel p  -- a district with no current parcel left counts 0
            ON p.district_code = t.code AND p.status = 'current'
         GROUP BY t.code
        ON CONFLICT (district_code) DO UPDATE
           SET parcel_count = EXCLUDED.parcel_count, min_lon = EXCLUDED.min_lon,
               min_lat = EXCLUDED.min_lat, max_lon = EXCLUDED.max_lon,
               max_lat = EXCLUDED.max_lat, updated_at = EXCLUDED.updated_at
         WHERE (d.parcel_count, d.min_lon, d.min_lat, d.max_lon, d.max_lat)
               IS DISTINCT FROM (EXCLUDED.parcel_count, EXCLUDED.min_lon, EXCLUDED.min_lat,
                                 EXCLUDED.max_lon, EXCLUDED.max_lat)
    """), {} if districts is None else {"districts": districts})


def _merge_owners(conn: Connection, run_id: int) -> dict[str, int]:
    """Parties, certificates and rights (restricted schema), idempotent by natural key.

    A party is keyed by ID number, or, lacking one, by parcel and name. A delivered owner
    different from a parcel's current right holder ends that right (a transfer event).
    """
    conn.execute(text("""
        CREATE TEMP TABLE stage_owner ON COMMIT DROP AS
        SELECT s.district_code, m.uid AS parcel_uid, s.owner_name, s.owner_id_number,
               s.certificate_serial, s.certificate_date,
               CASE WHEN s.owner_id_number IS NOT NULL THEN 'id:' || s.owner_id_number
                    ELSE 'parcel:' || s.district_code || ':' || s.commune_code || '-'
                         || s.sheet_no || '-' || s.parcel_no || ':' || s.owner_name
               END AS source_key
          FROM stage_parcel s JOIN merge_plan m USING (feature_no)
         WHERE s.owner_name IS NOT NULL
    """))
    conn.execute(text("""
        INSERT INTO restricted.party (full_name, id_number, source_key)
        SELECT DISTINCT ON (source_key) owner_name, owner_id_number, source_key
          FROM stage_owner ORDER BY source_key
        ON CONFLICT (source_key) DO UPDATE SET full_name = EXCLUDED.full_name
         WHERE party.full_name IS DISTINCT FROM EXCLUDED.full_name
    """))
    conn.execute(text("""
        INSERT INTO restricted.certificate (district_code, serial, issue_date)
        SELECT DISTINCT ON (certificate_serial) district_code, certificate_serial,
               certificate_date
          FROM stage_owner WHERE certificate_serial IS NOT NULL
         ORDER BY certificate_serial
        ON CONFLICT (serial) DO UPDATE SET issue_date = EXCLUDED.issue_date
         WHERE certificate.issue_date IS DISTINCT FROM EXCLUDED.issue_date
    """))
    ended = conn.execute(text("""
        WITH ended AS (
            UPDATE restricted.land_right r SET valid_to = now()
              FROM stage_owner o JOIN restricted.party pa USING (source_key)
             WHERE r.district_code = o.district_code AND r.parcel_uid = o.parcel_uid
               AND r.valid_to IS NULL AND r.party_id <> pa.party_id
            RETURNING r.district_code, r.parcel_uid)
        INSERT INTO cadastre.parcel_event (district_code, parcel_uid, kind, load_run_id)
        SELECT DISTINCT district_code, parcel_uid, 'transfer', :run FROM ended
        RETURNING 1
    """), {"run": run_id}).rowcount
    added = conn.execute(text("""
        INSERT INTO restricted.land_right (district_code, parcel_uid, party_id, certificate_id)
        SELECT o.district_code, o.parcel_uid, pa.party_id, c.certificate_id
          FROM stage_owner o JOIN restricted.party pa USING (source_key)
          LEFT JOIN restricted.certificate c ON c.serial = o.certificate_serial
        ON CONFLICT (district_code, parcel_uid, party_id) WHERE valid_to IS NULL
        DO UPDATE SET certificate_id = EXCLUDED.certificate_id
         WHERE land_right.certificate_id IS DISTINCT FROM EXCLUDED.certificate_id
    """)).rowcount
    return {"rights_written": added, "rights_ended": ended}


