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

from cadastre import current_units, holders, partitions
from etl.staging import advisory_lock, copy_chunks, copy_formatted, copy_rows

STAGE_DDL = """
CREATE TEMP TABLE stage_parcel (
    feature_no int, province_code text, district_code text, commune_code text,
    sheet_no int, parcel_no int, area_m2 numeric(14,1), computed_area_m2 numeric(14,1),
    legal_area_m2 numeric(14,1), land_use text, land_use_source text, address text,
    current_province_code text, current_commune_code text, source_srid int,
    geom geometry(MultiPolygon, 4326), owner_name text, owner_id_number text,
    certificate_serial text, certificate_date date, scale int, scale_stated int,
    owner_kind text, land_use_areas text,
    rejected boolean NOT NULL DEFAULT false  -- refused by a rule: only its key is staged
) ON COMMIT DROP
"""
# The parcels each staged parcel came from, by their old numbers (see rules.parent_refs).
PARENT_DDL = """
CREATE TEMP TABLE stage_parent (
    feature_no int, commune_code text, sheet_no int, parcel_no int, change_kind text,
    change_date date
) ON COMMIT DROP
"""
COPY_COLUMNS = (
    "feature_no, province_code, district_code, commune_code, sheet_no, parcel_no, area_m2, "
    "computed_area_m2, legal_area_m2, land_use, land_use_source, address, "
    "current_province_code, current_commune_code, source_srid, geom, owner_name, "
    "owner_id_number, certificate_serial, certificate_date, scale, scale_stated, "
    "owner_kind, land_use_areas"
)
# A streamed load stages the rows its rules refused too (their keys only, flagged), for
# the in-file duplicate check (``duplicate_keys``), and drops them before the merge.
STREAM_COLUMNS = COPY_COLUMNS + ", rejected"
PARENT_COLUMNS = "feature_no, commune_code, sheet_no, parcel_no, change_kind, change_date"
STAGE_STATS_COLUMNS = ("feature_no, district_code, commune_code, sheet_no, parcel_no, "
                       "owner_name, owner_id_number, certificate_serial")
# Attributes whose change makes a new version of a parcel (history + 'update' event).
# The source CRS alone is not a change of the parcel: the same parcel delivered again in
# another CRS is the same parcel (its geometry decides).
VERSIONED = ("area_m2", "computed_area_m2", "legal_area_m2", "land_use", "address",
             "current_province_code", "current_commune_code", "current_commune_source")
PARCEL_COLS = ("province_code, district_code, commune_code, sheet_no, parcel_no, national_id, "
               "current_province_code, current_commune_code, area_m2, computed_area_m2, "
               "legal_area_m2, land_use, address, status, valid_from, valid_to, source_srid, "
               "load_run_id, geom")


def begin_stage(conn: Connection) -> None:
    """The empty stage tables, for this transaction."""
    # The merge's statements are big joins over the whole stage: their estimated cost
    # crosses jit_above_cost at a few hundred thousand rows, and compiling them costs more
    # than it saves (seconds per statement). Off for this transaction only.
    conn.execute(text("SET LOCAL jit = off"))
    conn.execute(text(STAGE_DDL))
    conn.execute(text(PARENT_DDL))
    conn.execute(text(holders.STAGE_DDL))  # empty unless the delivery has a holders file


def finish_stage(conn: Connection) -> None:
    """Planner statistics for the merge's joins, once everything is staged."""
    conn.execute(text("ANALYZE stage_parent"))
    # No index on the stage: every merge step reads all of it (hash joins, or probes of
    # the parcel table's natural-key index from each stage row), never the other way.
    # Statistics for the columns the merge joins and filters on; sampling the geometry
    # column (PostGIS computes its histogram) is the bulk of a full ANALYZE and unused.
    conn.execute(text(f"ANALYZE stage_parcel ({STAGE_STATS_COLUMNS})"))


def stage(conn: Connection, rows: pd.DataFrame, parents: pd.DataFrame | None = None,
          progress: Callable[[int, int], None] | None = None) -> None:
    """COPY validated rows (and their parents by old number) into the stage at once (an
    API write's one parcel; a file is staged batch by batch: ``stage_batch``)."""
    begin_stage(conn)
    copy_rows(conn, "stage_parcel", COPY_COLUMNS, rows, progress)
    if parents is not None and len(parents):
        copy_rows(conn, "stage_parent", PARENT_COLUMNS, parents)
    finish_stage(conn)


def format_batch(rows: pd.DataFrame, parents: pd.DataFrame
                 ) -> tuple[list[bytes | pd.DataFrame], list[bytes | pd.DataFrame]]:
    """A checked batch (``rules.check_batch``: every row, flagged) as COPY text for
    ``stage_batch``; made in the producer thread, apart from the connection."""
    return ([c for _, c in copy_chunks(rows, STREAM_COLUMNS)],
            [c for _, c in copy_chunks(parents, PARENT_COLUMNS)] if len(parents) else [])


def stage_batch(conn: Connection, rows: list[bytes | pd.DataFrame],
                parents: list[bytes | pd.DataFrame]) -> None:
    """Send one formatted batch into the stage (``format_batch``)."""
    copy_formatted(conn, "stage_parcel", STREAM_COLUMNS, rows)
    if parents:
        copy_formatted(conn, "stage_parent", PARENT_COLUMNS, parents)


def duplicate_keys(conn: Connection) -> list[tuple[int, str, int, int, list[int]]]:
    """Natural keys the file holds more than once, refused or not, every copy:
    (feature, commune, sheet, parcel, the other features), in the order of the key's
    first feature. One aggregate over the stage: the file is never held to find them."""
    return [tuple(r) for r in conn.execute(text("""
        WITH dup AS (
            SELECT commune_code, sheet_no, parcel_no,
                   array_agg(feature_no ORDER BY feature_no) AS nos
              FROM stage_parcel
             WHERE commune_code IS NOT NULL AND sheet_no IS NOT NULL
               AND parcel_no IS NOT NULL
             GROUP BY commune_code, sheet_no, parcel_no
            HAVING count(*) > 1)
        SELECT no, commune_code, sheet_no, parcel_no, array_remove(nos, no)
          FROM dup CROSS JOIN LATERAL unnest(nos) AS no
         ORDER BY nos[1], no
    """))]


