"""OGC API Features Part 4 (create, replace, delete) on the per-district parcel collections,
and the restricted read of a parcel's rights: the cadastre's own write path.

Why through the loader's rules: an officer's edit is a delivery of one parcel. It is
validated by the loader's own rules (``prepare_parcels``: commune in the district, land-use
codes, geometry validity, stated vs computed area), located on the stage by the loader's
check (``location``: inside the district's and commune's boundaries, 422 outside) and
merged by the loader's set-based merge,
as a load run of kind ``api``, so the history, events, district counts and the audit row
are written in ONE transaction with the change, exactly as for a file.

Rights: the public may not write (401); a district officer writes only their own district
(403 otherwise, also for a feature whose commune lies in another district); a commune
officer (scoped by a 2025 commune) writes only parcels whose 2025 commune is theirs, as the
merge assigns it (``current_units``: by the 2025 boundary, else the crosswalk), before and
after the write (403 otherwise, rolled back); an administrator writes anywhere. Writes run
on the read/write engine; responses are built from ``publish.parcels`` only, so a write
response can never carry restricted data.
"""

# No ``from __future__ import annotations``: FastAPI must see the route closures' Annotated
# dependency as an object, not as a name it cannot resolve from the module globals.
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

import geopandas as gpd
import shapely.geometry
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from cadastre import MAPPINGS
from cadastre import merge as m
from cadastre.layers import PARCELS
from cadastre.loader import STAGED, overlap_issues
from cadastre.location import check_location, how_checked
from cadastre.reference import Reference
from cadastre.rules import Options, prepare_parcels
from etl import ledger
from etl.fieldmap import FieldMapping
from etl.geometry import WGS84
from etl.report import Issue, LoadError
from etl.values import parse_code
from landplatform.auth.principal import (
    Principal,
    forbidden,
    principal_dependency,
    require,
)
from landplatform.auth.tokens import TokenVerifier
from landplatform.http import client_request_id, request_id

GEOJSON = "application/geo+json"
DISTRICT_COLLECTION = re.compile(rf"^{re.escape(PARCELS.key)}-(\d{{3}})$")
MAX_BODY = 2 * 1024 * 1024
REFERENCE_TTL_S = 60.0
MAX_REASON = 500  # why a restricted read was made, as the reader says
# Writable properties -> the national delivery names, so the frame goes through the field
# mapping exactly like a delivered file does.
NATIONAL = {"commune_code": "MaXa", "sheet_no": "SoHieuToBanDo", "parcel_no": "SoThuTuThua",
            "area_m2": "DienTich", "land_use": "KyHieuMucDichSuDung",
            "legal_area_m2": "DienTichPhapLy", "address": "DiaChi", "scale": "TyLe",
            # where the parcel came from: its parents retire (a split, merge, renumbering)
            "old_commune_code": "MaXaCu", "old_sheet_no": "SoHieuToBanDoCu",
            "old_parcel_no": "SoThuTuThuaCu"}
KEY = ("commune_code", "sheet_no", "parcel_no")
# What GET returns but a write does not set (clients such as QGIS send them back).
READ_ONLY = {"id", "province_code", "district_code", "parcel_ref", "primary_land_use",
             "status", "current_province_code", "current_commune_code", "valid_from",
             "valid_to"}
PUBLIC_ROW = """
    SELECT to_jsonb(v) - 'geom' || jsonb_build_object('geometry', ST_AsGeoJSON(v.geom, 9)::jsonb)
      FROM publish.parcels v
     WHERE v.id = :uid AND v.district_code = :d
"""


@dataclass
class WriteError(Exception):
    status: int
    code: str
    description: str
    issues: list[Issue] = field(default_factory=list)

    def response(self, request_id: str) -> JSONResponse:
        body: dict = {"code": self.code, "description": self.description}
        if self.issues:
            body["issues"] = [{"feature": i.feature_no, "field": i.field, "reason": i.reason,
                               "value": i.value} for i in self.issues
                              if i.severity == "reject"]
        return JSONResponse(body, status_code=self.status, headers={"X-Request-ID": request_id})


@dataclass(frozen=True)
class Write:
    """One request: who, on which district collection, with what body."""

    principal: Principal
    collection: str
    district: str
    request_id: str  # the server's
    method: str
    path: str
    body: bytes
    if_match: str | None
    client_request_id: str | None = None  # the client's X-Request-ID, kept beside


