"""The cadastre's HTTP routes: the parcel look-up by number, Part 4 writes and restricted
reads, and officers' file loads; built from the platform's services (``Domain.routers``)."""

from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from cadastre.dossier_routes import dossiers_router
from cadastre.dossiers import DossierService
from cadastre.layers import PARCELS
from cadastre.lookup import MATCHED_BY, find_parcels, find_versions
from cadastre.search import search_router
from cadastre.uploads import LoadService, loads_router
from cadastre.writes import WriteService, writes_router
from landplatform.domain import Services

# The numbers a land officer gives: a 5-digit commune code, sheet and parcel numbers that
# fit the database's integers (a longer one is a 422, not an overflow in PostgreSQL).
NUMBER = {"commune_code": Path(pattern=r"^\d{5}$"), "sheet_no": Path(gt=0, lt=2**31),
          "parcel_no": Path(gt=0, lt=2**31)}


def lookup_router(base_url: str, engine: Engine) -> APIRouter:
    router = APIRouter()

    def links(feature: dict) -> list[dict]:
        district = feature["properties"]["district_code"]
        return [
            {"rel": "self", "type": "application/geo+json",
             "href": f"{base_url}/collections/{PARCELS.key}/items/{feature['id']}"},
            {"rel": "collection", "type": "application/json",
             "href": f"{base_url}/collections/{PARCELS.key}-{district}"},
        ]

    @router.get("/cadastre/parcels/{commune_code}/{sheet_no}/{parcel_no}", tags=["cadastre"],
                responses={300: {"description": "the number names several parcels (a new "
                                                "commune reusing an old code): the "
                                                "candidates"},
                           404: {"description": "no current parcel by either number"}})
    def parcel_by_number(commune_code: str = NUMBER["commune_code"],
                         sheet_no: int = NUMBER["sheet_no"],
                         parcel_no: int = NUMBER["parcel_no"]) -> dict:
        """A parcel by commune code + map sheet number + parcel number, as GeoJSON: the
        pre-2025 commune and sheet, or the 2025 commune and its renumbered sheet. The
        feature says how it matched (``matched_by``) and its renumbered sheet
        (``new_number``) where the sheet crosswalk has one."""
        found = find_parcels(engine, commune_code, sheet_no, parcel_no)
        if not found:
            raise HTTPException(404, f"no current parcel {sheet_no}/{parcel_no} in commune "
                                     f"{commune_code}, by its pre-2025 or its 2025 number")
        for feature in found:
            feature["links"] = links(feature)
        if len(found) == 1:
            return found[0]
        return JSONResponse(status_code=300, content={
            "description": f"{sheet_no}/{parcel_no} in commune {commune_code} names "
                           f"{len(found)} parcels; choose one",
            "candidates": [{"id": f["id"], "parcel_ref": f["properties"]["parcel_ref"],
                            "matched_by": f["matched_by"],
                            "how": MATCHED_BY[f["matched_by"]], "links": f["links"]}
                           for f in found]})

    return router