def certificate_conflicts(conn: Connection) -> list[tuple[int, str]]:
    """Certificate serials that cannot be one certificate: (feature, why), every copy.

    A serial is printed once in the country. One certificate may cover several parcels of
    a holder (Land Law 2024, art. 135), so a serial twice in a file is fine on the same
    date in one district; a serial with two issue dates, or in two districts, or that the
    register holds for another district's parcel, is a mistake the office must settle
    (which parcel is it?). The serial itself is never quoted: it identifies a holder.
    """
    return [tuple(r) for r in conn.execute(text("""
        WITH staged AS (
            SELECT feature_no, district_code, certificate_serial AS serial, certificate_date
              FROM stage_parcel
             WHERE certificate_serial IS NOT NULL AND NOT rejected),
        twice AS (
            SELECT serial, array_agg(feature_no ORDER BY feature_no) AS nos
              FROM staged GROUP BY serial
            HAVING count(DISTINCT district_code) > 1
                OR count(DISTINCT coalesce(certificate_date::text, '')) > 1)
        SELECT no, 'the certificate serial is given with other issue dates or districts '
                   || 'by feature ' || array_to_string(array_remove(t.nos, no), ', ')
          FROM twice t CROSS JOIN LATERAL unnest(t.nos) AS no
        UNION ALL
        SELECT s.feature_no, 'the certificate serial is registered for a parcel of '
                             || 'district ' || c.district_code
          FROM staged s JOIN restricted.certificate c ON c.serial = s.serial
         WHERE c.district_code <> s.district_code
         ORDER BY 1
    """))]


def drop_rejected(conn: Connection, feature_nos: list[int]) -> int:
    """Leave out the rows the rules refused and ``feature_nos`` (quarantine); return how
    many staged rows remain."""
    conn.execute(text("DELETE FROM stage_parcel WHERE rejected OR feature_no = ANY(:nos)"),
                 {"nos": feature_nos})
    conn.execute(text("DELETE FROM stage_parent WHERE feature_no = ANY(:nos)"),
                 {"nos": feature_nos})
    return conn.execute(text("SELECT count(*) FROM stage_parcel")).scalar_one()


def lock_districts(conn: Connection, districts: list[str]) -> None:
    """Serialise concurrent loads of the same district's parcels."""
    advisory_lock(conn, "parcels", districts)


