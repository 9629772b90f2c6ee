"""Stage a validated price table and merge it in ONE transaction.

Natural keys: the table by ``table_code``; a segment by (table, normalised road|from|to);
a rate by (table, land type, segment or area class, position); an area class by (table,
commune); a zone by (table, zone code); a rule by (table, kind); a coefficient K by (year,
province, land type, district). Every write is conditional on a real difference
(``ON CONFLICT ... DO UPDATE ... WHERE ... IS DISTINCT FROM``), so re-loading a delivery
changes no data, and the same rates delivered as CSV instead of Excel change nothing.

What a delivery covers it replaces: the rates of each (land type, segment|area) a sheet
states (rows gone from the sheet are deleted, except in quarantine mode the rows that were
rejected, which keep their old rates), the area classes when it has such a sheet, the
zones when it brings a zones file, the rules when its sidecar states them. Segments left
with no rate are deleted. A geometry file sets the geometry of the segments it draws;
segments it does not draw keep the geometry they had.

Afterwards the table's content hash is recomputed; when it changed, ``version`` goes up
and ``load_run_id`` names this run, which is what valuation runs record.
"""

from __future__ import annotations

import json

import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection

from etl.staging import advisory_lock, copy_rows
from valuation.meta import TableMeta

STAGE_DDL = (
    """CREATE TEMP TABLE stage_segment (segment_key text PRIMARY KEY, road_name text,
        from_desc text, to_desc text, road_class text, district_code text, source_row text,
        geom geometry(MultiLineString, 4326), kind text, commune_code text,
        width_min_m numeric(6,2), width_max_m numeric(6,2), section text, segment_text text)
        ON COMMIT DROP""",
    """CREATE TEMP TABLE stage_rate (land_type text, segment_key text, area_class smallint,
        position smallint, vnd_per_m2 numeric(15,0)) ON COMMIT DROP""",
    "CREATE TEMP TABLE stage_scope (land_type text, basis text) ON COMMIT DROP",
    """CREATE TEMP TABLE stage_keep (land_type text, segment_key text, area_class smallint)
        ON COMMIT DROP""",
    """CREATE TEMP TABLE stage_class (commune_code text PRIMARY KEY, area_class smallint)
        ON COMMIT DROP""",
    "CREATE TEMP TABLE stage_keep_commune (commune_code text) ON COMMIT DROP",
    """CREATE TEMP TABLE stage_zone (zone_code text PRIMARY KEY, land_type text,
        vnd_per_m2 numeric(15,0), standard_parcel_ref text, district_code text,
        geom geometry(MultiPolygon, 4326)) ON COMMIT DROP""",
)
SEGMENT_COLUMNS = ("segment_key, road_name, from_desc, to_desc, road_class, district_code, "
                   "source_row, geom, kind, commune_code, width_min_m, width_max_m, section, "
                   "segment_text")
RATE_COLUMNS = "land_type, segment_key, area_class, position, vnd_per_m2"
ZONE_COLUMNS = "zone_code, land_type, vnd_per_m2, standard_parcel_ref, district_code, geom"


def lock_table(conn: Connection, table_code: str) -> None:
    """Serialise concurrent loads of the same price table."""
    advisory_lock(conn, "prices", [table_code])