def location_checked(issues: list[Issue]) -> dict[str, str]:
    """``X-Location-Checked``: what "inside the district" was decided by for this write
    (``boundary``; ``extent``: only the district's bounding box is known; ``none``), so a
    client is told when the answer is weaker than a boundary's."""
    return {"X-Location-Checked": how_checked(issues)}


def etag(row: dict | None) -> str | None:
    if row is None:
        return None
    return '"' + hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()[:32] + '"'


def as_feature(row: dict) -> dict:
    props = {k: v for k, v in row.items() if k not in ("id", "geometry")}
    return {"type": "Feature", "id": row["id"], "geometry": row["geometry"],
            "properties": props}


class WriteService:
    """Validates and applies parcel writes; one per application."""

    def __init__(self, engine: Engine, base_url: str) -> None:
        self.engine = engine
        self.base_url = base_url
        self.mapping = FieldMapping.load("parcels", MAPPINGS)
        self._ref: Reference | None = None
        self._districts: set[str] = set()
        self._ref_at = 0.0

    # -- reference data (communes, codes, extents), cached briefly ---------------------
    def reference(self) -> Reference:
        if self._ref is None or time.monotonic() - self._ref_at > REFERENCE_TTL_S:
            with self.engine.connect() as conn:
                self._ref = Reference.load(conn)
            self._districts = {c.district_code for c in self._ref.communes.values()}
            self._ref_at = time.monotonic()
        return self._ref

    def district_of(self, collection: str) -> str:
        match = DISTRICT_COLLECTION.match(collection)
        if match is None or not PARCELS.writable:
            raise WriteError(405, "MethodNotAllowed", f"collection {collection} is read-only; "
                             "parcels are written through their district's collection "
                             "parcels-<district code>")
        self.reference()
        if match.group(1) not in self._districts:
            raise WriteError(404, "NotFound", f"no district {match.group(1)}")
        return match.group(1)

    # -- request body -> validated stage rows -------------------------------------------
    def parse(self, w: Write, fill: dict | None = None) -> tuple[dict, object]:
        """(properties, shapely geometry or None) from a GeoJSON Feature body."""
        try:
            doc = json.loads(w.body)
        except (ValueError, UnicodeDecodeError):
            raise WriteError(400, "InvalidBody", "the body is not JSON") from None
        if not isinstance(doc, dict) or doc.get("type") != "Feature":
            raise WriteError(400, "InvalidBody", "the body must be a GeoJSON Feature")
        props = doc.get("properties") or {}
        if not isinstance(props, dict):
            raise WriteError(400, "InvalidBody", "properties must be an object")
        unknown = sorted(k for k in props if k not in NATIONAL and k not in READ_ONLY)
        if unknown:
            raise WriteError(400, "InvalidBody",
                             f"properties not writable here: {', '.join(unknown)} (writable: "
                             f"{', '.join(NATIONAL)}; owners and certificates are never "
                             "written through the public features API)")
        props = {k: v for k, v in props.items() if k in NATIONAL}
        wrong = sorted(k for k, v in props.items()
                       if v is not None and not isinstance(v, str | int | float)
                       or isinstance(v, bool))
        if wrong:
            raise WriteError(400, "InvalidBody", f"properties must be strings or numbers: "
                             f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not")
        for k, v in (fill or {}).items():
            props.setdefault(k, v)
        geometry = doc.get("geometry")
        if geometry is None:
            return props, None
        try:
            return props, shapely.geometry.shape(geometry)
        except Exception as exc:  # noqa: BLE001 - shapely raises many kinds for bad GeoJSON
            raise WriteError(400, "InvalidBody", f"geometry is not valid GeoJSON: {exc}") \
                from None

    def validate(self, w: Write, props: dict, geometry: object) -> tuple[object, list[Issue]]:
        """The stage rows (one) and issues, by the loader's rules; district scoping first."""
        ref = self.reference()
        try:
            commune = ref.communes.get(parse_code(props.get("commune_code"), 5))
        except ValueError:
            commune = None  # prepare_parcels reports it, located
        if commune is not None and commune.district_code != w.district:
            if not w.principal.may_enter(commune.district_code):
                raise forbidden(w.principal, commune.district_code)
            raise WriteError(400, "InvalidParameterValue",
                             f"commune {props['commune_code']} lies in district "
                             f"{commune.district_code}, not in this collection's district "
                             f"{w.district}; write it to parcels-{commune.district_code}")
        frame = gpd.GeoDataFrame({NATIONAL[k]: [props.get(k)] for k in NATIONAL},
                                 geometry=[geometry], crs=WGS84)
        try:
            rows, issues, parents = prepare_parcels(frame, "request", WGS84, ref,
                                                    self.mapping, Options())
        except LoadError as exc:
            raise WriteError(400, "InvalidParameterValue", exc.reason) from None
        rejects = [i for i in issues if i.severity == "reject"]
        if rejects:
            reasons = "; ".join(f"{i.field}: {i.reason}" for i in rejects)
            raise WriteError(400, "InvalidParameterValue",
                             f"the feature was rejected: {reasons}", issues)
        for code in sorted(set(parents["commune_code"])):  # parents retire: the caller's
            parent = ref.communes.get(code)
            if parent is not None and not w.principal.may_enter(parent.district_code):
                raise forbidden(w.principal, parent.district_code)
        return rows, issues, parents

    def stage_checked(self, conn: Connection, rows: object, parents: object
                      ) -> list[Issue]:
        """Stage the parcel and refuse it where it lies outside its district's (or its
        commune's) boundary (422), or overlaps a current parcel it does not replace (409),
        as a delivery would be refused (``location.check_location``, ``merge.overlaps``).
        Returns the notes: how far the location could be checked."""
        m.stage(conn, rows, parents)
        outside, notes = check_location(conn, STAGED)
        if outside:
            raise WriteError(422, "InvalidParameterValue", "the parcel does not lie where its "
                             "commune is: " + "; ".join(i.reason for i in outside), outside)
        found = [i for i in overlap_issues(m.overlaps(conn, "changes"))
                 if i.severity == "reject"]
        if found:
            raise WriteError(409, "Conflict", "the parcel overlaps current parcels it does "
                             "not replace: " + "; ".join(i.reason for i in found), found)
        return notes

    # -- the writes ------------------------------------------------------------------------
    def create(self, w: Write) -> Response:
        props, geometry = self.parse(w)
        rows, issues, parents = self.validate(w, props, geometry)
        key = rows.loc[0, list(KEY)].tolist()
        with self.engine.begin() as conn:
            m.lock_districts(conn, [w.district])
            existing = conn.execute(text("""
                SELECT uid, status FROM cadastre.parcel
                 WHERE district_code = :d AND commune_code = :c AND sheet_no = :s
                   AND parcel_no = :p FOR UPDATE
            """), {"d": w.district, "c": key[0], "s": int(key[1]), "p": int(key[2])}).first()
            if existing is not None and existing.status != "historic":
                raise WriteError(409, "Conflict", f"parcel {key[0]}.{key[1]}.{key[2]} exists "
                                 f"(id {existing.uid}); replace it with PUT")
            run_id = self._start(conn, w)
            issues = issues + self.stage_checked(conn, rows, parents)
            counts = m.merge(conn, run_id)
            uid = conn.execute(text("SELECT uid FROM merge_plan")).scalar_one()
            self._in_scope(conn, w, uid)
            if existing is not None:  # a retired number given again: the parcel comes back
                conn.execute(text("""
                    UPDATE cadastre.parcel SET status = 'current', valid_to = NULL,
                           valid_from = now(), load_run_id = :run
                     WHERE district_code = :d AND uid = :uid
                """), {"d": w.district, "uid": uid, "run": run_id})
                if counts["unchanged"]:
                    self._event(conn, w.district, uid, "create", run_id)
                m.refresh_district_summary(conn, [w.district])
            after = self._row(conn, w.district, uid)
            self._finish(conn, w, run_id, counts, issues, "create", uid, None, after)
        return self._feature_response(w, after, 201, {
            "Location": f"{self.base_url}/collections/{w.collection}/items/{uid}",
            **location_checked(issues)})

    def replace(self, w: Write, uid: int) -> Response:
        with self.engine.connect() as conn:
            current = self._current(conn, w.district, uid)
        props, geometry = self.parse(w, fill={k: current[k] for k in KEY})
        rows, issues, parents = self.validate(w, props, geometry)
        given = tuple(rows.loc[0, list(KEY)].tolist())
        if (given[0], int(given[1]), int(given[2])) != tuple(current[k] for k in KEY):
            raise WriteError(400, "InvalidParameterValue",
                             "a replace cannot change the parcel's commune, sheet or number; "
                             "retire it (DELETE) and create the new parcel (POST)")
        with self.engine.begin() as conn:
            m.lock_districts(conn, [w.district])
            before = self._locked(conn, w, uid)
            self._in_scope(conn, w, uid, staged=False)
            run_id = self._start(conn, w)
            issues = issues + self.stage_checked(conn, rows, parents)
            counts = m.merge(conn, run_id)
            self._in_scope(conn, w, uid)
            after = self._row(conn, w.district, uid)
            self._finish(conn, w, run_id, counts, issues, "replace", uid, before, after)
        return self._feature_response(w, after, 200, location_checked(issues))

    def delete(self, w: Write, uid: int) -> Response:
        """Retire: the parcel becomes historic (kept, with a history row and a 'retire'
        event) and leaves ``publish.parcels`` and its district's count."""
        with self.engine.begin() as conn:
            m.lock_districts(conn, [w.district])
            before = self._locked(conn, w, uid)
            self._in_scope(conn, w, uid, staged=False)
            run_id = self._start(conn, w)
            conn.execute(text(f"""
                INSERT INTO cadastre.parcel_history (uid, {m.PARCEL_COLS}, superseded_by_run)
                SELECT uid, {m.PARCEL_COLS}, :run FROM cadastre.parcel
                 WHERE district_code = :d AND uid = :uid
            """), {"d": w.district, "uid": uid, "run": run_id})
            conn.execute(text("""
                UPDATE cadastre.parcel SET status = 'historic', valid_to = now(),
                       load_run_id = :run
                 WHERE district_code = :d AND uid = :uid
            """), {"d": w.district, "uid": uid, "run": run_id})
            self._event(conn, w.district, uid, "retire", run_id)
            m.refresh_district_summary(conn, [w.district])
            self._finish(conn, w, run_id, {"updated": 1}, [], "delete", uid, before, None)
        return Response(status_code=204, headers={"X-Request-ID": w.request_id})

    # -- steps shared by the writes ----------------------------------------------------
    def _current(self, conn: Connection, district: str, uid: int) -> dict:
        row = conn.execute(text("""
            SELECT commune_code, sheet_no, parcel_no FROM cadastre.parcel
             WHERE district_code = :d AND uid = :uid AND status = 'current'
        """), {"d": district, "uid": uid}).mappings().first()
        if row is None:
            raise WriteError(404, "NotFound", f"no current parcel {uid} in district {district}")
        return dict(row)

    def _in_scope(self, conn: Connection, w: Write, uid: int, staged: bool = True) -> None:
        """A commune officer acts only on parcels whose 2025 commune is theirs: the parcel
        (as written, its 2025 commune assigned by the merge; or as it stands) and, after a
        merge, every parent it retires. 403 otherwise, rolled back with the write."""
        if w.principal.commune is None:
            return
        parents = ("UNION SELECT parent_district, parent_uid FROM lineage_plan"
                   if staged else "")
        for r in conn.execute(text(f"""
            SELECT p.commune_code || '.' || p.sheet_no || '.' || p.parcel_no AS ref,
                   p.district_code, p.current_commune_code, p.current_commune_source
              FROM cadastre.parcel p
              JOIN (SELECT CAST(:d AS text), CAST(:uid AS bigint) {parents}) x (d, uid)
                ON p.district_code = x.d AND p.uid = x.uid
             ORDER BY 1
        """), {"d": w.district, "uid": uid}):
            if not w.principal.may_act_on(r.district_code, r.current_commune_code):
                where = (f"lies in commune {r.current_commune_code} since the 2025 reform "
                         f"(by {r.current_commune_source})" if r.current_commune_code else
                         "has no known 2025 commune (its old commune was split and no 2025 "
                         "boundary decides)")
                raise WriteError(403, "Forbidden", f"{w.principal.role} "
                                 f"{w.principal.sub!r} ({w.principal.scope}) may not act on "
                                 f"parcel {r.ref}: it {where}")

    def _locked(self, conn: Connection, w: Write, uid: int) -> dict:
        """The current public row, locked; checks If-Match against its ETag."""
        self._current(conn, w.district, uid)
        conn.execute(text("SELECT 1 FROM cadastre.parcel WHERE district_code = :d AND uid = :uid"
                          " FOR UPDATE"), {"d": w.district, "uid": uid})
        before = self._row(conn, w.district, uid)
        if w.if_match is not None and w.if_match.strip() not in ("*", etag(before)):
            raise WriteError(412, "PreconditionFailed", "the parcel changed since you read it "
                             f"(its ETag is now {etag(before)}); read it again")
        return before

    def _row(self, conn: Connection, district: str, uid: int) -> dict | None:
        return conn.execute(text(PUBLIC_ROW), {"uid": uid, "d": district}).scalar()

    def _start(self, conn: Connection, w: Write) -> int:
        return ledger.start_run(conn, file_name=f"api:{w.method} {w.path}",
                                sha256=hashlib.sha256(w.body).hexdigest(), layer=None,
                                source_srid=4326, mode="strict", status="loaded",
                                started_at=datetime.now(UTC), features_read=1,
                                options={"request_id": w.request_id,
                                         "client_request_id": w.client_request_id},
                                kind="api",
                                run_by=w.principal.sub)

    def _event(self, conn: Connection, district: str, uid: int, kind: str, run_id: int) -> None:
        conn.execute(text("""
            INSERT INTO cadastre.parcel_event (district_code, parcel_uid, kind, load_run_id,
                                               detail)
            VALUES (:d, :uid, :kind, :run, jsonb_build_object('via', 'api'))
        """), {"d": district, "uid": uid, "kind": kind, "run": run_id})

    def _finish(self, conn: Connection, w: Write, run_id: int, counts: dict, issues: list,
                action: str, uid: int, before: dict | None, after: dict | None) -> None:
        ledger.finish_run(conn, run_id, counts=counts, rejected=0, districts=[w.district])
        ledger.record_issues(conn, run_id, issues)  # the repairs, as for a file
        conn.execute(text("""
            INSERT INTO audit.write_log (actor_sub, actor_role, actor_district, action,
                                         collection, district_code, parcel_uid, request_id,
                                         client_request_id,
                                         before, after, load_run_id)
            VALUES (:sub, :role, :adistrict, :action, :collection, :d, :uid, :rid, :crid,
                    CAST(:before AS jsonb), CAST(:after AS jsonb), :run)
        """), {"sub": w.principal.sub, "role": w.principal.role,
               "adistrict": w.principal.district or w.principal.commune, "action": action,
               "collection": w.collection, "d": w.district, "uid": uid, "rid": w.request_id,
               "crid": w.client_request_id,
               "before": None if before is None else json.dumps(before),
               "after": None if after is None else json.dumps(after), "run": run_id})

    def _feature_response(self, w: Write, row: dict, status: int, headers: dict) -> Response:
        return Response(json.dumps(as_feature(row)), status_code=status, media_type=GEOJSON,
                        headers={**headers, "ETag": etag(row), "X-Request-ID": w.request_id})

    # -- restricted read ---------------------------------------------------------------
    def rights(self, principal: Principal | None, uid: int,
               request_ids: tuple[str, str | None], reason: str | None) -> JSONResponse:
        """A parcel's current rights, parties and certificates; the read is audited (who,
        which parcel, when, why: ``reason``) in the same transaction: no audit, no read."""
        caller = require(principal)
        with self.engine.begin() as conn:
            parcel = dict(conn.execute(text("""
                SELECT district_code, commune_code || '.' || sheet_no || '.' || parcel_no
                       AS parcel_ref, status, current_commune_code
                  FROM cadastre.parcel WHERE uid = :uid
            """), {"uid": uid}).mappings().first() or {})
            if not parcel:
                raise WriteError(404, "NotFound", f"no parcel {uid}")
            current_commune = parcel.pop("current_commune_code")
            if not caller.may_act_on(parcel["district_code"], current_commune):
                raise forbidden(caller, parcel["district_code"],
                                f"parcel {parcel['parcel_ref']}")
            rows = conn.execute(text("""
                SELECT r.right_id, r.right_type, r.valid_from, r.share, pa.kind AS party_kind,
                       pa.full_name, pa.id_number, c.serial, c.issue_date
                  FROM restricted.land_right r
                  JOIN restricted.party pa ON pa.party_id = r.party_id
                  LEFT JOIN restricted.certificate c ON c.certificate_id = r.certificate_id
                 WHERE r.district_code = :d AND r.parcel_uid = :uid AND r.valid_to IS NULL
                 ORDER BY r.right_id
            """), {"d": parcel["district_code"], "uid": uid}).mappings().all()
            rights = [{"right_id": r["right_id"], "right_type": r["right_type"],
                       "valid_from": r["valid_from"].isoformat(), "share": r["share"],
                       "party": {"name": r["full_name"], "id_number": r["id_number"],
                                 "kind": r["party_kind"]},
                       "certificate": None if r["serial"] is None else {
                           "serial": r["serial"],
                           "issue_date": r["issue_date"] and r["issue_date"].isoformat()}}
                      for r in rows]
            conn.execute(text("""
                INSERT INTO audit.write_log (actor_sub, actor_role, actor_district, action,
                                             district_code, parcel_uid, request_id,
                                             client_request_id, reason, after)
                VALUES (:sub, :role, :adistrict, 'read_rights', :d, :uid, :rid, :crid,
                        :reason, CAST(:after AS jsonb))
            """), {"sub": caller.sub, "role": caller.role,
                   "adistrict": caller.district or caller.commune,
                   "d": parcel["district_code"], "uid": uid, "rid": request_ids[0],
                   "crid": request_ids[1], "reason": reason,
                   "after": json.dumps({"rights": len(rights)})})
        return JSONResponse({"parcel_id": uid, **parcel, "rights": rights},
                            headers={"Cache-Control": "no-store",
                                     "X-Request-ID": request_ids[0]})


def _uid(value: str) -> int:
    """A parcel id from the path: anything but a positive bigint is simply not found."""
    if not (value.isascii() and value.isdigit()) or len(value) > 18 or int(value) == 0:
        raise WriteError(404, "NotFound", "identifier not found")
    return int(value)


def writes_router(service: WriteService, verifier: TokenVerifier) -> APIRouter:
    """POST/PUT/DELETE on ``parcels-<district>`` items and ``/restricted/...`` reads."""
    router = APIRouter()
    Caller = Annotated[Principal | None, Depends(principal_dependency(verifier))]

    async def run(request: Request, principal: Principal | None, collection: str,
                  action, *args) -> Response:  # noqa: ANN001
        rid = request_id(request)
        try:
            who = require(principal)
            district = service.district_of(collection)
            if not who.may_enter(district):
                raise forbidden(who, district)
            body = await request.body()
            if len(body) > MAX_BODY:
                raise WriteError(413, "PayloadTooLarge", f"a feature body is at most "
                                 f"{MAX_BODY // 1024} KiB")
            w = Write(who, collection, district, rid, request.method, request.url.path,
                      body, request.headers.get("if-match"), client_request_id(request))
            return await run_in_threadpool(action, w, *(_uid(a) for a in args))
        except WriteError as exc:
            return exc.response(rid)

    @router.post("/collections/{collection_id}/items", tags=["parcels (write)"],
                 status_code=201)
    async def create(request: Request, collection_id: str,
                     principal: Caller) -> Response:
        """Create a parcel in a district collection (a GeoJSON Feature in WGS84)."""
        return await run(request, principal, collection_id, service.create)

    @router.put("/collections/{collection_id}/items/{item_id}", tags=["parcels (write)"])
    async def replace(request: Request, collection_id: str, item_id: str,
                      principal: Caller) -> Response:
        """Replace a parcel's attributes and geometry (its number stays)."""
        return await run(request, principal, collection_id, service.replace, item_id)

    @router.delete("/collections/{collection_id}/items/{item_id}", tags=["parcels (write)"],
                   status_code=204)
    async def delete(request: Request, collection_id: str, item_id: str,
                     principal: Caller) -> Response:
        """Retire a parcel (it becomes historic and leaves the published collections)."""
        return await run(request, principal, collection_id, service.delete, item_id)

    @router.get("/restricted/parcels/{uid}/rights", tags=["restricted"])
    async def rights(request: Request, uid: str,
                     principal: Caller) -> Response:
        """Current rights of a parcel with parties and certificates (own district/admin)."""
        rid = request_id(request)
        reason = request.query_params.get("reason")
        try:
            if reason is not None and (len(reason) > MAX_REASON or "\x00" in reason):
                raise WriteError(400, "InvalidParameterValue",
                                 f"reason is at most {MAX_REASON} characters of text")
            return await run_in_threadpool(service.rights, principal, _uid(uid),
                                           (rid, client_request_id(request)), reason)
        except WriteError as exc:
            return exc.response(rid)

    return router