VERSIONS = """
    SELECT json_build_object(
             'type', 'Feature', 'id', v.id || '@' || to_char(v.valid_from AT TIME ZONE 'UTC',
                                                             'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             'geometry', ST_AsGeoJSON(v.geom, 8)::json,
             'properties', json_build_object(
                'parcel_id', v.id, 'parcel_ref', v.parcel_ref, 'status', v.status,
                'valid_from', v.valid_from, 'valid_to', v.valid_to, 'area_m2', v.area_m2,
                'legal_area_m2', v.legal_area_m2, 'land_use', v.land_use,
                'address', v.address, 'load_run_id', v.load_run_id,
                'made_by', v.run_kind, 'delivery', v.delivery,
                'ended_by_run', v.ended_by_run))
      FROM publish.parcel_versions v
     WHERE v.id = :uid AND v.district_code = :d
     ORDER BY v.valid_from, v.valid_to NULLS LAST
"""
# Ancestors (up the parent links) and descendants (down), every generation, with how
# each link was made. Bounded: a parcel's family is small, but a cycle must not loop.
LINEAGE = """
    WITH RECURSIVE up AS (
        SELECT l.*, 1 AS depth, ARRAY[l.child_uid, l.parent_uid] AS path
          FROM publish.parcel_lineage l
         WHERE l.child_district_code = :d AND l.child_uid = :uid
        UNION ALL
        SELECT l.*, up.depth + 1, up.path || l.parent_uid
          FROM publish.parcel_lineage l JOIN up
            ON l.child_district_code = up.parent_district_code
           AND l.child_uid = up.parent_uid
         WHERE NOT l.parent_uid = ANY(up.path) AND up.depth < 50),
    down AS (
        SELECT l.*, 1 AS depth, ARRAY[l.parent_uid, l.child_uid] AS path
          FROM publish.parcel_lineage l
         WHERE l.parent_district_code = :d AND l.parent_uid = :uid
        UNION ALL
        SELECT l.*, down.depth + 1, down.path || l.child_uid
          FROM publish.parcel_lineage l JOIN down
            ON l.parent_district_code = down.child_district_code
           AND l.parent_uid = down.child_uid
         WHERE NOT l.child_uid = ANY(down.path) AND down.depth < 50)
    SELECT 'ancestor' AS side, depth, kind, shared_area_m2, occurred_at, parent_uid,
           parent_ref, child_uid, child_ref, load_run_id, run_kind, delivery FROM up
    UNION ALL
    SELECT 'descendant', depth, kind, shared_area_m2, occurred_at, parent_uid, parent_ref,
           child_uid, child_ref, load_run_id, run_kind, delivery FROM down
    ORDER BY side, depth, occurred_at, parent_ref, child_ref
"""
BY = Query(None, pattern=f"^({'|'.join(MATCHED_BY)})$",
           description="match the number one way only: " + "; ".join(
               f"{k}: {v}" for k, v in MATCHED_BY.items()))


AMBIGUOUS = {300: {"description": "the number names several parcels (a new commune "
                                  "reusing an old code): the candidates, each linked by "
                                  "its own number"},
             404: {"description": "no parcel, current or retired, by either number"}}


class Ambiguous(Exception):
    """The number names several parcels (a new commune reusing an old code): 300."""

    def __init__(self, body: dict) -> None:
        super().__init__(body["description"])
        self.body = body