def stage(conn: Connection, *, segments: pd.DataFrame, rates: pd.DataFrame,
          scopes: set[tuple[str, str]], keep: list[tuple[str, str | None, int | None]],
          classes: list[tuple[str, int]], keep_communes: set[str],
          zones: pd.DataFrame | None) -> None:
    for ddl in STAGE_DDL:
        conn.execute(text(ddl))
    copy_rows(conn, "stage_segment", SEGMENT_COLUMNS, segments)
    copy_rows(conn, "stage_rate", RATE_COLUMNS, rates)
    if scopes:
        conn.execute(text("INSERT INTO stage_scope VALUES (:l, :b)"),
                     [{"l": lt, "b": b} for lt, b in sorted(scopes)])
    if keep:
        conn.execute(text("INSERT INTO stage_keep VALUES (:l, :k, :a)"),
                     [{"l": lt, "k": k, "a": a} for lt, k, a in keep])
    if classes:
        conn.execute(text("INSERT INTO stage_class VALUES (:c, :a)"),
                     [{"c": c, "a": a} for c, a in classes])
    if keep_communes:
        conn.execute(text("INSERT INTO stage_keep_commune VALUES (:c)"),
                     [{"c": c} for c in sorted(keep_communes)])
    if zones is not None and len(zones):
        copy_rows(conn, "stage_zone", ZONE_COLUMNS, zones)
    conn.execute(text("ANALYZE stage_segment"))
    conn.execute(text("ANALYZE stage_rate"))


def upsert_table(conn: Connection, meta: TableMeta, run_id: int) -> int:
    """The table row by its code; attributes written only when they differ."""
    params = {"code": meta.table_code, "province": meta.province_code,
              "instrument": meta.instrument, "title": meta.title,
              "from": meta.effective_from, "to": meta.effective_to, "run": run_id}
    conn.execute(text("""
        INSERT INTO valuation.price_table (table_code, province_code, instrument, title,
                                           effective_from, effective_to, load_run_id)
        VALUES (:code, :province, :instrument, :title, :from, :to, :run)
        ON CONFLICT (table_code) DO UPDATE
           SET province_code = EXCLUDED.province_code, instrument = EXCLUDED.instrument,
               title = coalesce(EXCLUDED.title, price_table.title),
               effective_from = EXCLUDED.effective_from, effective_to = EXCLUDED.effective_to,
               updated_at = now()
         WHERE (price_table.province_code, price_table.instrument,
                coalesce(EXCLUDED.title, price_table.title), price_table.effective_from,
                price_table.effective_to)
               IS DISTINCT FROM (EXCLUDED.province_code, EXCLUDED.instrument,
                                 price_table.title, EXCLUDED.effective_from,
                                 EXCLUDED.effective_to)
    """), params)
    return conn.execute(text("SELECT table_id FROM valuation.price_table "
                             "WHERE table_code = :code"), params).scalar_one()


def _counts(conn: Connection, sql: str, params: dict) -> tuple[int, int]:
    """(inserted, updated) of an upsert whose RETURNING says ``xmax = 0`` for inserts."""
    row = conn.execute(text(f"""
        WITH up AS ({sql} RETURNING (xmax = 0) AS inserted)
        SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up
    """), params).one()
    return int(row[0]), int(row[1])


