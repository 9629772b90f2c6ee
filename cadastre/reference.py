"""The facts a loader validates against, read once per load from the database.

Communes and their districts, the land-use code list with its 2018->2024 replacements,
district extents and each province's TM-3 CRS all live in the database (migrations put
them there), so validation never hard-codes a code list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Commune:
    district_code: str
    province_code: str
    current_province_code: str | None
    current_commune_code: str | None
    kind: str = "commune"  # ward (phường) | town (thị trấn) | commune (xã)


def commune_kind(name: str) -> str:
    """The unit's type from its official name: urban ward, town, or rural commune."""
    if name.startswith("Phường"):
        return "ward"
    if name.startswith("Thị trấn"):
        return "town"
    return "commune"


@dataclass(frozen=True)
class Reference:
    communes: dict[str, Commune]
    land_use: dict[str, str | None]  # code -> replacement code (None: current code)
    district_extents: dict[str, tuple[float, float, float, float]]
    province_epsg: dict[str, int]
    # (commune, sheet) -> scale denominator, as earlier deliveries recorded it
    sheet_scales: dict[tuple[str, int], int] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: Connection) -> Reference:
        communes = {
            row.code: Commune(row.district_code, row.province_code, row.cur_province,
                              row.cur_commune, commune_kind(row.name))
            for row in conn.execute(text("""
                SELECT c.code, c.name, d.code AS district_code, d.parent_code AS province_code,
                       x.cur_province, x.cur_commune
                  FROM admin.admin_unit c
                  JOIN admin.admin_unit d
                    ON d.level = 'district' AND d.code = c.parent_code
                   AND d.valid_to = c.valid_to
                  LEFT JOIN LATERAL (
                        SELECT min(m.new_province_code) AS cur_province,
                               CASE WHEN count(*) = 1 AND bool_and(m.overlap = 'full')
                                    THEN min(m.new_code) END AS cur_commune
                          FROM admin.admin_unit_map m WHERE m.old_code = c.code) x ON true
                 WHERE c.level = 'commune' AND c.valid_to = DATE '2025-06-30'
            """))
        }
        land_use = {
            row.code: row.replaced_by
            for row in conn.execute(text(
                "SELECT code, replaced_by FROM cadastre.land_use_type "
                "WHERE group_code IS DISTINCT FROM code"))
        }
        extents = {
            row.code: (row.xmin, row.ymin, row.xmax, row.ymax)
            for row in conn.execute(text("""
                SELECT code, ST_XMin(geom) AS xmin, ST_YMin(geom) AS ymin,
                       ST_XMax(geom) AS xmax, ST_YMax(geom) AS ymax
                  FROM admin.admin_unit
                 WHERE level = 'district' AND geom IS NOT NULL
            """))
        }
        epsg = dict(conn.execute(text(
            "SELECT province_code, epsg FROM admin.province_crs")).all())
        scales = {(row.commune_code, row.sheet_no): row.scale for row in conn.execute(text(
            "SELECT commune_code, sheet_no, scale FROM cadastre.map_sheet "
            "WHERE scale IS NOT NULL"))}
        return cls(communes, land_use, extents, epsg, scales)