def memory_router(engine: Engine, base_url: str = "") -> APIRouter:
    """A parcel's history (every version) and lineage (parents and children), by its
    pre-2025 number or its 2025 one, as the parcel look-up answers (``cadastre.lookup``;
    300 with the candidates when the number names several parcels): public, from
    ``publish.*`` (no owner, no officer)."""
    router = APIRouter()

    def parcel(conn: Connection, commune: str, sheet: int, number: int, by: str | None,
               what: str) -> dict:
        """The one parcel, current or retired, the number names; 404 or 300."""
        found = find_versions(conn, commune, sheet, number, by)
        if not found:
            raise HTTPException(404, f"no parcel {sheet}/{number} in commune {commune}, "
                                     "current or retired, by its pre-2025 or its 2025 "
                                     "number")
        if len(found) > 1:
            raise Ambiguous({
                "description": f"{sheet}/{number} in commune {commune} names "
                               f"{len(found)} parcels; choose one",
                "candidates": [{
                    "id": f["id"], "parcel_ref": f["parcel_ref"], "status": f["status"],
                    "matched_by": f["matched_by"], "how": MATCHED_BY[f["matched_by"]],
                    "links": [{"rel": "alternate", "type": "application/json",
                               "href": f"{base_url}/cadastre/parcels/{f['commune_code']}/"
                                       f"{f['sheet_no']}/{f['parcel_no']}/{what}"
                                       "?by=number"}]}
                    for f in found]})
        return found[0]

    def ambiguous(exc: Ambiguous) -> JSONResponse:
        return JSONResponse(status_code=300, content=exc.body)

    @router.get("/cadastre/parcels/{commune_code}/{sheet_no}/{parcel_no}/history",
                tags=["cadastre"], responses=AMBIGUOUS)
    def history(commune_code: str = NUMBER["commune_code"],
                sheet_no: int = NUMBER["sheet_no"], parcel_no: int = NUMBER["parcel_no"],
                by: str | None = BY) -> Response:
        """Every version of the parcel, oldest first, with its validity and the load or
        write that made it (a GeoJSON FeatureCollection); by either number."""
        with engine.connect() as conn:
            try:
                found = parcel(conn, commune_code, sheet_no, parcel_no, by, "history")
            except Ambiguous as exc:
                return ambiguous(exc)
            versions = conn.execute(text(VERSIONS), {"uid": found["id"],
                                                     "d": found["district_code"]}).scalars()
            body = {"type": "FeatureCollection", "parcel_id": found["id"],
                    "parcel_ref": found["parcel_ref"], "status": found["status"],
                    "matched_by": found["matched_by"], "features": list(versions)}
        return Response(json.dumps(body, default=str), media_type="application/geo+json")

    @router.get("/cadastre/parcels/{commune_code}/{sheet_no}/{parcel_no}/lineage",
                tags=["cadastre"], responses=AMBIGUOUS)
    def lineage(commune_code: str = NUMBER["commune_code"],
                sheet_no: int = NUMBER["sheet_no"], parcel_no: int = NUMBER["parcel_no"],
                by: str | None = BY) -> dict:
        """The parcel's ancestors and descendants, every generation: the kind of each
        change (split, merge, renumber, resurvey), the area parent and child share, when
        and by which delivery; by either number."""
        with engine.connect() as conn:
            try:
                found = parcel(conn, commune_code, sheet_no, parcel_no, by, "lineage")
            except Ambiguous as exc:
                return ambiguous(exc)
            rows = conn.execute(text(LINEAGE), {"uid": found["id"],
                                                "d": found["district_code"]}).mappings().all()
        links = [{"depth": r["depth"], "kind": r["kind"],
                  "shared_area_m2": None if r["shared_area_m2"] is None
                  else float(r["shared_area_m2"]),
                  "occurred_at": r["occurred_at"].isoformat(),
                  "parent": {"id": r["parent_uid"], "parcel_ref": r["parent_ref"]},
                  "child": {"id": r["child_uid"], "parcel_ref": r["child_ref"]},
                  "load_run_id": r["load_run_id"], "made_by": r["run_kind"],
                  "delivery": r["delivery"], "side": r["side"]} for r in rows]
        return {"parcel_id": found["id"], "parcel_ref": found["parcel_ref"],
                "status": found["status"], "matched_by": found["matched_by"],
                "ancestors": [{k: v for k, v in x.items() if k != "side"}
                              for x in links if x["side"] == "ancestor"],
                "descendants": [{k: v for k, v in x.items() if k != "side"}
                                for x in links if x["side"] == "descendant"]}

    return router


def routers(services: Services) -> list[APIRouter]:
    settings = services.settings
    return [
        lookup_router(settings.base_url, services.public_engine),
        memory_router(services.public_engine, settings.base_url),
        # The map's search box: numbers, codes, names, addresses (public views).
        search_router(services.public_engine),
        # Writes (Features Part 4) and restricted reads: read/write engine, bearer tokens.
        writes_router(WriteService(services.engine, settings.base_url), services.verifier),
        # File loads by district officers (multipart upload, run through the loader).
        loads_router(LoadService(services.engine, settings), services.verifier),
        # Registered land changes: dossiers, with the other domains' contributed rules.
        dossiers_router(DossierService(services.engine, services.extensions),
                        services.verifier),
    ]