def merge(conn: Connection, table_id: int, meta: TableMeta, rules: dict | None, *,
          classes_given: bool, zones_given: bool) -> dict[str, dict[str, int]]:
    """Merge the staged table; return counts per kind (inserted, updated, unchanged,
    removed)."""
    p = {"t": table_id}
    out: dict[str, dict[str, int]] = {}
    staged = dict(conn.execute(text(
        "SELECT 'segments', count(*) FROM stage_segment UNION ALL "
        "SELECT 'rates', count(*) FROM stage_rate UNION ALL "
        "SELECT 'area_classes', count(*) FROM stage_class UNION ALL "
        "SELECT 'zones', count(*) FROM stage_zone")).all())

    ins, upd = _counts(conn, """
        INSERT INTO valuation.price_segment AS p (table_id, segment_key, road_name, from_desc,
               to_desc, road_class, district_code, source_row, geom, kind, commune_code,
               width_min_m, width_max_m, section, segment_text)
        SELECT :t, segment_key, road_name, from_desc, to_desc, road_class, district_code,
               source_row, geom, kind, commune_code, width_min_m, width_max_m, section,
               segment_text FROM stage_segment
        ON CONFLICT (table_id, segment_key) DO UPDATE
           SET road_name = EXCLUDED.road_name, from_desc = EXCLUDED.from_desc,
               to_desc = EXCLUDED.to_desc,
               road_class = coalesce(EXCLUDED.road_class, p.road_class),
               district_code = coalesce(EXCLUDED.district_code, p.district_code),
               geom = coalesce(EXCLUDED.geom, p.geom), kind = EXCLUDED.kind,
               commune_code = EXCLUDED.commune_code, width_min_m = EXCLUDED.width_min_m,
               width_max_m = EXCLUDED.width_max_m,
               section = coalesce(EXCLUDED.section, p.section),
               segment_text = coalesce(EXCLUDED.segment_text, p.segment_text)
         WHERE (p.road_name, p.from_desc, p.to_desc, p.road_class, p.district_code,
                ST_AsBinary(p.geom), p.kind, p.commune_code, p.width_min_m, p.width_max_m,
                p.section, p.segment_text)
               IS DISTINCT FROM (EXCLUDED.road_name, EXCLUDED.from_desc, EXCLUDED.to_desc,
                                 coalesce(EXCLUDED.road_class, p.road_class),
                                 coalesce(EXCLUDED.district_code, p.district_code),
                                 ST_AsBinary(coalesce(EXCLUDED.geom, p.geom)), EXCLUDED.kind,
                                 EXCLUDED.commune_code, EXCLUDED.width_min_m,
                                 EXCLUDED.width_max_m, coalesce(EXCLUDED.section, p.section),
                                 coalesce(EXCLUDED.segment_text, p.segment_text))
    """, p)
    seg_counts = {"inserted": ins, "updated": upd}

    ins, upd = _counts(conn, """
        INSERT INTO valuation.price_rate AS r (table_id, land_type, segment_id, area_class,
               position, vnd_per_m2)
        SELECT :t, s.land_type, g.segment_id, s.area_class, s.position, s.vnd_per_m2
          FROM stage_rate s
          LEFT JOIN valuation.price_segment g
            ON g.table_id = :t AND g.segment_key = s.segment_key
        ON CONFLICT (table_id, land_type, (coalesce(segment_id, 0)), (coalesce(area_class, 0)),
                     position)
        DO UPDATE SET vnd_per_m2 = EXCLUDED.vnd_per_m2
         WHERE r.vnd_per_m2 <> EXCLUDED.vnd_per_m2
    """, p)
    removed = conn.execute(text("""
        DELETE FROM valuation.price_rate r
         USING stage_scope sc
         WHERE r.table_id = :t AND r.land_type = sc.land_type
           AND CASE sc.basis WHEN 'segment' THEN r.segment_id IS NOT NULL
                             ELSE r.area_class IS NOT NULL END
           AND NOT EXISTS (
                SELECT 1 FROM stage_rate s
                  LEFT JOIN valuation.price_segment g
                    ON g.table_id = :t AND g.segment_key = s.segment_key
                 WHERE s.land_type = r.land_type AND s.position = r.position
                   AND coalesce(g.segment_id, 0) = coalesce(r.segment_id, 0)
                   AND coalesce(s.area_class, 0) = coalesce(r.area_class, 0))
           AND NOT EXISTS (
                SELECT 1 FROM stage_keep k
                  LEFT JOIN valuation.price_segment g
                    ON g.table_id = :t AND g.segment_key = k.segment_key
                 WHERE k.land_type = r.land_type
                   AND (g.segment_id = r.segment_id OR k.area_class = r.area_class))
    """), p).rowcount
    out["rates"] = {"inserted": ins, "updated": upd,
                    "unchanged": staged["rates"] - ins - upd, "removed": removed}
    seg_removed = conn.execute(text("""
        DELETE FROM valuation.price_segment s
         WHERE s.table_id = :t
           AND NOT EXISTS (SELECT 1 FROM valuation.price_rate r WHERE r.segment_id = s.segment_id)
    """), p).rowcount
    out["segments"] = {**seg_counts,
                       "unchanged": staged["segments"] - sum(seg_counts.values()),
                       "removed": seg_removed}

    if classes_given:
        ins, upd = _counts(conn, """
            INSERT INTO valuation.price_area_class AS c (table_id, commune_code, area_class)
            SELECT :t, commune_code, area_class FROM stage_class
            ON CONFLICT (table_id, commune_code) DO UPDATE SET area_class = EXCLUDED.area_class
             WHERE c.area_class <> EXCLUDED.area_class
        """, p)
        removed = conn.execute(text("""
            DELETE FROM valuation.price_area_class c
             WHERE c.table_id = :t
               AND c.commune_code NOT IN (SELECT commune_code FROM stage_class)
               AND c.commune_code NOT IN (SELECT commune_code FROM stage_keep_commune)
        """), p).rowcount
        out["area_classes"] = {"inserted": ins, "updated": upd,
                               "unchanged": staged["area_classes"] - ins - upd,
                               "removed": removed}
    if zones_given:
        ins, upd = _counts(conn, """
            INSERT INTO valuation.price_zone AS z (table_id, zone_code, land_type, vnd_per_m2,
                   standard_parcel_ref, district_code, geom)
            SELECT :t, zone_code, land_type, vnd_per_m2, standard_parcel_ref, district_code,
                   geom FROM stage_zone
            ON CONFLICT (table_id, zone_code) DO UPDATE
               SET land_type = EXCLUDED.land_type, vnd_per_m2 = EXCLUDED.vnd_per_m2,
                   standard_parcel_ref = EXCLUDED.standard_parcel_ref,
                   district_code = EXCLUDED.district_code, geom = EXCLUDED.geom
             WHERE (z.land_type, z.vnd_per_m2, z.standard_parcel_ref, z.district_code,
                    ST_AsBinary(z.geom))
                   IS DISTINCT FROM (EXCLUDED.land_type, EXCLUDED.vnd_per_m2,
                                     EXCLUDED.standard_parcel_ref, EXCLUDED.district_code,
                                     ST_AsBinary(EXCLUDED.geom))
        """, p)
        removed = conn.execute(text("""
            DELETE FROM valuation.price_zone
             WHERE table_id = :t AND zone_code NOT IN (SELECT zone_code FROM stage_zone)
        """), p).rowcount
        out["zones"] = {"inserted": ins, "updated": upd,
                        "unchanged": staged["zones"] - ins - upd, "removed": removed}
    if rules is not None:
        out["rules"] = _merge_rules(conn, table_id, rules)
    if meta.coefficients is not None:
        out["coefficients"] = _merge_coefficients(conn, meta)
    return out


