"""Valuation runs: price every parcel of a district by the table valid on a date, store it.

A run is one transaction: pick the price table of the district's province valid on the
date, run the valuation statement (``valuation.sql.COMPUTE``, set-based) straight into
``valuation.parcel_value``, roll the parts up into ``parcel_total``, record the run and make
it the district's latest. Runs are versioned: every run gets a new ``run_id`` and records the
table version and content hash it used and an ``inputs_hash`` over everything that decides
its values (table content, K, parcels and their parts, site facts, the land-type map and
the engine's own SQL), so identical inputs give identical values, and ``lis up``
(``valuate(..., if_changed=True)``) can skip districts whose latest run is still current.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from time import monotonic

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from valuation.sql import COMPUTE, OUTPUT_COLUMNS

ENGINE_VERSION = "valuation-sql/" + hashlib.md5(COMPUTE.encode()).hexdigest()[:12]


class ValuationError(Exception):
    """A district cannot be valued (no parcels, no table for the date): nothing stored."""


# The first day of the communes of 1 July 2025: a table in force from then names them.
REFORM = date(2025, 7, 1)


@dataclass(frozen=True)
class PriceTable:
    table_id: int
    table_code: str
    province_code: str
    version: int
    content_hash: str
    effective_from: date | None = None

    @property
    def units_2025(self) -> bool:
        """Whether the table names the communes since the reform (its commune rows, area
        classes and K are matched to a parcel's 2025 commune, else to the commune it was
        surveyed under: the codes of the two periods overlap)."""
        return self.effective_from is not None and self.effective_from >= REFORM


@dataclass
class RunSummary:
    district_code: str
    on_date: date
    table_code: str
    table_version: int
    run_id: int | None = None
    skipped: bool = False
    parcels_total: int = 0
    parcels_valued: int = 0
    parts_total: int = 0
    parts_valued: int = 0
    total_value: Decimal = Decimal(0)
    unpriced: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    inputs_hash: str = ""

    def lines(self, limit: int = 8) -> list[str]:
        if self.skipped:
            return [f"District {self.district_code}: latest run {self.run_id} is current "
                    f"(table {self.table_code} v{self.table_version}, same inputs): skipped"]
        out = [f"District {self.district_code}: run {self.run_id}, table {self.table_code} "
               f"v{self.table_version} on {self.on_date:%Y-%m-%d}: {self.parcels_valued:,} of "
               f"{self.parcels_total:,} parcels valued ({self.parts_valued:,} of "
               f"{self.parts_total:,} land-use parts), total {self.total_value:,.0f} VND "
               f"in {self.seconds:.1f} s"]
        if self.unpriced:
            out.append(f"  parts without price ({sum(self.unpriced.values()):,}), by reason:")
            ranked = sorted(self.unpriced.items(), key=lambda kv: (-kv[1], kv[0]))
            out += [f"    {n:>6,}  {reason}" for reason, n in ranked[:limit]]
            if len(ranked) > limit:
                rest = sum(n for _, n in ranked[limit:])
                out.append(f"    {rest:>6,}  ... {len(ranked) - limit} more reasons")
        return out


Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def district_facts(conn: Connection, district: str) -> tuple[list[str], int]:
    """(province codes of the district's parcels, pre-2025 and 2025; TM-3 EPSG)."""
    row = conn.execute(text("""
        SELECT d.tm3_epsg,
               (SELECT array_agg(DISTINCT x) FROM publish.parcels p
                  CROSS JOIN LATERAL (VALUES (p.province_code), (p.current_province_code)) v(x)
                 WHERE p.district_code = :d AND x IS NOT NULL) AS provinces
          FROM publish.districts d WHERE d.district_code = :d
    """), {"d": district}).one_or_none()
    if row is None or not row.provinces:
        raise ValuationError(f"district {district} has no parcels")
    if row.tm3_epsg is None:
        raise ValuationError(f"district {district}: its province has no TM-3 CRS")
    return list(row.provinces), int(row.tm3_epsg)


def table_for(conn: Connection, provinces: list[str], on_date: date) -> PriceTable | None:
    """The province's table valid on the date (the most recent one if several)."""
    row = conn.execute(text("""
        SELECT table_id, table_code, province_code, version, content_hash, effective_from
          FROM publish.valuation_tables
         WHERE province_code = ANY(:p) AND effective_from <= :d
           AND (effective_to IS NULL OR effective_to >= :d)
         ORDER BY effective_from DESC, table_id DESC LIMIT 1
    """), {"p": provinces, "d": on_date}).one_or_none()
    return PriceTable(*row) if row else None


def default_date(conn: Connection, provinces: list[str], today: date) -> date:
    """Today when a table covers it; otherwise the start of the latest table before today
    (or of the first one): what ``lis up`` values by when no date is given."""
    return conn.execute(text("""
        SELECT CASE WHEN bool_or(effective_from <= :t
                                 AND (effective_to IS NULL OR effective_to >= :t)) THEN :t
                    ELSE coalesce(max(effective_from) FILTER (WHERE effective_from <= :t),
                                  min(effective_from)) END
          FROM publish.valuation_tables WHERE province_code = ANY(:p)
    """), {"p": provinces, "t": today}).scalar() or today


def inputs_hash(conn: Connection, district: str, table: PriceTable, year: int) -> str:
    """md5 over everything that decides a run's values."""
    return conn.execute(text("""
        SELECT md5(concat_ws('#', CAST(:engine AS text), CAST(:table_hash AS text),
            CAST(:year AS text),
            (SELECT string_agg(concat_ws('|', year, land_type, district_code, commune_code,
                                         position, k), '/'
                               ORDER BY year, land_type, district_code, commune_code, position)
               FROM publish.valuation_coefficients
              WHERE province_code = :province AND year = :year),
            (SELECT md5(string_agg(concat_ws('|', id, commune_code, current_commune_code,
                                             area_m2, md5(ST_AsBinary(geom))), '/' ORDER BY id))
               FROM publish.parcels WHERE district_code = :d),
            (SELECT md5(string_agg(concat_ws('|', parcel_uid, seq, land_use_code, area_m2,
                                             is_primary), '/' ORDER BY parcel_uid, seq))
               FROM publish.valuation_parcel_parts WHERE district_code = :d),
            (SELECT string_agg(concat_ws('|', parcel_uid, height_diff_m, alley_width_m), '/'
                               ORDER BY parcel_uid)
               FROM publish.valuation_sites WHERE district_code = :d),
            (SELECT string_agg(land_use_code || '|' || land_type || '|'
                               || coalesce(area_fallback, ''), '/' ORDER BY land_use_code)
               FROM publish.valuation_land_types)))
    """), {"engine": ENGINE_VERSION, "table_hash": table.content_hash, "year": year,
           "province": table.province_code, "d": district}).scalar_one()


# Tables the valuation statement's plan depends on: without statistics (a district loaded
# a moment ago, before autovacuum) the planner takes every set for one row and nests loops
# over thousands; a run analyses them first when they are new or much changed.
PLANNED_TABLES = ("cadastre.parcel", "cadastre.parcel_land_use", "valuation.price_rate",
                  "valuation.price_segment", "valuation.price_area_class")


def refresh_statistics(conn: Connection) -> list[str]:
    stale = list(conn.execute(text("""
        SELECT s.schemaname || '.' || s.relname
          FROM pg_stat_user_tables s
         WHERE s.schemaname || '.' || s.relname = ANY(:tables)
           AND (coalesce(s.last_analyze, s.last_autoanalyze) IS NULL
                OR s.n_mod_since_analyze > greatest(50, s.n_live_tup / 5))
    """), {"tables": list(PLANNED_TABLES)}).scalars())
    for table in stale:
        # as the tables' owner: the application role owns none (landplatform.roles)
        conn.execute(text("SELECT public.lis_analyze(CAST(:t AS regclass))"), {"t": table})
    return stale


def no_jit(conn: Connection) -> None:
    """JIT off for this transaction: PostGIS functions carry high cost estimates, so
    PostgreSQL would spend seconds compiling a statement that runs in one."""
    conn.execute(text("SET LOCAL jit = off"))


def compute_params(district: str, table: PriceTable, epsg: int, on_date: date,
                   parcel: int | None = None) -> dict:
    return {"district": district, "table_id": table.table_id, "province": table.province_code,
            "epsg": epsg, "year": on_date.year, "parcel": parcel,
            "units_2025": table.units_2025}


def latest_run(conn: Connection, district: str) -> tuple[int, str] | None:
    row = conn.execute(text("""
        SELECT run_id, inputs_hash FROM valuation.valuation_run
         WHERE district_code = :d AND is_latest
    """), {"d": district}).one_or_none()
    return (row.run_id, row.inputs_hash) if row else None


def valuate(engine: Engine, district_code: str, on_date: date, *,
            progress: Progress = _quiet, if_changed: bool = False) -> RunSummary:
    """Value every current parcel of the district by the table valid on ``on_date``.

    One transaction under an advisory lock on the district. With ``if_changed`` a run whose
    inputs equal the latest run's is not repeated (the summary says ``skipped``).
    Raises ValuationError when the district has no parcels or no table for the date.
    """
    started = monotonic()
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('lis.valuation.' || :d))"),
                     {"d": district_code})
        no_jit(conn)
        provinces, epsg = district_facts(conn, district_code)
        table = table_for(conn, provinces, on_date)
        if table is None:
            raise ValuationError(f"district {district_code}: no price table of province "
                                 f"{'/'.join(sorted(provinces))} is valid on {on_date}")
        digest = inputs_hash(conn, district_code, table, on_date.year)
        summary = RunSummary(district_code, on_date, table.table_code, table.version,
                             inputs_hash=digest)
        latest = latest_run(conn, district_code)
        if if_changed and latest and latest[1] == digest:
            summary.run_id, summary.skipped = latest[0], True
            return summary
        progress(f"district {district_code}: table {table.table_code} v{table.version} "
                 f"({on_date}), TM-3 EPSG:{epsg}")
        analysed = refresh_statistics(conn)
        if analysed:
            progress(f"statistics refreshed: {', '.join(analysed)}")
        rules = dict(conn.execute(text("SELECT kind, parameters FROM publish.valuation_rules "
                                       "WHERE table_id = :t"), {"t": table.table_id}).all())
        run_id = conn.execute(text("""
            INSERT INTO valuation.valuation_run (district_code, on_date, table_id, table_code,
                   table_version, table_hash, engine_version, inputs_hash, status, parameters,
                   run_by)
            VALUES (:d, :on, :t, :code, :v, :h, :e, :i, 'running',
                    jsonb_build_object('epsg', CAST(:epsg AS int), 'rules', CAST(:rules AS jsonb)),
                    current_user)
            RETURNING run_id
        """), {"d": district_code, "on": on_date, "t": table.table_id, "code": table.table_code,
               "v": table.version, "h": table.content_hash, "e": ENGINE_VERSION, "i": digest,
               "epsg": epsg, "rules": _json(rules)}).scalar_one()
        summary.run_id = run_id
        progress(f"run {run_id}: pricing every land-use part (one SQL statement)")
        cols = ", ".join(OUTPUT_COLUMNS)
        conn.execute(text(f"""
            INSERT INTO valuation.parcel_value (district_code, run_id, {cols})
            SELECT CAST(:district AS text), CAST(:run AS bigint), {cols}
              FROM ({COMPUTE}) v
        """), {**compute_params(district_code, table, epsg, on_date), "run": run_id})
        progress(f"run {run_id}: parcel totals")
        conn.execute(text("""
            INSERT INTO valuation.parcel_total (district_code, run_id, parcel_uid, land_type,
                   basis, road_name, position, area_class, unit_price, value, parts_total,
                   parts_valued, explanation, reason_code)
            SELECT v.district_code, v.run_id, v.parcel_uid,
                   (array_agg(v.land_type ORDER BY v.seq))[1],
                   (array_agg(v.basis ORDER BY v.seq))[1],
                   (array_agg(v.explanation->'segment'->>'road' ORDER BY v.seq))[1],
                   (array_agg(v.position ORDER BY v.seq))[1],
                   (array_agg(v.area_class ORDER BY v.seq))[1],
                   (array_agg(v.unit_price ORDER BY v.seq))[1],
                   sum(v.value), count(*), count(v.value),
                   jsonb_agg(v.explanation ORDER BY v.seq),
                   (array_agg(v.reason_code ORDER BY v.seq)
                      FILTER (WHERE v.reason_code IS NOT NULL))[1]
              FROM valuation.parcel_value v
             WHERE v.district_code = :d AND v.run_id = :run
             GROUP BY v.district_code, v.run_id, v.parcel_uid
        """), {"d": district_code, "run": run_id})
        stats = conn.execute(text("""
            SELECT count(*) AS parcels, count(*) FILTER (WHERE value IS NOT NULL) AS valued,
                   coalesce(sum(parts_total), 0) AS parts,
                   coalesce(sum(parts_valued), 0) AS parts_valued,
                   coalesce(sum(value), 0) AS total
              FROM valuation.parcel_total WHERE district_code = :d AND run_id = :run
        """), {"d": district_code, "run": run_id}).one()
        unpriced = dict(conn.execute(text("""
            SELECT explanation->>'reason', count(*) FROM valuation.parcel_value
             WHERE district_code = :d AND run_id = :run AND value IS NULL
             GROUP BY 1
        """), {"d": district_code, "run": run_id}).all())
        conn.execute(text("UPDATE valuation.valuation_run SET is_latest = false "
                          "WHERE district_code = :d AND is_latest"), {"d": district_code})
        conn.execute(text("""
            UPDATE valuation.valuation_run
               SET status = 'finished', is_latest = true, finished_at = clock_timestamp(),
                   parcels_total = :p, parcels_valued = :pv, parts_total = :n,
                   parts_valued = :nv, total_value = :total, unpriced = CAST(:unpriced AS jsonb)
             WHERE run_id = :run
        """), {"p": stats.parcels, "pv": stats.valued, "n": stats.parts,
               "nv": stats.parts_valued, "total": stats.total, "unpriced": _json(unpriced),
               "run": run_id})
    summary.parcels_total, summary.parcels_valued = stats.parcels, stats.valued
    summary.parts_total, summary.parts_valued = int(stats.parts), int(stats.parts_valued)
    summary.total_value = Decimal(stats.total)
    summary.unpriced = {k or "unknown": v for k, v in unpriced.items()}
    summary.seconds = monotonic() - started
    return summary


def _json(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


def valued_districts(engine: Engine) -> list[str]:
    """Districts that have parcels (publish.districts), in code order."""
    with engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT district_code FROM publish.districts ORDER BY district_code")).scalars())
