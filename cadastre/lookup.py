"""Parcel look-ups the land officers ask for, on the published (public) views.

A parcel is named by commune + map sheet + parcel number. Since the 2025 reform an officer
may give either number: the pre-2025 commune and its sheet (what the parcel was surveyed
under), or the 2025 commune and the sheet it was renumbered to (``publish.sheet_crosswalk``,
loaded by ``lis load sheet-crosswalk``). Some new communes reuse an old code, so one
number can name two parcels; every match is returned, each saying how it matched, and the
caller decides (the HTTP route answers 300 with the candidates). Only when neither number
matches, a 2025 commune with a sheet not yet renumbered (its old number) is tried: it is
one parcel where the new commune took one old commune's sheet of that number.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from cadastre.layers import PARCELS
from landplatform.publish.provider import PostGISProvider

MATCHED_BY = {
    "number": "the pre-2025 commune, sheet and parcel number",
    "new_sheet": "the 2025 commune and its renumbered sheet (sheet crosswalk)",
    "new_commune": "the 2025 commune and the parcel's sheet number not yet renumbered",
}
CANDIDATES = """
SELECT p.id, 'number' AS matched_by FROM publish.parcels p
 WHERE p.commune_code = :c AND p.sheet_no = :s AND p.parcel_no = :n
UNION ALL
SELECT p.id, 'new_sheet' FROM publish.sheet_crosswalk x
  JOIN publish.parcels p ON p.commune_code = x.old_commune_code
                        AND p.sheet_no = x.old_sheet_no AND p.parcel_no = :n
 WHERE x.new_commune_code = :c AND x.new_sheet_no = :s
"""
# Only when CANDIDATES finds none: the 2025 commune with an old sheet number that was not
# renumbered (no crosswalk row for that old sheet).
BY_CURRENT_COMMUNE = """
SELECT p.id, 'new_commune' AS matched_by FROM publish.parcels p
 WHERE p.current_commune_code = :c AND p.sheet_no = :s AND p.parcel_no = :n
   AND NOT EXISTS (SELECT 1 FROM publish.sheet_crosswalk x
                    WHERE x.old_commune_code = p.commune_code
                      AND x.old_sheet_no = p.sheet_no)
 ORDER BY p.id LIMIT 20
"""
# The renumbered sheet of a parcel's old sheet, where the crosswalk has one.
NEW_NUMBER = """
SELECT new_commune_code, new_sheet_no FROM publish.sheet_crosswalk
 WHERE old_commune_code = :c AND old_sheet_no = :s
"""


# The same two numberings over every version (current and retired parcels: a history
# and a lineage are asked of retired parcels too). One row per parcel: its current
# version, else its latest; by its own number first where it matches both ways.
VERSION_HITS = """
SELECT v.id, v.district_code, v.parcel_ref, v.status, v.commune_code, v.sheet_no,
       v.parcel_no, v.valid_to, 'number' AS matched_by
  FROM publish.parcel_versions v
 WHERE v.commune_code = :c AND v.sheet_no = :s AND v.parcel_no = :n
UNION ALL
SELECT v.id, v.district_code, v.parcel_ref, v.status, v.commune_code, v.sheet_no,
       v.parcel_no, v.valid_to, 'new_sheet'
  FROM publish.sheet_crosswalk x
  JOIN publish.parcel_versions v ON v.commune_code = x.old_commune_code
                                AND v.sheet_no = x.old_sheet_no AND v.parcel_no = :n
 WHERE x.new_commune_code = :c AND x.new_sheet_no = :s
"""
VERSION_BY_CURRENT_COMMUNE = """
SELECT v.id, v.district_code, v.parcel_ref, v.status, v.commune_code, v.sheet_no,
       v.parcel_no, v.valid_to, 'new_commune' AS matched_by
  FROM publish.parcel_versions v
 WHERE v.current_commune_code = :c AND v.sheet_no = :s AND v.parcel_no = :n
   AND NOT EXISTS (SELECT 1 FROM publish.sheet_crosswalk x
                    WHERE x.old_commune_code = v.commune_code
                      AND x.old_sheet_no = v.sheet_no)
"""
ONE_PER_PARCEL = """
SELECT id, district_code, parcel_ref, status, commune_code, sheet_no, parcel_no, matched_by
  FROM (SELECT DISTINCT ON (id) * FROM ({hits}) h
         WHERE CAST(:by AS text) IS NULL OR matched_by = :by
         ORDER BY id, matched_by = 'number' DESC, status = 'current' DESC,
                  valid_to DESC NULLS FIRST) one
 ORDER BY matched_by = 'number' DESC, parcel_ref LIMIT 20
"""


def _provider() -> PostGISProvider:
    return PostGISProvider({"name": "lookup", "type": "feature",
                            "data": PARCELS.to_config()})


def find_parcels(engine: Engine, commune_code: str, sheet_no: int, parcel_no: int
                 ) -> list[dict]:
    """The current parcels this number names (by either numbering), each a GeoJSON
    Feature with ``matched_by`` and, where its sheet was renumbered, ``new_number``."""
    params = {"c": commune_code, "s": sheet_no, "n": parcel_no}
    with engine.connect() as conn:
        rows = conn.execute(text(CANDIDATES), params).all()
        if not rows:
            rows = conn.execute(text(BY_CURRENT_COMMUNE), params).all()
        provider, found, seen = _provider(), [], set()
        for uid, matched_by in rows:
            if uid in seen:  # a sheet renumbered to its own number matches twice
                continue
            seen.add(uid)
            feature = provider.get(uid)
            props = feature["properties"]
            renumbered = conn.execute(text(NEW_NUMBER), {
                "c": props["commune_code"], "s": props["sheet_no"]}).first()
            feature["matched_by"] = matched_by
            feature["new_number"] = None if renumbered is None else {
                "commune_code": renumbered[0], "sheet_no": renumbered[1],
                "parcel_no": props["parcel_no"]}
            found.append(feature)
    return found


def find_parcel(commune_code: str, sheet_no: int, parcel_no: int) -> dict | None:
    """The current parcel with this pre-2025 commune + sheet + parcel number, or None."""
    result = _provider().query(limit=1, properties=[("commune_code", commune_code),
                                                    ("sheet_no", str(sheet_no)),
                                                    ("parcel_no", str(parcel_no))])
    return result["features"][0] if result["features"] else None


def find_versions(conn: Connection, commune_code: str, sheet_no: int, parcel_no: int,
                  by: str | None = None) -> list[dict]:
    """The parcels, current or retired, this number names by either numbering, as
    ``find_parcels`` answers for current ones (the 2025 commune with a sheet not yet
    renumbered only when neither number matches): ``id``, ``district_code``,
    ``parcel_ref``, ``status``, ``matched_by``. ``by``: one way of matching only (a
    candidate's link names it, so following it cannot be ambiguous again)."""
    params = {"c": commune_code, "s": sheet_no, "n": parcel_no, "by": by}
    rows = conn.execute(text(ONE_PER_PARCEL.format(hits=VERSION_HITS)), params).mappings()
    found = [dict(r) for r in rows]
    if not found and by in (None, "new_commune"):
        found = [dict(r) for r in conn.execute(text(ONE_PER_PARCEL.format(
            hits=VERSION_BY_CURRENT_COMMUNE)), params).mappings()]
    return found