def _merge_rules(conn: Connection, table_id: int, rules: dict) -> dict[str, int]:
    ins, upd = _counts(conn, """
        INSERT INTO valuation.adjustment_rule AS a (table_id, kind, parameters)
        SELECT :t, r.key, r.value FROM jsonb_each(CAST(:rules AS jsonb)) r
        ON CONFLICT (table_id, kind) DO UPDATE SET parameters = EXCLUDED.parameters
         WHERE a.parameters IS DISTINCT FROM EXCLUDED.parameters
    """, {"t": table_id, "rules": json.dumps(rules)})
    removed = conn.execute(text("""
        DELETE FROM valuation.adjustment_rule
         WHERE table_id = :t AND NOT (CAST(:rules AS jsonb) ? kind)
    """), {"t": table_id, "rules": json.dumps(rules)}).rowcount
    return {"inserted": ins, "updated": upd, "unchanged": len(rules) - ins - upd,
            "removed": removed}


def _merge_coefficients(conn: Connection, meta: TableMeta) -> dict[str, int]:
    rows = [{**c, "province": meta.province_code} for c in meta.coefficients or []]
    ins = upd = 0
    for row in rows:
        i, u = _counts(conn, """
            INSERT INTO valuation.price_coefficient AS c (year, province_code, land_type,
                   district_code, commune_code, position, k, instrument)
            VALUES (:year, :province, :land_type, :district_code, :commune_code, :position,
                    :k, :instrument)
            ON CONFLICT (year, province_code, land_type, (coalesce(district_code, '')),
                         (coalesce(commune_code, '')), (coalesce(position, 0)))
            DO UPDATE SET k = EXCLUDED.k, instrument = EXCLUDED.instrument
             WHERE (c.k, c.instrument) IS DISTINCT FROM (EXCLUDED.k, EXCLUDED.instrument)
        """, row)
        ins, upd = ins + i, upd + u
    years = sorted({r["year"] for r in rows})
    keys = [f"{r['year']}|{r['land_type']}|{r['district_code'] or ''}|"
            f"{r['commune_code'] or ''}|{r['position'] or 0}" for r in rows]
    removed = conn.execute(text("""
        DELETE FROM valuation.price_coefficient
         WHERE province_code = :province AND year = ANY(:years)
           AND NOT (concat_ws('|', year, land_type, coalesce(district_code, ''),
                              coalesce(commune_code, ''), coalesce(position, 0)) = ANY(:keys))
    """), {"province": meta.province_code, "years": years, "keys": keys}).rowcount
    return {"inserted": ins, "updated": upd, "unchanged": len(rows) - ins - upd,
            "removed": removed}


