"""Planning's rule for the cadastre's changes of land-use purpose (chuyển mục đích): the
new use must agree with the approved plan over the parcel.

Contributed to the cadastre's extension point ``CHANGE_OF_USE_RULES`` (cadastre/extensions.py)
through planning's ``Domain.extensions``; the cadastre does not import planning.

The plan consulted is the most detailed one of the parcel's district in force in the
change's year (detailed 1/500, then zoning 1/2000, then the annual land-use plan, then the
period plan) that has zones over the parcel. The new use agrees when the zones planning
that use, or a use of the same parent category (ODT and ONT are both residential, OTC),
cover at least ``AGREE_SHARE`` of the parcel. No plan over the parcel: nothing to disagree
with, and the finding says so.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from cadastre.extensions import Finding, UseChange

AGREE_SHARE = 0.5
DETAIL = ("detailed_1_500", "zoning_1_2000", "land_use_annual", "land_use_period")

ZONES = """
WITH parcel AS (
    SELECT p.geom, ST_Transform(p.geom, d.tm3_epsg) AS g
      FROM publish.parcels p JOIN publish.districts d USING (district_code)
     WHERE p.id = :uid AND p.district_code = :d),
groups AS (SELECT code, coalesce(parent_code, code) AS grp FROM cadastre.land_use_type)
SELECT pl.plan_code, pl.plan_type, pl.decision_no, z.zone_code, z.planned_use,
       ST_Area(ST_Intersection(ST_Transform(z.geom, ST_SRID(p.g)), p.g))
           / nullif(ST_Area(p.g), 0) AS share,
       (z.planned_use = :new OR gz.grp = gn.grp) AS agrees
  FROM planning.plan pl
  JOIN planning.zone z ON z.plan_id = pl.plan_id AND z.district_code = :d
  CROSS JOIN parcel p
  LEFT JOIN groups gz ON gz.code = z.planned_use
  LEFT JOIN groups gn ON gn.code = :new
 WHERE pl.district_code = :d
   AND (pl.period_from IS NULL OR pl.period_from <= :year)
   AND (pl.period_to IS NULL OR pl.period_to >= :year)
   AND ST_Intersects(z.geom, p.geom)
"""


def plan_agrees(conn: Connection, change: UseChange) -> list[Finding]:
    """One finding: the plan consulted and the shares it plans; a refusal if the new use
    disagrees with it."""
    rows = conn.execute(text(ZONES), {"uid": change.parcel_uid, "d": change.district_code,
                                      "new": change.new_use,
                                      "year": change.on_date.year}).mappings().all()
    rows = [r for r in rows if r["share"] and r["share"] > 0.001]
    if not rows:
        return [Finding("planning", "approved_plan", None,
                        {"plan": None, "note": "no approved plan in force has zones over "
                                               "the parcel"})]
    plan_type = min((r["plan_type"] for r in rows), key=DETAIL.index)
    zones = [r for r in rows if r["plan_type"] == plan_type]
    plan = sorted({r["plan_code"] for r in zones})[0]
    zones = [r for r in zones if r["plan_code"] == plan]
    agreeing = sum(r["share"] for r in zones if r["agrees"])
    planned = sorted(({"zone": r["zone_code"], "planned_use": r["planned_use"],
                       "share": round(float(r["share"]), 3)} for r in zones),
                     key=lambda z: -z["share"])
    detail = {"plan": plan, "decision": zones[0]["decision_no"], "zones": planned,
              "agreeing_share": round(float(agreeing), 3)}
    if agreeing >= AGREE_SHARE:
        return [Finding(f"planning: {plan}", "approved_plan", None, detail)]
    uses = ", ".join(f"{z['planned_use']} ({z['share']:.0%}, zone {z['zone']})"
                     for z in planned)
    return [Finding(f"planning: {plan}", "approved_plan",
                    f"the approved plan {plan} ({zones[0]['decision_no'] or 'no decision no.'})"
                    f" plans {uses} over the parcel: {change.new_use} covers "
                    f"{agreeing:.0%} of it, at least {AGREE_SHARE:.0%} is needed", detail)]