def merge(conn: Connection, run_id: int, delivery: str = "changes") -> dict[str, int]:
    """Merge stage_parcel into the cadastre; return counts.

    ``delivery``: ``changes`` (parcels whose old numbers name current parcels retire them,
    linked parent -> child) or ``resurvey`` (the delivery is the whole cadastre of its
    communes: the parcels it does not carry are retired, each new or changed parcel is
    linked to the old parcels it overlaps, with the area they share).
    """
    current = current_units.assign_stage(conn)  # the 2025 units, on the stage
    built = partitions.build(conn)  # the partitions of districts that have none yet
    if built and partitions.only_new(conn, built):
        return {**_merge_first(conn, run_id, built), **current}
    partitions.attach(conn, built)  # empty: the delivery merges as any other
    if delivery == "resurvey":
        _snapshot_communes(conn)
    changed_expr = " OR ".join(f"p.{c} IS DISTINCT FROM s.{c}" for c in VERSIONED)
    # A mixed-use parcel whose parts' areas the delivery states differently (or no
    # longer states) is changed too: its parts are rewritten.
    changed_expr += """ OR (s.land_use LIKE '%+%' AND s.land_use_areas IS DISTINCT FROM (
        SELECT string_agg(u.area_m2::text, ';' ORDER BY u.seq)
          FROM cadastre.parcel_land_use u
         WHERE u.district_code = p.district_code AND u.parcel_uid = p.uid))"""
    # ``moved``: a new parcel or a new geometry, which the low-zoom shapes must show.
    conn.execute(text(f"""
        CREATE TEMP TABLE merge_plan ON COMMIT DROP AS
        SELECT feature_no, uid,
               CASE WHEN uid IS NULL THEN 'new' WHEN moved OR edited THEN 'changed'
                    ELSE 'unchanged' END AS action,
               uid IS NULL OR moved AS moved
          FROM (SELECT s.feature_no, p.uid, ST_AsBinary(p.geom) <> ST_AsBinary(s.geom)
                       AS moved, {changed_expr} AS edited
                  FROM stage_parcel s
                  LEFT JOIN cadastre.parcel p
                    ON p.district_code = s.district_code AND p.commune_code = s.commune_code
                   AND p.sheet_no = s.sheet_no AND p.parcel_no = s.parcel_no) x
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
    _insert_new(conn, params)
    # Land-use parts: replaced wholesale for new and changed parcels; a single purpose's
    # area is the parcel's, a mixed-use parcel's parts' as the delivery states them.
    conn.execute(text("""
        DELETE FROM cadastre.parcel_land_use u USING merge_plan m, stage_parcel s
         WHERE m.action = 'changed' AND s.feature_no = m.feature_no
           AND u.district_code = s.district_code AND u.parcel_uid = m.uid
    """))
    _insert_land_use(conn, {})
    _merge_sheets(conn)
    _insert_events(conn, params)
    lineage = _lineage(conn, run_id, delivery)
    owners = _merge_owners(conn, run_id)
    touched = conn.execute(text(
        "SELECT DISTINCT district_code FROM stage_parcel UNION "
        "SELECT DISTINCT district_code FROM retiring")).scalars().all()
    redraw = conn.execute(text(
        "SELECT DISTINCT s.district_code FROM stage_parcel s JOIN merge_plan m "
        "USING (feature_no) WHERE m.moved UNION "
        "SELECT DISTINCT district_code FROM retiring")).scalars().all()
    refresh_district_summary(conn, list(touched), list(redraw))
    counts = dict(conn.execute(text(
        "SELECT action, count(*) FROM merge_plan GROUP BY action")).all())
    return {"inserted": counts.get("new", 0), "updated": counts.get("changed", 0),
            "unchanged": counts.get("unchanged", 0), **lineage, **owners, **current}


# The first-load path writes a province's rows into the tables built for its partitions
# (``partitions.build``): ``target`` names the table, ``scope`` restricts the stage to its
# districts (``:members``).
IN_SCOPE = "AND s.district_code = ANY(CAST(:members AS text[]))"


# A new parcel's columns, and what the stage gives them.
NEW_COLUMNS = """province_code, district_code, commune_code, sheet_no, parcel_no,
                    current_province_code, current_commune_code, current_commune_source,
                    area_m2, computed_area_m2, legal_area_m2, land_use, address, source_srid,
                    load_run_id, geom"""
NEW_VALUES = """s.province_code, s.district_code, s.commune_code, s.sheet_no,
                   s.parcel_no, s.current_province_code, s.current_commune_code,
                   s.current_commune_source, s.area_m2,
                   s.computed_area_m2, s.legal_area_m2, s.land_use, s.address,
                   s.source_srid, :run, s.geom"""
# New parcels are numbered in the order of their keys (and stored in it).
KEY_ORDER = ('{s}district_code COLLATE "C", {s}commune_code COLLATE "C", {s}sheet_no, '
             '{s}parcel_no')


def _insert_new(conn: Connection, params: dict) -> None:
    """The plan's new parcels, their uids back into the plan from RETURNING (hash-joined
    on the key) rather than by probing the parcel table's index once per new row."""
    conn.execute(text(f"""
        WITH inserted AS (
            INSERT INTO cadastre.parcel ({NEW_COLUMNS})
            SELECT {NEW_VALUES}
              FROM stage_parcel s JOIN merge_plan m USING (feature_no)
             WHERE m.action = 'new'
             ORDER BY {KEY_ORDER.format(s="s.")}
            RETURNING uid, district_code, commune_code, sheet_no, parcel_no)
        UPDATE merge_plan m SET uid = i.uid
          FROM inserted i JOIN stage_parcel s
            ON s.district_code = i.district_code AND s.commune_code = i.commune_code
           AND s.sheet_no = i.sheet_no AND s.parcel_no = i.parcel_no
         WHERE s.feature_no = m.feature_no
    """), params)


def _insert_land_use(conn: Connection, params: dict,
                     target: str = "cadastre.parcel_land_use", scope: str = "") -> None:
    """The land-use parts of the plan's new and changed parcels: a single purpose's area
    is the parcel's, a mixed-use parcel's parts' as the delivery states them."""
    conn.execute(text(f"""
        INSERT INTO {target}
               (district_code, parcel_uid, seq, code, source_code, area_m2, is_primary)
        SELECT s.district_code, m.uid, part.seq, part.code, s.land_use_source,
               CASE WHEN cardinality(string_to_array(s.land_use, '+')) = 1 THEN s.area_m2
                    ELSE CAST(NULLIF(split_part(s.land_use_areas, ';', CAST(part.seq AS int)),
                                     '') AS numeric) END,
               part.seq = 1
          FROM stage_parcel s JOIN merge_plan m USING (feature_no)
          CROSS JOIN LATERAL unnest(string_to_array(s.land_use, '+'))
                     WITH ORDINALITY AS part(code, seq)
         WHERE m.action IN ('new', 'changed') {scope}
    """), params)


def _merge_sheets(conn: Connection) -> None:
    """The sheet's scale, where the delivery states one, for later deliveries' tolerance."""
    conn.execute(text("""
        INSERT INTO cadastre.map_sheet (district_code, commune_code, sheet_no, source_srid,
                                        scale)
        SELECT DISTINCT ON (district_code, commune_code, sheet_no) district_code,
               commune_code, sheet_no, source_srid, scale_stated
          FROM stage_parcel
         ORDER BY district_code, commune_code, sheet_no, scale_stated NULLS LAST
        ON CONFLICT (district_code, commune_code, sheet_no) DO UPDATE
           SET scale = EXCLUDED.scale
         WHERE EXCLUDED.scale IS NOT NULL AND map_sheet.scale IS DISTINCT FROM EXCLUDED.scale
    """))


def _insert_events(conn: Connection, params: dict, target: str = "cadastre.parcel_event",
                   scope: str = "") -> None:
    """A 'create' event for each new parcel of the plan, an 'update' for each changed."""
    conn.execute(text(f"""
        INSERT INTO {target} (district_code, parcel_uid, kind, load_run_id, detail)
        SELECT s.district_code, m.uid, CASE m.action WHEN 'new' THEN 'create' ELSE 'update' END,
               :run, jsonb_build_object('feature_no', s.feature_no)
          FROM merge_plan m JOIN stage_parcel s USING (feature_no)
         WHERE m.action IN ('new', 'changed') {scope}
    """), params)


def _merge_first(conn: Connection, run_id: int, built: list[partitions.Built]
                 ) -> dict[str, int]:
    """A delivery all of new parcels, in districts whose partitions were built apart for
    it (``partitions.build``): its parcels, land-use parts, events and rights written
    into those tables set-wise, then attached (the indexes built and the keys validated
    then, from the data). There is nothing to compare, retire or link: no parcel of these
    districts exists and the delivery names no current parcel as a parent
    (``partitions.only_new``), so the general merge's other steps would find nothing."""
    # Every parcel is new: numbered here, in the order of the keys (as the general merge
    # numbers them), and written with its number (no RETURNING to join back).
    conn.execute(text(f"""
        CREATE TEMP TABLE merge_plan ON COMMIT DROP AS
        SELECT feature_no,
               nextval(CAST(pg_get_serial_sequence('cadastre.parcel', 'uid') AS regclass))
               AS uid, 'new' AS action, true AS moved
          FROM (SELECT feature_no FROM stage_parcel ORDER BY {KEY_ORDER.format(s="")}
                OFFSET 0) o
    """))
    conn.execute(text("ANALYZE merge_plan"))
    scopes = [(b, {"run": run_id, "members": list(b.districts)}) for b in built]
    for b, params in scopes:
        conn.execute(text(f"""
            INSERT INTO {b.table("cadastre.parcel")} (uid, {NEW_COLUMNS})
            SELECT m.uid, {NEW_VALUES}
              FROM stage_parcel s JOIN merge_plan m USING (feature_no)
             WHERE TRUE {IN_SCOPE}
             ORDER BY m.uid
        """), params)
    for b, params in scopes:
        _insert_land_use(conn, params, b.table("cadastre.parcel_land_use"), IN_SCOPE)
        _insert_events(conn, params, b.table("cadastre.parcel_event"), IN_SCOPE)
    _merge_sheets(conn)
    _stage_owners(conn)
    rights = 0
    for b, params in scopes:  # one right per holder of a parcel (its unique index's key)
        rights += conn.execute(text(f"""
            INSERT INTO {b.table("restricted.land_right")}
                   (district_code, parcel_uid, party_id, certificate_id, share)
            SELECT DISTINCT ON (o.district_code, o.parcel_uid, pa.party_id)
                   o.district_code, o.parcel_uid, pa.party_id, c.certificate_id, o.share
              FROM stage_owner o JOIN restricted.party pa USING (source_key)
              LEFT JOIN restricted.certificate c ON c.serial = o.certificate_serial
             WHERE o.district_code = ANY(CAST(:members AS text[]))
             ORDER BY o.district_code, o.parcel_uid, pa.party_id, o.share NULLS LAST
        """), params).rowcount
    partitions.attach(conn, built)
    # the general merge's lineage plans, empty, for what reads them after a merge (a
    # commune officer's write checks the parents it retires)
    conn.execute(text("CREATE TEMP TABLE lineage_plan (child_uid bigint, child_district "
                      "text, parent_uid bigint, parent_district text, kind text, "
                      "shared_area_m2 numeric) ON COMMIT DROP"))
    conn.execute(text("CREATE TEMP TABLE retiring (district_code text, uid bigint) "
                      "ON COMMIT DROP"))
    refresh_district_summary(conn)
    inserted = conn.execute(text("SELECT count(*) FROM merge_plan")).scalar_one()
    return {"inserted": inserted, "updated": 0, "unchanged": 0, "lineage": 0, "retired": 0,
            "rights_written": rights, "rights_ended": 0, "transfers": 0, "first_load": 1}


def _snapshot_communes(conn: Connection) -> None:
    """The current cadastre of the delivery's communes as it was before this load (a
    re-survey links new parcels to these geometries)."""
    conn.execute(text("""
        CREATE TEMP TABLE old_parcel ON COMMIT DROP AS
        SELECT p.district_code, p.uid, p.area_m2, p.geom
          FROM cadastre.parcel p
         WHERE p.status = 'current'
           AND (p.district_code, p.commune_code) IN (
                SELECT DISTINCT district_code, commune_code FROM stage_parcel)
    """))
    conn.execute(text("CREATE INDEX ON old_parcel USING gist (geom)"))
    conn.execute(text("ANALYZE old_parcel"))


# The area two parcels share, m² on the ellipsoid (as exact as the province's TM-3 here).
SHARED = "round(ST_Area(ST_Intersection({a}, {b})::geography)::numeric, 1)"


def _lineage(conn: Connection, run_id: int, delivery: str) -> dict[str, int]:
    """Link parents to children and retire the parents this delivery replaces.

    ``lineage_plan``: one row per (child, parent). For changed parcels the parents are
    the current parcels their old numbers name (not the parcel itself); for a re-survey,
    every old parcel of the communes a new or changed parcel overlaps. A parent the
    delivery carries again keeps its number and stays current; every other parent is
    retired (history row, status historic, a 'retire' event). The child gets one event of
    the change's kind and the lineage rows point at it.
    """
    params = {"run": run_id}
    if delivery == "resurvey":
        # An overlap within the survey's accuracy (the permissible area error of the
        # smaller parcel, as for overlaps: ``overlaps``) is the two surveys' digitising,
        # not land that passed from one parcel to the other.
        conn.execute(text(f"""
            CREATE TEMP TABLE lineage_plan ON COMMIT DROP AS
            SELECT child_uid, child_district, parent_uid, parent_district, kind,
                   shared_area_m2
              FROM (
                SELECT m.uid AS child_uid, s.district_code AS child_district,
                       o.uid AS parent_uid, o.district_code AS parent_district,
                       'resurvey'::text AS kind, {SHARED.format(a="o.geom", b="s.geom")}
                       AS shared_area_m2,
                       0.0004 * s.scale * sqrt(least(s.area_m2, o.area_m2)) AS noise
                  FROM merge_plan m JOIN stage_parcel s USING (feature_no)
                  JOIN old_parcel o ON o.geom && s.geom AND o.uid <> m.uid
                 WHERE m.action IN ('new', 'changed')
                   AND ST_Relate(o.geom, s.geom, '2********')) links
             WHERE shared_area_m2 > noise
        """))
        conn.execute(text("""
            CREATE TEMP TABLE retiring ON COMMIT DROP AS
            SELECT o.district_code, o.uid FROM old_parcel o
             WHERE NOT EXISTS (SELECT 1 FROM merge_plan m WHERE m.uid = o.uid)
        """))
    else:
        conn.execute(text(f"""
            CREATE TEMP TABLE lineage_plan ON COMMIT DROP AS
            WITH links AS (
                SELECT DISTINCT m.uid AS child_uid, s.district_code AS child_district,
                       p.uid AS parent_uid, p.district_code AS parent_district
                  FROM stage_parent sp JOIN merge_plan m USING (feature_no)
                  JOIN stage_parcel s USING (feature_no)
                  JOIN cadastre.parcel p
                    ON p.commune_code = sp.commune_code AND p.sheet_no = sp.sheet_no
                   AND p.parcel_no = sp.parcel_no AND p.status = 'current'
                 WHERE p.uid <> m.uid),
            counted AS (
                SELECT *, count(*) OVER (PARTITION BY child_uid) AS parents,
                       count(*) OVER (PARTITION BY parent_uid) AS children
                  FROM links)
            SELECT l.child_uid, l.child_district, l.parent_uid, l.parent_district,
                   CASE WHEN max(l.parents) OVER (PARTITION BY l.child_uid) > 1 THEN 'merge'
                        WHEN max(l.children) OVER (PARTITION BY l.child_uid) > 1
                        THEN 'split' ELSE 'renumber' END AS kind,
                   {SHARED.format(a="coalesce(h.geom, pp.geom)", b="cp.geom")}
                   AS shared_area_m2
              FROM counted l
              JOIN cadastre.parcel pp ON pp.district_code = l.parent_district
                                     AND pp.uid = l.parent_uid
              JOIN cadastre.parcel cp ON cp.district_code = l.child_district
                                     AND cp.uid = l.child_uid
              -- a parent this delivery changed: its version before the load
              LEFT JOIN cadastre.parcel_history h
                ON h.district_code = l.parent_district AND h.uid = l.parent_uid
               AND h.superseded_by_run = :run
        """), params)
        conn.execute(text("""
            CREATE TEMP TABLE retiring ON COMMIT DROP AS
            SELECT DISTINCT l.parent_district AS district_code, l.parent_uid AS uid
              FROM lineage_plan l
             WHERE NOT EXISTS (SELECT 1 FROM merge_plan m WHERE m.uid = l.parent_uid)
        """))
    conn.execute(text("""
        WITH children AS (
            SELECT child_district, child_uid, min(kind) AS kind,
                   jsonb_agg(parent_uid ORDER BY parent_uid) AS parents
              FROM lineage_plan GROUP BY child_district, child_uid),
        stated AS (  -- what the delivery says of the change, as it says it
            SELECT m.uid, max(sp.change_kind) AS kind, max(sp.change_date) AS changed_on
              FROM stage_parent sp JOIN merge_plan m USING (feature_no)
             GROUP BY m.uid),
        events AS (
            INSERT INTO cadastre.parcel_event (district_code, parcel_uid, kind, load_run_id,
                                               detail)
            SELECT c.child_district, c.child_uid, c.kind, :run, jsonb_strip_nulls(
                   jsonb_build_object('parents', c.parents, 'stated_kind', st.kind,
                                      'changed_on', st.changed_on))
              FROM children c LEFT JOIN stated st ON st.uid = c.child_uid
            RETURNING event_id, district_code, parcel_uid)
        INSERT INTO cadastre.parcel_lineage (event_id, parent_district_code, parent_uid,
                                             child_district_code, child_uid, kind,
                                             shared_area_m2, load_run_id)
        SELECT e.event_id, l.parent_district, l.parent_uid, l.child_district, l.child_uid,
               l.kind, l.shared_area_m2, :run
          FROM lineage_plan l JOIN events e
            ON e.district_code = l.child_district AND e.parcel_uid = l.child_uid
    """), params)
    conn.execute(text(f"""
        INSERT INTO cadastre.parcel_history (uid, {PARCEL_COLS}, superseded_by_run)
        SELECT p.uid, {', '.join('p.' + c.strip() for c in PARCEL_COLS.split(','))}, :run
          FROM cadastre.parcel p JOIN retiring r
            ON r.district_code = p.district_code AND r.uid = p.uid
    """), params)
    conn.execute(text("""
        UPDATE cadastre.parcel p SET status = 'historic', valid_to = now(), load_run_id = :run
          FROM retiring r WHERE r.district_code = p.district_code AND r.uid = p.uid
    """), params)
    conn.execute(text("""
        INSERT INTO cadastre.parcel_event (district_code, parcel_uid, kind, load_run_id,
                                           detail)
        SELECT district_code, uid, 'retire', :run, jsonb_build_object('via', 'delivery')
          FROM retiring
    """), params)
    linked, retired = conn.execute(text(
        "SELECT (SELECT count(*) FROM lineage_plan), (SELECT count(*) FROM retiring)")).one()
    return {"lineage": linked, "retired": retired}


def unknown_parents(conn: Connection) -> list[tuple[int, str]]:
    """Old numbers that name no current parcel and no parent already linked to the
    feature (a re-load of the same delivery links nothing twice): (feature, number)."""
    return [tuple(r) for r in conn.execute(text("""
        SELECT sp.feature_no, sp.commune_code || '.' || sp.sheet_no || '.' || sp.parcel_no
          FROM stage_parent sp JOIN merge_plan m USING (feature_no)
         WHERE NOT EXISTS (
                SELECT 1 FROM cadastre.parcel p
                 WHERE p.commune_code = sp.commune_code AND p.sheet_no = sp.sheet_no
                   AND p.parcel_no = sp.parcel_no
                   AND (p.status = 'current' OR EXISTS (
                        SELECT 1 FROM cadastre.parcel_lineage l
                         WHERE l.parent_district_code = p.district_code
                           AND l.parent_uid = p.uid AND l.child_uid = m.uid)))
         ORDER BY sp.feature_no
    """))]


def overlaps(conn: Connection, delivery: str
             ) -> list[tuple[int, str, float, float, bool]]:
    """Staged parcels that overlap a current parcel they do not replace by more than the
    tolerance: (feature, the other parcel's number, overlap m², tolerance m², whether the
    other parcel is of the same district).

    Replaced are: the parcel of the same number, the parents the delivery's old numbers
    name and, for a re-survey, every parcel of its communes. The tolerance is the
    permissible area error (ΔP = 0.0004·M·√P) of the smaller of the two at the staged
    sheet's scale: an overlap within the survey's own accuracy is noise, not a conflict.
    Set-wise, on the parcels' spatial index. A staged parcel whose geometry is its current
    version's, byte for byte, is not checked: whatever it overlaps, it overlapped before
    this load (a district delivered again with a few changes checks those few, not every
    parcel against its neighbours).
    """
    resurveyed = ("AND (p.district_code, p.commune_code) NOT IN (SELECT DISTINCT "
                  "district_code, commune_code FROM stage_parcel)"
                  if delivery == "resurvey" else "")
    return [tuple(r) for r in conn.execute(text(f"""
        WITH moved AS MATERIALIZED (
            SELECT s.feature_no, s.district_code, s.scale, s.area_m2, s.geom
              FROM stage_parcel s
             WHERE NOT EXISTS (
                    SELECT 1 FROM cadastre.parcel q
                     WHERE q.district_code = s.district_code
                       AND q.commune_code = s.commune_code AND q.sheet_no = s.sheet_no
                       AND q.parcel_no = s.parcel_no AND q.status = 'current'
                       AND ST_AsBinary(q.geom) = ST_AsBinary(s.geom))),
        pairs AS (
            SELECT s.feature_no, p.commune_code || '.' || p.sheet_no || '.' || p.parcel_no
                   AS other, ST_Area(ST_Intersection(s.geom, p.geom)::geography) AS overlap,
                   0.0004 * s.scale * sqrt(least(s.area_m2, p.area_m2)) AS tolerance,
                   p.district_code = s.district_code AS same_district
              FROM moved s
              JOIN cadastre.parcel p ON p.geom && s.geom AND p.status = 'current'
             WHERE NOT EXISTS (
                    SELECT 1 FROM stage_parcel k
                     WHERE k.district_code = p.district_code
                       AND k.commune_code = p.commune_code AND k.sheet_no = p.sheet_no
                       AND k.parcel_no = p.parcel_no)
               AND NOT EXISTS (
                    SELECT 1 FROM stage_parent sp
                     WHERE sp.commune_code = p.commune_code AND sp.sheet_no = p.sheet_no
                       AND sp.parcel_no = p.parcel_no)
               {resurveyed}
               AND ST_Relate(s.geom, p.geom, '2********'))
        SELECT feature_no, other, round(overlap::numeric, 2)::float8,
               round(tolerance::numeric, 2)::float8, same_district
          FROM pairs WHERE overlap > tolerance ORDER BY feature_no, other
    """))]


def outside_commune(conn: Connection, commune: str, delivery: str
                    ) -> list[tuple[int, str, str | None, str]]:
    """What a load for one 2025 commune would write or retire outside it: (feature, the
    parcel's number, the 2025 commune it lies in or None, why). The staged parcels (their
    2025 commune assigned on the stage: ``current_units.assign_stage`` first), the current
    parcels they replace as they stand (a delivery may not move a parcel in from another
    commune), the parents their old numbers retire, and, for a re-survey, the parcels of
    its communes it does not carry (one row, feature 0: the whole file's)."""
    rows = [tuple(r) for r in conn.execute(text("""
        SELECT s.feature_no, s.commune_code || '.' || s.sheet_no || '.' || s.parcel_no,
               s.current_commune_code, 'staged'
          FROM stage_parcel s WHERE s.current_commune_code IS DISTINCT FROM :c
        UNION ALL
        SELECT s.feature_no, p.commune_code || '.' || p.sheet_no || '.' || p.parcel_no,
               p.current_commune_code, 'current'
          FROM stage_parcel s JOIN cadastre.parcel p
            ON p.district_code = s.district_code AND p.commune_code = s.commune_code
           AND p.sheet_no = s.sheet_no AND p.parcel_no = s.parcel_no
         WHERE p.status = 'current' AND p.current_commune_code IS DISTINCT FROM :c
           AND s.current_commune_code IS NOT DISTINCT FROM :c
        UNION ALL
        SELECT sp.feature_no, p.commune_code || '.' || p.sheet_no || '.' || p.parcel_no,
               p.current_commune_code, 'parent'
          FROM stage_parent sp JOIN cadastre.parcel p
            ON p.commune_code = sp.commune_code AND p.sheet_no = sp.sheet_no
           AND p.parcel_no = sp.parcel_no
         WHERE p.status = 'current' AND p.current_commune_code IS DISTINCT FROM :c
         ORDER BY 1, 4 DESC, 2
    """), {"c": commune})]
    if delivery == "resurvey":
        found = conn.execute(text("""
            SELECT count(*), min(p.commune_code || '.' || p.sheet_no || '.' || p.parcel_no)
              FROM cadastre.parcel p
             WHERE p.status = 'current' AND p.current_commune_code IS DISTINCT FROM :c
               AND (p.district_code, p.commune_code) IN (
                    SELECT DISTINCT district_code, commune_code FROM stage_parcel)
               AND NOT EXISTS (
                    SELECT 1 FROM stage_parcel s
                     WHERE s.district_code = p.district_code
                       AND s.commune_code = p.commune_code AND s.sheet_no = p.sheet_no
                       AND s.parcel_no = p.parcel_no)
        """), {"c": commune}).one()
        if found[0]:
            rows.insert(0, (0, f"{found[0]} of them (first {found[1]})", None, "resurvey"))
    return rows


def drop_features(conn: Connection, feature_nos: list[int]) -> None:
    """Leave staged features out of the merge (rejected by a check on the stage)."""
    for table in ("stage_parcel", "stage_parent"):
        conn.execute(text(f"DELETE FROM {table} WHERE feature_no = ANY(:nos)"),
                     {"nos": feature_nos})


def refresh_district_summary(conn: Connection, districts: list[str] | None = None,
                             redraw: list[str] | None = None) -> None:
    """Recount the districts this load touched (one indexed scan per district): those in
    stage_parcel, or ``districts`` when a write changed status without staging (a retire);
    and their low-zoom summary (``cadastre.parcel_summary``), whose shapes are drawn again
    for the districts in ``redraw`` only (None: all): the union of a commune's parcels is
    the dearest part, and a delivery that changed no geometry cannot have moved it."""
    touched = ("SELECT DISTINCT district_code FROM stage_parcel" if districts is None
               else "SELECT unnest(CAST(:districts AS text[]))")
    conn.execute(text(f"""
        INSERT INTO cadastre.district_summary AS d
               (district_code, parcel_count, min_lon, min_lat, max_lon, max_lat, updated_at,
                first_valid_from)
        SELECT t.code, count(p.uid), ST_XMin(ST_Extent(p.geom)), ST_YMin(ST_Extent(p.geom)),
               ST_XMax(ST_Extent(p.geom)), ST_YMax(ST_Extent(p.geom)), now(),
               min(p.valid_from)
          FROM ({touched}) AS t(code)
          LEFT JOIN cadastre.parcel p  -- a district with no current parcel left counts 0
            ON p.district_code = t.code AND p.status = 'current'
         GROUP BY t.code
        ON CONFLICT (district_code) DO UPDATE
           SET parcel_count = EXCLUDED.parcel_count, min_lon = EXCLUDED.min_lon,
               min_lat = EXCLUDED.min_lat, max_lon = EXCLUDED.max_lon,
               max_lat = EXCLUDED.max_lat, updated_at = EXCLUDED.updated_at,
               -- the earliest version only ever moves back (versions are kept)
               first_valid_from = least(d.first_valid_from, EXCLUDED.first_valid_from)
         WHERE (d.parcel_count, d.min_lon, d.min_lat, d.max_lon, d.max_lat,
                d.first_valid_from)
               IS DISTINCT FROM (EXCLUDED.parcel_count, EXCLUDED.min_lon, EXCLUDED.min_lat,
                                 EXCLUDED.max_lon, EXCLUDED.max_lat,
                                 least(d.first_valid_from, EXCLUDED.first_valid_from))
    """), {} if districts is None else {"districts": districts})
    # the low-zoom shapes of the same districts (migration 0016), in the same transaction
    conn.execute(text(f"SELECT cadastre.refresh_parcel_summary(ARRAY({touched}), "
                      "CAST(:redraw AS text[]))"),
                 {"redraw": redraw} | ({} if districts is None else {"districts": districts}))
    current_units.refresh_summary(conn, districts)


# A party's natural key: its document number (a household, whose document is its head's
# CCCD, apart from the head as a person), or, lacking one, the parcel and the name.
PARTY_KEY = """CASE WHEN {id} IS NOT NULL
                    THEN CASE WHEN {kind} = 'household' THEN 'household:' ELSE 'id:' END
                         || {id}
                    ELSE 'parcel:' || s.district_code || ':' || s.commune_code || '-'
                         || s.sheet_no || '-' || s.parcel_no || ':' || {name} END"""


def _merge_owners(conn: Connection, run_id: int) -> dict[str, int]:
    """Parties, certificates and rights (restricted schema), idempotent by natural key.

    A parcel the holders file names has exactly those holders (jointly, or with the
    shares given): a current right of it whose party or share is not among them ends. A
    parcel it does not name has the parcel file's owner, who is its first holder: its
    rights end only when that owner is none of its current holders. Either way a parcel
    whose rights ended, or that had rights and gained one, gets a ``transfer`` event; the
    same delivery again ends and adds nothing.
    """
    _stage_owners(conn)
    # The rights of the delivery's districts only, named as constants: joined to a temp
    # table by district_code alone, the planner hashes every partition of the national
    # rights table (most of a district re-delivery's merge at a million parcels).
    districts = {"districts": conn.execute(text(
        "SELECT coalesce(array_agg(DISTINCT district_code), '{}') FROM stage_owner")
    ).scalar_one()}
    conn.execute(text("""
        CREATE TEMP TABLE owner_parcel ON COMMIT DROP AS
        SELECT o.district_code, o.parcel_uid, bool_or(o.from_holders) AS from_holders,
               EXISTS (SELECT 1 FROM restricted.land_right r
                        WHERE r.district_code = o.district_code
                          AND r.parcel_uid = o.parcel_uid AND r.valid_to IS NULL)
               AS had_rights
          FROM stage_owner o GROUP BY o.district_code, o.parcel_uid
    """))
    conn.execute(text("CREATE TEMP TABLE owner_ended (district_code text, parcel_uid bigint, "
                      "rights bigint) ON COMMIT DROP"))
    conn.execute(text("""
        WITH ended AS (
            UPDATE restricted.land_right r SET valid_to = now()
              FROM owner_parcel op
             WHERE r.district_code = op.district_code AND r.parcel_uid = op.parcel_uid
               AND r.district_code = ANY(CAST(:districts AS text[])) AND r.valid_to IS NULL
               AND CASE WHEN op.from_holders THEN NOT EXISTS (
                            SELECT 1 FROM stage_owner o
                              JOIN restricted.party pa USING (source_key)
                             WHERE o.district_code = r.district_code
                               AND o.parcel_uid = r.parcel_uid AND pa.party_id = r.party_id
                               AND o.share IS NOT DISTINCT FROM r.share)
                        ELSE NOT EXISTS (  -- the first holder: is it one of them?
                            SELECT 1 FROM stage_owner o
                              JOIN restricted.party pa USING (source_key)
                              JOIN restricted.land_right k
                                ON k.district_code = o.district_code
                               AND k.parcel_uid = o.parcel_uid AND k.party_id = pa.party_id
                               AND k.valid_to IS NULL
                             WHERE o.district_code = r.district_code
                               AND o.parcel_uid = r.parcel_uid) END
            RETURNING r.district_code, r.parcel_uid)
        INSERT INTO owner_ended
        SELECT district_code, parcel_uid, count(*) FROM ended
         GROUP BY district_code, parcel_uid
    """), districts)
    # A holder who keeps the right: the certificate the delivery names.
    updated = conn.execute(text("""
        UPDATE restricted.land_right r SET certificate_id = c.certificate_id
          FROM stage_owner o JOIN restricted.party pa USING (source_key)
          LEFT JOIN restricted.certificate c ON c.serial = o.certificate_serial
         WHERE r.district_code = o.district_code AND r.parcel_uid = o.parcel_uid
           AND r.party_id = pa.party_id AND r.valid_to IS NULL
           AND r.district_code = ANY(CAST(:districts AS text[]))
           AND r.certificate_id IS DISTINCT FROM c.certificate_id
    """), districts).rowcount
    conn.execute(text("CREATE TEMP TABLE owner_added (district_code text, parcel_uid bigint, "
                      "rights bigint) ON COMMIT DROP"))
    conn.execute(text("""
        WITH added AS (
            INSERT INTO restricted.land_right (district_code, parcel_uid, party_id,
                                               certificate_id, share)
            SELECT o.district_code, o.parcel_uid, pa.party_id, c.certificate_id, o.share
              FROM stage_owner o JOIN restricted.party pa USING (source_key)
              LEFT JOIN restricted.certificate c ON c.serial = o.certificate_serial
             WHERE NOT EXISTS (
                    SELECT 1 FROM restricted.land_right r
                     WHERE r.district_code = o.district_code AND r.parcel_uid = o.parcel_uid
                       AND r.district_code = ANY(CAST(:districts AS text[]))
                       AND r.party_id = pa.party_id AND r.valid_to IS NULL)
            ON CONFLICT (district_code, parcel_uid, party_id) WHERE valid_to IS NULL
            DO NOTHING
            RETURNING district_code, parcel_uid)
        INSERT INTO owner_added
        SELECT district_code, parcel_uid, count(*) FROM added
         GROUP BY district_code, parcel_uid
    """), districts)
    transfers = conn.execute(text("""
        INSERT INTO cadastre.parcel_event (district_code, parcel_uid, kind, load_run_id)
        SELECT district_code, parcel_uid, 'transfer', :run FROM owner_ended
        UNION
        SELECT a.district_code, a.parcel_uid, 'transfer', :run
          FROM owner_added a JOIN owner_parcel op USING (district_code, parcel_uid)
         WHERE op.had_rights
    """), {"run": run_id}).rowcount
    added, ended = conn.execute(text(
        "SELECT (SELECT coalesce(sum(rights), 0) FROM owner_added), "
        "(SELECT coalesce(sum(rights), 0) FROM owner_ended)")).one()
    return {"rights_written": int(added) + updated, "rights_ended": int(ended),
            "transfers": transfers}


def _stage_owners(conn: Connection) -> None:
    """``stage_owner``: each staged parcel's holders (the holders file's, else the parcel
    file's owner), their parties and the certificates written, idempotent by natural key."""
    conn.execute(text(f"""
        CREATE TEMP TABLE stage_owner ON COMMIT DROP AS
        SELECT s.district_code, m.uid AS parcel_uid, h.name AS owner_name,
               h.id_number AS owner_id_number, h.kind AS owner_kind,
               CASE WHEN h.share IS NOT NULL THEN to_char(h.share, 'FM990.0') || '%' END
               AS share, s.certificate_serial, s.certificate_date, true AS from_holders,
               {PARTY_KEY.format(id="h.id_number", kind="h.kind", name="h.name")}
               AS source_key
          FROM stage_parcel s JOIN merge_plan m USING (feature_no)
          JOIN stage_holder h ON {holders.KEY}
         WHERE NOT h.bad
        UNION ALL
        SELECT s.district_code, m.uid, s.owner_name, s.owner_id_number, s.owner_kind, NULL,
               s.certificate_serial, s.certificate_date, false,
               {PARTY_KEY.format(id="s.owner_id_number", kind="s.owner_kind",
                                 name="s.owner_name")}
          FROM stage_parcel s JOIN merge_plan m USING (feature_no)
         WHERE s.owner_name IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM stage_holder h WHERE {holders.KEY})
    """))
    # Probed once per current right of the delivery's parcels below: without an index
    # each probe reads the whole temp table (quadratic in a district's holders).
    conn.execute(text("CREATE INDEX ON stage_owner (parcel_uid)"))
    conn.execute(text("ANALYZE stage_owner"))
    conn.execute(text("""
        INSERT INTO restricted.party (kind, full_name, id_number, source_key)
        SELECT DISTINCT ON (source_key) coalesce(owner_kind, 'individual'), owner_name,
               owner_id_number, source_key
          FROM stage_owner ORDER BY source_key
        ON CONFLICT (source_key) DO UPDATE SET full_name = EXCLUDED.full_name
         WHERE party.full_name IS DISTINCT FROM EXCLUDED.full_name
    """))
    # The kind where the delivery states one (a file without LoaiChu changes none).
    conn.execute(text("""
        UPDATE restricted.party pa SET kind = o.owner_kind
          FROM (SELECT DISTINCT ON (source_key) source_key, owner_kind FROM stage_owner
                 WHERE owner_kind IS NOT NULL ORDER BY source_key, owner_kind) o
         WHERE pa.source_key = o.source_key AND pa.kind IS DISTINCT FROM o.owner_kind
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