def default_rules_needed(conn: Connection, table_id: int) -> bool:
    return not conn.execute(text("SELECT EXISTS (SELECT 1 FROM valuation.adjustment_rule "
                                 "WHERE table_id = :t)"), {"t": table_id}).scalar()


CONTENT_HASH = """
SELECT md5(concat_ws('#',
  (SELECT concat_ws('|', province_code, effective_from, effective_to)
     FROM valuation.price_table WHERE table_id = :t),
  (SELECT string_agg(concat_ws('|', segment_key, road_name, from_desc, to_desc, road_class,
                               district_code, md5(ST_AsBinary(geom)), kind, commune_code,
                               width_min_m, width_max_m), '/' ORDER BY segment_key)
     FROM valuation.price_segment WHERE table_id = :t),
  (SELECT string_agg(x, '/' ORDER BY x) FROM (
      SELECT concat_ws('|', r.land_type, s.segment_key, r.area_class, r.position,
                       r.vnd_per_m2) AS x
        FROM valuation.price_rate r LEFT JOIN valuation.price_segment s USING (segment_id)
       WHERE r.table_id = :t) rates),
  (SELECT string_agg(commune_code || '|' || area_class, '/' ORDER BY commune_code)
     FROM valuation.price_area_class WHERE table_id = :t),
  (SELECT string_agg(concat_ws('|', zone_code, land_type, vnd_per_m2, standard_parcel_ref,
                               md5(ST_AsBinary(geom))), '/' ORDER BY zone_code)
     FROM valuation.price_zone WHERE table_id = :t),
  (SELECT string_agg(kind || '|' || parameters::text, '/' ORDER BY kind)
     FROM valuation.adjustment_rule WHERE table_id = :t)))
"""


def finish_table(conn: Connection, table_id: int, run_id: int) -> tuple[int, bool]:
    """Recompute the content hash; a change bumps the version. Returns (version, changed)."""
    digest = conn.execute(text(CONTENT_HASH), {"t": table_id}).scalar_one()
    row = conn.execute(text("""
        UPDATE valuation.price_table
           SET version = CASE WHEN content_hash IS NULL THEN version ELSE version + 1 END,
               content_hash = :h, load_run_id = :run, updated_at = now()
         WHERE table_id = :t AND content_hash IS DISTINCT FROM :h
        RETURNING version
    """), {"t": table_id, "h": digest, "run": run_id}).scalar()
    if row is not None:
        return row, True
    return conn.execute(text("SELECT version FROM valuation.price_table WHERE table_id = :t"),
                        {"t": table_id}).scalar_one(), False
