"""Registered land changes (biến động): the dossiers an officer files and registers.

A dossier (hồ sơ) has a kind, a receipt number, a procedure, a received date, the officer
(from the token) and document references. Filing validates it against the cadastre as it
stands and either refuses it with every reason located (which parcel, which rule, by how
much: HTTP 422, kept as a ``refused`` dossier) or keeps it ``filed``; a split or a merge
then holds its new parcels as ``pending`` (officers see them on the dossier; no public
feed does). Registering re-checks and applies it in ONE transaction with its history,
lineage, events, ledger run and audit row; a dossier filed with ``register: true`` is
filed and registered in that one transaction.

Two officers changing the same parcel at once: the parcels are locked ``NOWAIT``, so the
second gets 409 at once and nothing partial; a parcel with an open (filed) dossier takes
no other until that one is registered or withdrawn. A killed registration leaves nothing:
it is one transaction.

Kinds and their rules (sources in docs/DOSSIERS.md):
- split: the children tile the parent (their union differs from it by at most
  ``UNION_SHARE`` of its area, SOLA's rule; children overlap each other by at most
  ``SLIVER_M2``; none reaches outside the parent by more), each child at least the
  province's minimum split area for its land use and kind of commune
  (``cadastre.min_split_area``, loaded as data); children take the next free numbers of
  the parent's sheet unless given; land-use parts (by area share) and rights carry over.
- merge: two or more adjacent current parcels of one commune with the same rights holders;
  the result is their union, its land-use parts the parents' summed by code.
- change_of_use: one part of a parcel to a new land-use code; refused when a contributed
  rule refuses (planning: the approved plan over the parcel); the answer gives the fee
  basis from the contributed prices (valuation: new value minus old for the area).
- correction (boundary, area, address) and recovery (whole, or the part given).
- rights: transfer, inheritance, gift (refused while frozen, or mortgaged without the
  lender's consent), mortgage and its release, freeze and its lifting.
Any dossier but a correction or a freeze's lifting is refused while the parcel is frozen.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import shapely.geometry
import shapely.validation
from psycopg import errors as pg_errors
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from cadastre import current_units
from cadastre import merge as m
from cadastre.extensions import (
    CHANGE_OF_USE_RULES,
    PARCEL_PRICES,
    Finding,
    Prices,
    UseChange,
    contributed,
)
from cadastre.reference import commune_kind
from etl import ledger
from landplatform.auth.principal import Principal, require_district

KINDS = ("split", "merge", "change_of_use", "correction", "recovery", "transfer",
         "inheritance", "gift", "mortgage", "mortgage_release", "freeze", "freeze_lift")
RIGHTS_KINDS = ("transfer", "inheritance", "gift", "mortgage", "mortgage_release", "freeze",
                "freeze_lift")
PARTY_KINDS = ("individual", "married_couple", "household", "organisation", "community",
               "user_group")
UNION_SHARE = 0.01  # SOLA: the union of the children against their parent, 1 %
SLIVER_M2 = 0.1  # the rounding of a stated area: what two drawn edges may disagree by
MERGE_GAP_M = 0.05  # parcels this close count as adjacent (drawing precision)
MAX_CHILDREN = 200
RECEIPT = re.compile(r"^[\w./-]{1,40}$")
PARCEL_REF = re.compile(r"^(\d{5})\.(\d{1,6})\.(\d{1,7})$")
SPLIT_EVENTS = {"split": "split", "merge": "merge", "change_of_use": "change_of_purpose"}


@dataclass
class DossierError(Exception):
    """A refusal: ``status`` 400 (malformed), 403, 404, 409 (conflict) or 422 (the rules
    refuse it, with every reason in ``reasons``)."""

    status: int
    code: str
    description: str
    reasons: list[dict] = field(default_factory=list)

    def body(self) -> dict:
        out: dict = {"code": self.code, "description": self.description}
        if self.reasons:
            out["reasons"] = self.reasons
        return out


def reason(rule: str, message: str, parcel: str | None = None, **detail: object) -> dict:
    """A located reason: the rule, the parcel (or child) it is about, and by how much."""
    return {"rule": rule, "parcel": parcel, "reason": message,
            **{k: v for k, v in detail.items() if v is not None}}


def bad(message: str) -> DossierError:
    return DossierError(400, "InvalidBody", message)


@dataclass(frozen=True)
class Actor:
    """Who files or registers: a token's subject and role, or an operator at the shell;
    ``district``: the officer's scope as the audit records it (a district, or a 2025
    commune)."""

    sub: str
    role: str  # officer | admin | operator
    district: str | None = None
    principal: Principal | None = None

    def require(self, conn: Connection, district: str, uids: Sequence[int],
                dossier_id: int | None = None) -> None:
        """The caller may act on these parcels of ``district`` (and the pending parcels
        of ``dossier_id``): a district officer in their district, an administrator
        anywhere (``require_district``: 403 otherwise); a commune officer only where every
        one of them lies in their 2025 commune (``Principal.may_act_on``, by the parcel's
        ``current_commune_code``; a split's children are parcels of the dossier too, so a
        child across the commune's line is refused). 403 names the parcels outside."""
        caller = self.principal
        if caller is None:
            return
        if caller.commune is None or caller.role != "officer":
            require_district(caller, district)
            return
        outside = conn.execute(text("""
            SELECT commune_code || '.' || sheet_no || '.' || parcel_no AS ref,
                   current_commune_code
              FROM cadastre.parcel
             WHERE district_code = :d
               AND (uid = ANY(CAST(:uids AS bigint[])) OR dossier_id = :dossier)
               AND current_commune_code IS DISTINCT FROM :c
             ORDER BY 1
        """), {"d": district, "uids": list(uids), "dossier": dossier_id,
               "c": caller.commune}).all()
        if outside:
            raise DossierError(
                403, "Forbidden", f"{caller.role} {caller.sub!r} ({caller.scope}) may not "
                f"act on parcel {', '.join(r.ref for r in outside)}: outside commune "
                f"{caller.commune}", [reason("scope", f"lies in commune {r.current_commune_code} "
                                    "since the 2025 reform" if r.current_commune_code else
                                    "has no known 2025 commune (its old commune was split "
                                    "and no 2025 boundary decides)", r.ref)
                                    for r in outside])


@dataclass
class Parcel:
    district_code: str
    uid: int
    ref: str
    province_code: str
    commune_code: str
    sheet_no: int
    parcel_no: int
    land_use: str
    area_m2: float
    source_srid: int
    status: str


# --------------------------------------------------------------------------- parsing
def _text(doc: dict, key: str, *, required: bool = False, limit: int = 500) -> str | None:
    value = doc.get(key)
    if value is None:
        if required:
            raise bad(f"{key} is required")
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit \
            or "\x00" in value:
        raise bad(f"{key} must be text of at most {limit} characters")
    return value.strip()


def _number(doc: dict, key: str) -> float | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 \
            or value > 1e10:
        raise bad(f"{key} must be a positive number")
    return float(value)


def _geometry(doc: object, what: str) -> str:
    """A (Multi)Polygon in WGS84 as GeoJSON text; shapely says what is wrong with it."""
    try:
        shape = shapely.geometry.shape(doc)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - shapely raises many kinds for bad GeoJSON
        raise bad(f"{what}: not a GeoJSON geometry ({exc})") from None
    if shape.geom_type not in ("Polygon", "MultiPolygon") or shape.is_empty:
        raise bad(f"{what}: a Polygon or MultiPolygon is needed, not {shape.geom_type}")
    if not shape.is_valid:
        raise DossierError(422, "Refused", f"{what}: the geometry is not valid",
                           [reason("geometry", f"{what} is not a valid polygon "
                                   f"({shapely.validation.explain_validity(shape)})")])
    x0, y0, x1, y1 = shape.bounds
    if not (100 <= x0 <= x1 <= 112 and 6 <= y0 <= y1 <= 25):
        raise bad(f"{what}: coordinates must be WGS84 longitude/latitude in Vietnam")
    return json.dumps(shapely.geometry.mapping(shape))


def _party(doc: object, what: str) -> dict:
    if not isinstance(doc, dict):
        raise bad(f"{what} must be an object with kind and name")
    kind = doc.get("kind", "individual")
    if kind not in PARTY_KINDS:
        raise bad(f"{what}.kind must be one of {', '.join(PARTY_KINDS)}")
    return {"kind": kind, "name": _text(doc, "name", required=True, limit=200),
            "id_number": _text(doc, "id_number", limit=20),
            "address": _text(doc, "address", limit=300),
            "share": _text(doc, "share", limit=20)}


@dataclass
class Filing:
    """A dossier body, checked for shape (the rules come later, against the database)."""

    kind: str
    receipt_no: str
    received_date: date
    procedure: str | None
    documents: list[dict]
    parcels: list[str | int]
    register: bool
    details: dict

    @classmethod
    def parse(cls, doc: object) -> Filing:
        if not isinstance(doc, dict):
            raise bad("the body must be a JSON object (a dossier)")
        kind = doc.get("kind")
        if kind not in KINDS:
            raise bad(f"kind must be one of {', '.join(KINDS)}")
        receipt = _text(doc, "receipt_no", required=True, limit=40)
        if not RECEIPT.match(receipt):
            raise bad("receipt_no: letters, digits, '.', '/', '-' and '_' only")
        try:
            received = date.fromisoformat(_text(doc, "received_date", required=True))
        except ValueError:
            raise bad("received_date must be a date (YYYY-MM-DD)") from None
        if received > date.today():
            raise bad("received_date is in the future")
        documents = doc.get("documents", [])
        if not isinstance(documents, list) or len(documents) > 50 or not all(
                isinstance(d, dict) and isinstance(d.get("title"), str) for d in documents):
            raise bad("documents must be a list of {title, ref} objects")
        parcels = doc.get("parcels")
        if not isinstance(parcels, list) or not parcels or len(parcels) > 50 or not all(
                (isinstance(p, str) and PARCEL_REF.match(p))
                or (isinstance(p, int) and not isinstance(p, bool) and 0 < p < 2**62)
                for p in parcels):
            raise bad("parcels must list the parcels the dossier is about, each as "
                      "'commune.sheet.parcel' (e.g. '00001.1.5') or a parcel id")
        register = doc.get("register", False)
        if not isinstance(register, bool):
            raise bad("register must be true or false")
        consent = doc.get("lender_consent", [])
        if not isinstance(consent, list) or len(consent) > 50 or not all(
                isinstance(c, int) and not isinstance(c, bool) for c in consent):
            raise bad("lender_consent: the mortgages (encumbrance ids) whose lender consents")
        details = {**cls._details(kind, doc), "lender_consent": consent}
        return cls(kind, receipt, received, _text(doc, "procedure", limit=200),
                   [{"title": d["title"][:200], "ref": str(d.get("ref", ""))[:500]}
                    for d in documents], parcels, register, details)

    @staticmethod
    def _details(kind: str, doc: dict) -> dict:
        out: dict = {}
        if kind == "split":
            children = doc.get("children")
            if not isinstance(children, list) or not 2 <= len(children) <= MAX_CHILDREN:
                raise bad(f"children: a split needs 2 to {MAX_CHILDREN} children")
            out["children"] = []
            for i, child in enumerate(children, start=1):
                if not isinstance(child, dict):
                    raise bad(f"children[{i}] must be an object with a geometry")
                number = child.get("parcel_no")
                if number is not None and (not isinstance(number, int)
                                           or isinstance(number, bool)
                                           or not 0 < number < 10**7):
                    raise bad(f"children[{i}].parcel_no must be a positive whole number")
                out["children"].append({
                    "geometry": _geometry(child.get("geometry"), f"children[{i}]"),
                    "parcel_no": number, "area_m2": _number(child, "area_m2"),
                    "land_use": _text(child, "land_use", limit=40),
                    "address": _text(child, "address", limit=300)})
        elif kind == "merge":
            number = doc.get("parcel_no")
            if number is not None and (not isinstance(number, int) or isinstance(number, bool)
                                       or not 0 < number < 10**7):
                raise bad("parcel_no must be a positive whole number")
            out["parcel_no"] = number
            out["area_m2"] = _number(doc, "area_m2")
        elif kind == "change_of_use":
            out["land_use"] = _text(doc, "land_use", required=True, limit=10)
            out["from_use"] = _text(doc, "from_use", limit=10)
        elif kind == "correction":
            out["geometry"] = (_geometry(doc["geometry"], "geometry")
                               if doc.get("geometry") is not None else None)
            out["area_m2"] = _number(doc, "area_m2")
            out["legal_area_m2"] = _number(doc, "legal_area_m2")
            out["address"] = _text(doc, "address", limit=300)
            if not any(v is not None for v in out.values()):
                raise bad("a correction states what it corrects: geometry, area_m2, "
                          "legal_area_m2 or address")
        elif kind == "recovery":
            out["geometry"] = (_geometry(doc["geometry"], "geometry")
                               if doc.get("geometry") is not None else None)
        elif kind in ("transfer", "inheritance", "gift"):
            to = doc.get("to")
            if not isinstance(to, list) or not 1 <= len(to) <= 20:
                raise bad("to: the new holders (1 to 20 parties)")
            out["to"] = [_party(p, f"to[{i}]") for i, p in enumerate(to, start=1)]
            cert = doc.get("certificate")
            if cert is not None:
                if not isinstance(cert, dict):
                    raise bad("certificate must be an object {serial, register_no, "
                              "issue_date}")
                issue = _text(cert, "issue_date", limit=10)
                try:
                    issue_date = date.fromisoformat(issue) if issue else None
                except ValueError:
                    raise bad("certificate.issue_date must be a date") from None
                out["certificate"] = {"serial": _text(cert, "serial", required=True,
                                                      limit=20),
                                      "register_no": _text(cert, "register_no", limit=30),
                                      "issue_date": issue_date and issue_date.isoformat()}
        elif kind == "mortgage":
            out["lender"] = _party(doc.get("lender"), "lender")
            out["contract_no"] = _text(doc, "contract_no", required=True, limit=60)
        elif kind == "freeze":
            out["authority"] = _text(doc, "authority", required=True, limit=200)
            out["document_ref"] = _text(doc, "document_ref", required=True, limit=200)
        elif kind in ("mortgage_release", "freeze_lift"):
            value = doc.get("encumbrance_id")
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise bad("encumbrance_id: the mortgage or freeze this ends")
            out["encumbrance_id"] = value
        return out


# --------------------------------------------------------------------------- the service
class DossierService:
    """Files, registers, withdraws and shows dossiers; one per application or command."""

    def __init__(self, engine: Engine, extensions: Mapping[str, Sequence[object]]) -> None:
        self.engine = engine
        self.rules = contributed(extensions, CHANGE_OF_USE_RULES)
        self.prices = contributed(extensions, PARCEL_PRICES)

    # -- entry points --------------------------------------------------------------------
    def file(self, actor: Actor, body: object, request_ids: tuple[str, str | None]
             ) -> tuple[int, dict]:
        """(HTTP status, dossier document). Refusals are kept as ``refused`` dossiers."""
        filing = Filing.parse(body)
        try:
            with self.engine.begin() as conn:
                parcels = self._lock(conn, filing.parcels)
                district = parcels[0].district_code
                actor.require(conn, district, [p.uid for p in parcels])
                if any(p.district_code != district for p in parcels):
                    raise DossierError(422, "Refused", "a dossier is about parcels of one "
                                       "district", [reason("district", "the parcels lie in "
                                                           "several districts")])
                self._no_open_dossier(conn, parcels)
                dossier_id = self._insert(conn, actor, filing, district,
                                          [p.uid for p in parcels])
                result = self._check_and_prepare(conn, filing, parcels, dossier_id)
                # its new parcels too: a split can cross the line of a commune officer's
                actor.require(conn, district, [p.uid for p in parcels], dossier_id)
                conn.execute(text("UPDATE cadastre.dossier SET result = CAST(:r AS jsonb) "
                                  "WHERE dossier_id = :id"),
                             {"r": json.dumps(result), "id": dossier_id})
                if filing.register:
                    self._register(conn, actor, dossier_id, request_ids)
                return (201, self._document(conn, dossier_id))
        except DossierError as exc:
            if exc.status == 422:
                exc.reasons = exc.reasons or [reason("rules", exc.description)]
                self._keep_refusal(actor, filing, exc)
            raise

    def register(self, actor: Actor, dossier_id: int,
                 request_ids: tuple[str, str | None]) -> dict:
        with self.engine.begin() as conn:
            self._register(conn, actor, dossier_id, request_ids)
            return self._document(conn, dossier_id)

    def withdraw(self, actor: Actor, dossier_id: int) -> dict:
        with self.engine.begin() as conn:
            row = self._dossier(conn, dossier_id, lock=True)
            actor.require(conn, row["district_code"], row["parcels"], dossier_id)
            if row["state"] != "filed":
                raise DossierError(409, "Conflict", f"dossier {dossier_id} is "
                                   f"{row['state']}: only a filed dossier can be withdrawn")
            conn.execute(text("DELETE FROM cadastre.parcel WHERE dossier_id = :id "
                              "AND status = 'pending'"), {"id": dossier_id})
            conn.execute(text("UPDATE cadastre.dossier SET state = 'withdrawn' "
                              "WHERE dossier_id = :id"), {"id": dossier_id})
            return self._document(conn, dossier_id)

    def show(self, actor: Actor, dossier_id: int) -> dict:
        with self.engine.connect() as conn:
            row = self._dossier(conn, dossier_id)
            actor.require(conn, row["district_code"], row["parcels"], dossier_id)
            return self._document(conn, dossier_id)

    def encumbrances(self, actor: Actor, uid: int, request_ids: tuple[str, str | None],
                     why: str | None) -> dict:
        """Is the parcel mortgaged or frozen? Who holds it is restricted: the read is
        audited like a read of its owners (who, which parcel, why)."""
        with self.engine.begin() as conn:
            parcel = conn.execute(text(
                "SELECT district_code, commune_code || '.' || sheet_no || '.' || parcel_no "
                "AS parcel_ref FROM cadastre.parcel WHERE uid = :uid AND status <> 'pending'"),
                {"uid": uid}).mappings().first()
            if parcel is None:
                raise DossierError(404, "NotFound", f"no parcel {uid}")
            actor.require(conn, parcel["district_code"], [uid])
            rows = conn.execute(text("""
                SELECT e.encumbrance_id, e.kind, e.authority, e.contract_no, e.document_ref,
                       e.valid_from, e.dossier_id, pa.full_name AS holder, pa.kind AS holder_kind
                  FROM restricted.encumbrance e
                  LEFT JOIN restricted.party pa ON pa.party_id = e.holder_party_id
                 WHERE e.district_code = :d AND e.parcel_uid = :uid AND e.valid_to IS NULL
                 ORDER BY e.encumbrance_id
            """), {"d": parcel["district_code"], "uid": uid}).mappings().all()
            found = [{**{k: r[k] for k in ("encumbrance_id", "kind", "authority",
                                           "contract_no", "document_ref", "dossier_id",
                                           "holder", "holder_kind")},
                      "valid_from": r["valid_from"].isoformat()} for r in rows]
            self._audit(conn, actor, "read_rights", parcel["district_code"], uid, request_ids,
                        {"encumbrances": len(found)}, why)
        return {"parcel_id": uid, **parcel,
                "mortgaged": any(e["kind"] == "mortgage" for e in found),
                "frozen": any(e["kind"] == "freeze" for e in found), "encumbrances": found}

    # -- filing -----------------------------------------------------------------------------
    def _lock(self, conn: Connection, refs: list[str | int]) -> list[Parcel]:
        """The dossier's parcels, current, locked at once or 409 (someone else is at them)."""
        found: list[Parcel] = []
        missing = []
        for ref in refs:
            if isinstance(ref, int):
                where, params = "uid = :uid", {"uid": ref}
            else:
                c, s, n = PARCEL_REF.match(ref).groups()  # type: ignore[union-attr]
                where = "commune_code = :c AND sheet_no = :s AND parcel_no = :n"
                params = {"c": c, "s": int(s), "n": int(n)}
                if int(s) > 2**31 - 1 or int(n) > 2**31 - 1:
                    missing.append(str(ref))
                    continue
            try:
                row = conn.execute(text(f"""
                    SELECT district_code, uid, province_code, commune_code, sheet_no,
                           parcel_no, land_use, area_m2::float8 AS area_m2, source_srid,
                           status,
                           commune_code || '.' || sheet_no || '.' || parcel_no AS ref
                      FROM cadastre.parcel WHERE {where} AND status = 'current'
                       FOR UPDATE NOWAIT
                """), params).mappings().first()  # where: one of the two fixed clauses
            except DBAPIError as exc:
                if isinstance(exc.orig, pg_errors.LockNotAvailable):
                    raise DossierError(409, "Conflict", f"parcel {ref} is being changed by "
                                       "another dossier or write right now; try again") \
                        from None
                raise
            if row is None:
                missing.append(str(ref))
            elif all(p.uid != row["uid"] for p in found):
                found.append(Parcel(**row))
        if missing:
            raise DossierError(404, "NotFound", "no current parcel " + ", ".join(missing))
        return found

    def _no_open_dossier(self, conn: Connection, parcels: list[Parcel]) -> None:
        row = conn.execute(text("""
            SELECT dossier_id, receipt_no, kind FROM cadastre.dossier
             WHERE state = 'filed' AND parcels && CAST(:uids AS bigint[]) LIMIT 1
        """), {"uids": [p.uid for p in parcels]}).first()
        if row is not None:
            raise DossierError(409, "Conflict", f"dossier {row.dossier_id} (receipt "
                               f"{row.receipt_no}, {row.kind}) is open on these parcels: "
                               "register or withdraw it first")

    def _insert(self, conn: Connection, actor: Actor, filing: Filing, district: str,
                uids: list[int], state: str = "filed") -> int:
        """The dossier row; the parties it names go to ``restricted.dossier_party``."""
        public = {k: v for k, v in filing.details.items() if k not in ("to", "lender")}
        try:
            with conn.begin_nested():
                dossier_id = conn.execute(text("""
                    INSERT INTO cadastre.dossier (district_code, kind, receipt_no, procedure,
                           received_date, officer_sub, officer_role, documents, request,
                           parcels, state)
                    VALUES (:d, :kind, :receipt, :procedure, :received, :sub, :role,
                            CAST(:documents AS jsonb), CAST(:request AS jsonb), :parcels,
                            :state)
                    RETURNING dossier_id
                """), {"d": district, "kind": filing.kind, "receipt": filing.receipt_no,
                       "procedure": filing.procedure, "received": filing.received_date,
                       "sub": actor.sub, "role": actor.role,
                       "documents": json.dumps(filing.documents),
                       "request": json.dumps(public),
                       "parcels": uids, "state": state}).scalar_one()
        except DBAPIError as exc:
            if isinstance(exc.orig, pg_errors.UniqueViolation):
                raise DossierError(409, "Conflict", f"receipt {filing.receipt_no} is "
                                   f"already filed in district {district}") from None
            raise
        parties = [("to", i, p) for i, p in enumerate(filing.details.get("to", []))]
        if "lender" in filing.details:
            parties.append(("lender", 0, filing.details["lender"]))
        for role, ord_, party in parties:
            conn.execute(text("""
                INSERT INTO restricted.dossier_party (dossier_id, role, ord, party)
                VALUES (:id, :role, :ord, CAST(:party AS jsonb))
            """), {"id": dossier_id, "role": role, "ord": ord_, "party": json.dumps(party)})
        return dossier_id

    def _details(self, conn: Connection, row: dict) -> dict:
        """The dossier's details as filed, with the parties it names."""
        details = dict(row["request"])
        for r in conn.execute(text("""
            SELECT role, party FROM restricted.dossier_party WHERE dossier_id = :id
             ORDER BY role, ord
        """), {"id": row["dossier_id"]}):
            if r.role == "lender":
                details["lender"] = r.party
            else:
                details.setdefault("to", []).append(r.party)
        return details

    def _keep_refusal(self, actor: Actor, filing: Filing, exc: DossierError) -> None:
        """A refused dossier is part of the office's record: kept, with its reasons (in a
        transaction of its own: the refused change itself left nothing)."""
        with self.engine.begin() as conn:
            found = []
            for ref in filing.parcels:
                where = ("uid = :v" if isinstance(ref, int) else
                         "commune_code || '.' || sheet_no || '.' || parcel_no = :v")
                row = conn.execute(text(  # where: one of the two fixed clauses
                    f"SELECT district_code, uid FROM cadastre.parcel WHERE {where} "
                    "AND status = 'current'"), {"v": ref}).first()
                if row is not None:
                    found.append(row)
            if not found:
                return
            try:
                dossier_id = self._insert(conn, actor, filing, found[0].district_code,
                                          [r.uid for r in found], "refused")
            except DossierError:
                return  # the receipt number is taken: that dossier is the record
            conn.execute(text("UPDATE cadastre.dossier SET reasons = CAST(:r AS jsonb) "
                              "WHERE dossier_id = :id"),
                         {"r": json.dumps(exc.reasons), "id": dossier_id})
        exc.description += f" (kept as refused dossier {dossier_id})"

    def _check_and_prepare(self, conn: Connection, filing: Filing, parcels: list[Parcel],
                           dossier_id: int) -> dict:
        """Every rule of the kind, refusing with all reasons at once; a split or merge
        leaves its new parcels pending. Returns what the filing found (figures)."""
        kind = filing.kind
        reasons = self._encumbrance_reasons(conn, kind, parcels, filing.details)
        check = getattr(self, f"_check_{kind}")
        result, more = check(conn, filing.details, parcels, dossier_id)
        reasons += more
        if reasons:
            raise DossierError(422, "Refused", f"the {kind.replace('_', ' ')} is refused: "
                               f"{len(reasons)} reason(s)", reasons)
        return result

    def _encumbrance_reasons(self, conn: Connection, kind: str, parcels: list[Parcel],
                             details: dict) -> list[dict]:
        out = []
        rows = conn.execute(text("""
            SELECT e.encumbrance_id, e.kind, e.parcel_uid, e.authority, e.valid_from::date
                   AS since
              FROM restricted.encumbrance e
             WHERE e.district_code = :d AND e.parcel_uid = ANY(:uids) AND e.valid_to IS NULL
        """), {"d": parcels[0].district_code, "uids": [p.uid for p in parcels]}).all()
        refs = {p.uid: p.ref for p in parcels}
        for row in rows:
            if row.kind == "freeze" and kind not in ("correction", "freeze_lift"):
                out.append(reason("frozen", f"the parcel is frozen (ngăn chặn) by "
                                  f"{row.authority} since {row.since} (encumbrance "
                                  f"{row.encumbrance_id}): lift the freeze first",
                                  refs[row.parcel_uid], encumbrance_id=row.encumbrance_id))
            if row.kind == "mortgage" and kind in ("transfer", "inheritance", "gift", "split",
                                                   "merge", "recovery") \
                    and row.encumbrance_id not in details.get("lender_consent", []):
                out.append(reason("mortgaged", f"the parcel is mortgaged (encumbrance "
                                  f"{row.encumbrance_id}, since {row.since}): the lender's "
                                  "release (mortgage_release) or its consent "
                                  "(lender_consent) is needed", refs[row.parcel_uid],
                                  encumbrance_id=row.encumbrance_id))
        return out

    # -- the kinds: checks (at filing) --------------------------------------------------------
    def _check_split(self, conn: Connection, details: dict, parcels: list[Parcel],
                     dossier_id: int) -> tuple[dict, list[dict]]:
        if len(parcels) != 1:
            return {}, [reason("split", "a split is of exactly one parcel")]
        parent = parcels[0]
        children = details["children"]
        geo = conn.execute(text("""
            WITH parent AS (
                SELECT ST_Transform(geom, :srid) AS g FROM cadastre.parcel
                 WHERE district_code = :d AND uid = :uid),
            kids AS (
                SELECT k.ord::int AS ord,
                       ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(k.j), 4326), :srid) AS g
                  FROM unnest(CAST(:kids AS text[])) WITH ORDINALITY AS k(j, ord))
            SELECT (SELECT ST_Area(g) FROM parent) AS parent_area,
                   (SELECT json_agg(json_build_object(
                        'ord', k.ord, 'area', ST_Area(k.g),
                        'outside', ST_Area(ST_Difference(k.g, p.g))) ORDER BY k.ord)
                      FROM kids k, parent p) AS kids,
                   (SELECT json_agg(json_build_object('a', a.ord, 'b', b.ord,
                        'area', ST_Area(ST_Intersection(a.g, b.g))))
                      FROM kids a JOIN kids b ON a.ord < b.ord AND ST_Intersects(a.g, b.g)
                     ) AS overlaps,
                   (SELECT ST_Area(ST_SymDifference(ST_Union(k.g), (SELECT g FROM parent)))
                      FROM kids k) AS difference
        """), {"srid": parent.source_srid, "d": parent.district_code, "uid": parent.uid,
               "kids": [c["geometry"] for c in children]}).mappings().one()
        out = []
        for kid in geo["kids"]:
            if kid["outside"] > SLIVER_M2:
                out.append(reason("inside_parent", f"child {kid['ord']} reaches "
                                  f"{kid['outside']:.1f} m² outside the parent",
                                  f"child {kid['ord']}", by_m2=round(kid["outside"], 1)))
        for pair in geo["overlaps"] or []:
            if pair["area"] > SLIVER_M2:
                out.append(reason("no_overlap", f"children {pair['a']} and {pair['b']} "
                                  f"overlap by {pair['area']:.1f} m²",
                                  f"child {pair['a']}", by_m2=round(pair["area"], 1)))
        limit = UNION_SHARE * geo["parent_area"]
        if geo["difference"] > limit:
            out.append(reason("tile_parent", f"the children differ from the parent by "
                              f"{geo['difference']:.1f} m² (at most {limit:.1f} m², "
                              f"{UNION_SHARE:.0%} of its {geo['parent_area']:.1f} m²)",
                              parent.ref, by_m2=round(geo["difference"] - limit, 1)))
        kind = _commune_kind(conn, parent.commune_code)
        uses = {c["land_use"] or parent.land_use.split("+")[0] for c in children}
        bad_use = self._unknown_uses(conn, uses)
        out += [reason("land_use", f"land-use code {u} is not a current code", parent.ref)
                for u in bad_use]
        minimums = {row.land_use: row for row in conn.execute(text("""
            SELECT land_use, min_area_m2::float8 AS min_area, source FROM cadastre.min_split_area
             WHERE province_code = :p AND commune_kind = :k AND land_use = ANY(:u)
        """), {"p": parent.province_code, "k": kind, "u": sorted(uses)})}
        for kid, child in zip(geo["kids"], children, strict=True):
            use = child["land_use"] or parent.land_use.split("+")[0]
            rule = minimums.get(use)
            area = child["area_m2"] or kid["area"]
            if rule is not None and area < rule.min_area:
                out.append(reason("min_split_area", f"child {kid['ord']}: {area:.1f} m² is "
                                  f"below the province's minimum of {rule.min_area:g} m² for "
                                  f"{use} in a {kind} ({rule.source})", f"child {kid['ord']}",
                                  by_m2=round(rule.min_area - area, 1)))
        numbers = self._numbers(conn, parent, [c["parcel_no"] for c in children], out)
        if out:
            return {}, out
        # the children, pending: numbered, with the parent's land-use parts by area share
        for kid, child, number in zip(geo["kids"], children, numbers, strict=True):
            self._insert_pending(conn, parent, dossier_id, number, child["geometry"],
                                 child["area_m2"] or round(kid["area"], 1),
                                 child["land_use"], child["address"], kid["area"])
        return {"children": [f"{parent.commune_code}.{parent.sheet_no}.{n}" for n in numbers],
                "difference_m2": round(geo["difference"], 1),
                "minimums": {u: r.min_area for u, r in minimums.items()},
                "commune_kind": kind}, []

    def _check_merge(self, conn: Connection, details: dict, parcels: list[Parcel],
                     dossier_id: int) -> tuple[dict, list[dict]]:
        if len(parcels) < 2:
            return {}, [reason("merge", "a merge is of two or more parcels")]
        out = []
        if len({p.commune_code for p in parcels}) > 1:
            out.append(reason("one_commune", "the parcels lie in different communes"))
        srid = parcels[0].source_srid
        row = conn.execute(text("""
            SELECT ST_NumGeometries(ST_Union(ST_Buffer(ST_Transform(geom, :srid), :gap)))
                   AS pieces,
                   ST_AsGeoJSON(ST_Multi(ST_Union(geom)), 9) AS geometry,
                   ST_Area(ST_Union(ST_Transform(geom, :srid))) AS area
              FROM cadastre.parcel WHERE district_code = :d AND uid = ANY(:uids)
        """), {"srid": srid, "gap": MERGE_GAP_M, "d": parcels[0].district_code,
               "uids": [p.uid for p in parcels]}).mappings().one()
        if row["pieces"] != 1:
            out.append(reason("adjacent", f"the parcels are not adjacent: they form "
                              f"{row['pieces']} separate areas"))
        holders = conn.execute(text("""
            SELECT p.uid, coalesce(array_agg(r.party_id ORDER BY r.party_id)
                                   FILTER (WHERE r.party_id IS NOT NULL), '{}') AS parties
              FROM unnest(CAST(:uids AS bigint[])) AS p(uid)
              LEFT JOIN restricted.land_right r ON r.district_code = :d
                    AND r.parcel_uid = p.uid AND r.valid_to IS NULL
             GROUP BY p.uid
        """), {"d": parcels[0].district_code, "uids": [p.uid for p in parcels]}).all()
        if len({tuple(h.parties) for h in holders}) > 1:
            refs = {p.uid: p.ref for p in parcels}
            out.append(reason("same_holders", "the parcels have different rights holders "
                              "(a merge joins parcels of the same land user)",
                              ", ".join(refs[h.uid] for h in holders)))
        numbers = self._numbers(conn, parcels[0], [details["parcel_no"]], out)
        if out:
            return {}, out
        first = parcels[0]
        area = details["area_m2"] or round(row["area"], 1)
        uid = self._insert_pending(conn, first, dossier_id, numbers[0], row["geometry"], area,
                                   None, None, row["area"], parents=parcels)
        return {"children": [f"{first.commune_code}.{first.sheet_no}.{numbers[0]}"],
                "area_m2": area, "pending_uid": uid}, []

    def _check_change_of_use(self, conn: Connection, details: dict, parcels: list[Parcel],
                             dossier_id: int) -> tuple[dict, list[dict]]:
        if len(parcels) != 1:
            return {}, [reason("change_of_use", "a change of use is of one parcel")]
        parcel = parcels[0]
        new = details["land_use"].upper()
        parts = conn.execute(text("""
            SELECT seq, code, area_m2::float8 AS area, is_primary FROM cadastre.parcel_land_use
             WHERE district_code = :d AND parcel_uid = :uid ORDER BY seq
        """), {"d": parcel.district_code, "uid": parcel.uid}).all()
        old = (details["from_use"] or next((p.code for p in parts if p.is_primary),
                                           parcel.land_use.split("+")[0])).upper()
        part = next((p for p in parts if p.code == old), None)
        out = [reason("land_use", f"land-use code {u} is not a current code", parcel.ref)
               for u in self._unknown_uses(conn, {new})]
        if part is None:
            out.append(reason("from_use", f"the parcel has no {old} part (it has "
                              f"{parcel.land_use})", parcel.ref))
        elif new == old:
            out.append(reason("new_use", f"the part is already {new}", parcel.ref))
        if out:
            return {}, out
        area = part.area if part.area is not None else parcel.area_m2
        change = UseChange(parcel.district_code, parcel.uid, old, new, area, date.today())
        findings: list[Finding] = [f for rule in self.rules for f in rule(conn, change)]
        out = [reason(f.rule, f.refusal, parcel.ref, source=f.source, **f.detail)
               for f in findings if f.refusal]
        if out:
            return {}, out
        with conn.begin_nested() as trial:  # the fee basis, priced as it would stand
            fee = self._change_use(conn, parcel, part.seq, old, new, dossier_id=None,
                                   run_id=None)
            trial.rollback()
        return {"from_use": old, "to_use": new, "area_m2": area,
                "findings": [{"source": f.source, "rule": f.rule, **f.detail}
                             for f in findings],
                "fee_basis": fee}, []

    def _check_correction(self, conn: Connection, details: dict, parcels: list[Parcel],
                          dossier_id: int) -> tuple[dict, list[dict]]:
        if len(parcels) != 1:
            return {}, [reason("correction", "a correction is of one parcel")]
        parcel = parcels[0]
        out = []
        if details["geometry"] is not None:
            row = conn.execute(text("""
                WITH g AS (SELECT ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326),
                                               :srid) AS g)
                SELECT n.commune_code || '.' || n.sheet_no || '.' || n.parcel_no AS ref,
                       ST_Area(ST_Intersection(ST_Transform(n.geom, :srid), g.g)) AS area
                  FROM cadastre.parcel n, g
                 WHERE n.status = 'current' AND NOT (n.district_code = :d AND n.uid = :uid)
                   AND ST_Intersects(n.geom, ST_Transform(g.g, 4326))
            """), {"g": details["geometry"], "srid": parcel.source_srid,
                   "d": parcel.district_code, "uid": parcel.uid}).all()
            for r in row:
                if r.area > SLIVER_M2:
                    out.append(reason("no_overlap", f"the corrected boundary overlaps parcel "
                                      f"{r.ref} by {r.area:.1f} m²", parcel.ref,
                                      by_m2=round(r.area, 1)))
        return {"fields": sorted(k for k, v in details.items() if v is not None)}, out

    def _check_recovery(self, conn: Connection, details: dict, parcels: list[Parcel],
                        dossier_id: int) -> tuple[dict, list[dict]]:
        if len(parcels) != 1:
            return {}, [reason("recovery", "a recovery is of one parcel")]
        parcel = parcels[0]
        if details["geometry"] is None:
            return {"whole": True, "recovered_m2": parcel.area_m2}, []
        row = conn.execute(text("""
            WITH g AS (SELECT ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326), :srid)
                              AS g),
                 p AS (SELECT ST_Transform(geom, :srid) AS g FROM cadastre.parcel
                        WHERE district_code = :d AND uid = :uid)
            SELECT ST_Area(ST_Difference(g.g, p.g)) AS outside,
                   ST_Area(ST_Intersection(g.g, p.g)) AS inside, ST_Area(p.g) AS parcel
              FROM g, p
        """), {"g": details["geometry"], "srid": parcel.source_srid,
               "d": parcel.district_code, "uid": parcel.uid}).mappings().one()
        out = []
        if row["outside"] > SLIVER_M2:
            out.append(reason("inside_parcel", f"the recovered part reaches "
                              f"{row['outside']:.1f} m² outside the parcel", parcel.ref,
                              by_m2=round(row["outside"], 1)))
        if row["parcel"] - row["inside"] <= SLIVER_M2:
            out.append(reason("part", "the part is the whole parcel: file a recovery "
                              "without a geometry", parcel.ref))
        return {"whole": False, "recovered_m2": round(row["inside"], 1)}, out

    def _check_transfer(self, conn: Connection, details: dict, parcels: list[Parcel],
                        dossier_id: int) -> tuple[dict, list[dict]]:
        cert = details.get("certificate")
        out = []
        if cert and conn.execute(text("SELECT 1 FROM restricted.certificate "
                                      "WHERE serial = :s"), {"s": cert["serial"]}).first():
            out.append(reason("certificate", f"certificate serial {cert['serial']} is already "
                              "issued"))
        return {"holders": len(details["to"]), "parcels": [p.ref for p in parcels]}, out

    _check_inheritance = _check_transfer
    _check_gift = _check_transfer

    def _check_mortgage(self, conn: Connection, details: dict, parcels: list[Parcel],
                        dossier_id: int) -> tuple[dict, list[dict]]:
        return {"parcels": [p.ref for p in parcels]}, []

    def _check_freeze(self, conn: Connection, details: dict, parcels: list[Parcel],
                      dossier_id: int) -> tuple[dict, list[dict]]:
        return {"parcels": [p.ref for p in parcels]}, []

    def _check_mortgage_release(self, conn: Connection, details: dict, parcels: list[Parcel],
                                dossier_id: int, kind: str = "mortgage"
                                ) -> tuple[dict, list[dict]]:
        row = conn.execute(text("""
            SELECT kind, valid_to FROM restricted.encumbrance
             WHERE encumbrance_id = :e AND district_code = :d AND parcel_uid = ANY(:uids)
        """), {"e": details["encumbrance_id"], "d": parcels[0].district_code,
               "uids": [p.uid for p in parcels]}).first()
        if row is None or row.kind != kind:
            return {}, [reason("encumbrance", f"no {kind} {details['encumbrance_id']} on "
                               "these parcels")]
        if row.valid_to is not None:
            return {}, [reason("encumbrance", f"{kind} {details['encumbrance_id']} already "
                               "ended")]
        return {"encumbrance_id": details["encumbrance_id"]}, []

    def _check_freeze_lift(self, conn: Connection, details: dict, parcels: list[Parcel],
                           dossier_id: int) -> tuple[dict, list[dict]]:
        return self._check_mortgage_release(conn, details, parcels, dossier_id, "freeze")

    # -- registering --------------------------------------------------------------------------
    def _register(self, conn: Connection, actor: Actor, dossier_id: int,
                  request_ids: tuple[str, str | None]) -> None:
        row = self._dossier(conn, dossier_id, lock=True)
        actor.require(conn, row["district_code"], row["parcels"], dossier_id)
        if row["state"] != "filed":
            raise DossierError(409, "Conflict", f"dossier {dossier_id} is {row['state']}")
        kind, details = row["kind"], self._details(conn, row)
        parcels = self._lock(conn, row["parcels"])  # still current, and now ours
        reasons = self._encumbrance_reasons(conn, kind, parcels, details)
        if reasons:
            raise DossierError(422, "Refused", "the parcels changed since filing", reasons)
        run_id = ledger.start_run(
            conn, file_name=f"dossier:{row['receipt_no']}",
            sha256=hashlib.sha256(json.dumps(row["request"], sort_keys=True).encode())
            .hexdigest(), layer=None, source_srid=4326, mode="strict", status="loaded",
            started_at=datetime.now(UTC), features_read=len(parcels),
            options={"dossier_id": dossier_id, "kind": kind,
                     "request_id": request_ids[0]}, kind="api", run_by=actor.sub)
        apply = getattr(self, f"_apply_{kind}")
        touched = apply(conn, details, parcels, dossier_id, run_id, row["result"] or {})
        ledger.finish_run(conn, run_id, counts={"updated": len(touched)}, rejected=0,
                          districts=[row["district_code"]])
        m.refresh_district_summary(conn, [row["district_code"]])
        conn.execute(text("""
            UPDATE cadastre.dossier SET state = 'registered', registered_at = now(),
                   registered_by = :sub,
                   result = coalesce(result, '{}') || CAST(:r AS jsonb)
             WHERE dossier_id = :id
        """), {"sub": actor.sub, "id": dossier_id,
               "r": json.dumps({"touched": touched, "load_run_id": run_id})})
        self._audit(conn, actor, "register", row["district_code"], parcels[0].uid,
                    request_ids, {"dossier_id": dossier_id, "kind": kind,
                                  "receipt_no": row["receipt_no"], "parcels": touched}, None,
                    run_id)

    def _history(self, conn: Connection, p: Parcel, run_id: int, dossier_id: int) -> None:
        conn.execute(text(f"""
            INSERT INTO cadastre.parcel_history (uid, {m.PARCEL_COLS}, superseded_by_run,
                                                 dossier_id)
            SELECT uid, {m.PARCEL_COLS}, :run, :dossier FROM cadastre.parcel
             WHERE district_code = :d AND uid = :uid
        """), {"d": p.district_code, "uid": p.uid, "run": run_id, "dossier": dossier_id})

    def _retire(self, conn: Connection, p: Parcel, run_id: int, dossier_id: int) -> None:
        self._history(conn, p, run_id, dossier_id)
        conn.execute(text("""
            UPDATE cadastre.parcel SET status = 'historic', valid_to = now(),
                   load_run_id = :run WHERE district_code = :d AND uid = :uid
        """), {"d": p.district_code, "uid": p.uid, "run": run_id})
        conn.execute(text("""
            UPDATE restricted.land_right SET valid_to = now()
             WHERE district_code = :d AND parcel_uid = :uid AND valid_to IS NULL
        """), {"d": p.district_code, "uid": p.uid})

    def _event(self, conn: Connection, p: Parcel | tuple[str, int], kind: str, run_id: int,
               dossier_id: int, detail: dict | None = None) -> int:
        district, uid = (p.district_code, p.uid) if isinstance(p, Parcel) else p
        return conn.execute(text("""
            INSERT INTO cadastre.parcel_event (district_code, parcel_uid, kind, load_run_id,
                                               dossier_id, detail)
            VALUES (:d, :uid, :kind, :run, :dossier, CAST(:detail AS jsonb))
            RETURNING event_id
        """), {"d": district, "uid": uid, "kind": kind, "run": run_id, "dossier": dossier_id,
               "detail": json.dumps({"via": "dossier", **(detail or {})})}).scalar_one()

    def _activate_children(self, conn: Connection, parents: list[Parcel], dossier_id: int,
                           run_id: int, kind: str) -> list[str]:
        """Pending children -> current, parents -> historic, lineage with shared areas,
        the parents' rights carried to every child."""
        children = conn.execute(text("""
            UPDATE cadastre.parcel SET status = 'current', valid_from = now(),
                   load_run_id = :run
             WHERE dossier_id = :dossier AND status = 'pending'
            RETURNING district_code, uid, commune_code || '.' || sheet_no || '.' || parcel_no
                      AS ref
        """), {"dossier": dossier_id, "run": run_id}).all()
        if not children:
            raise DossierError(409, "Conflict", f"dossier {dossier_id} has no pending parcels "
                               "left to register")
        district = parents[0].district_code
        for parent in parents:
            conn.execute(text("""
                INSERT INTO restricted.land_right (district_code, parcel_uid, party_id,
                       certificate_id, right_type, dossier_id, share)
                SELECT r.district_code, c.uid, r.party_id, NULL, r.right_type, :dossier,
                       r.share
                  FROM restricted.land_right r
                  CROSS JOIN unnest(CAST(:kids AS bigint[])) AS c(uid)
                 WHERE r.district_code = :d AND r.parcel_uid = :uid AND r.valid_to IS NULL
                ON CONFLICT DO NOTHING
            """), {"dossier": dossier_id, "kids": [c.uid for c in children], "d": district,
                   "uid": parent.uid})
            event = self._event(conn, parent, kind, run_id, dossier_id,
                                {"children": [c.ref for c in children]})
            conn.execute(text("""
                INSERT INTO cadastre.parcel_lineage (event_id, parent_district_code,
                       parent_uid, child_district_code, child_uid, kind, shared_area_m2,
                       load_run_id)
                SELECT :event, :d, :parent, c.district_code, c.uid, :kind,
                       round(ST_Area(ST_Intersection(ST_Transform(p.geom, p.source_srid),
                                     ST_Transform(c.geom, p.source_srid)))::numeric, 1), :run
                  FROM cadastre.parcel p, cadastre.parcel c
                 WHERE p.district_code = :d AND p.uid = :parent
                   AND c.district_code = :d AND c.uid = ANY(:kids)
            """), {"event": event, "d": district, "parent": parent.uid, "kind": kind,
                   "kids": [c.uid for c in children], "run": run_id})
            self._retire(conn, parent, run_id, dossier_id)
        for child in children:
            self._event(conn, (child.district_code, child.uid), "create", run_id, dossier_id,
                        {"from": [p.ref for p in parents]})
        return [p.ref for p in parents] + [c.ref for c in children]

    def _apply_split(self, conn: Connection, details: dict, parcels: list[Parcel],
                     dossier_id: int, run_id: int, result: dict) -> list[str]:
        return self._activate_children(conn, parcels, dossier_id, run_id, "split")

    def _apply_merge(self, conn: Connection, details: dict, parcels: list[Parcel],
                     dossier_id: int, run_id: int, result: dict) -> list[str]:
        return self._activate_children(conn, parcels, dossier_id, run_id, "merge")

    def _apply_change_of_use(self, conn: Connection, details: dict, parcels: list[Parcel],
                             dossier_id: int, run_id: int, result: dict) -> list[str]:
        parcel = parcels[0]
        seq = conn.execute(text("""
            SELECT seq FROM cadastre.parcel_land_use
             WHERE district_code = :d AND parcel_uid = :uid AND code = :code
        """), {"d": parcel.district_code, "uid": parcel.uid,
               "code": result.get("from_use")}).scalar()
        if seq is None:
            raise DossierError(409, "Conflict", "the parcel's land use changed since filing")
        change = UseChange(parcel.district_code, parcel.uid, result["from_use"],
                           result["to_use"], result["area_m2"], date.today())
        refusals = [reason(f.rule, f.refusal, parcel.ref, source=f.source)
                    for rule in self.rules for f in rule(conn, change) if f.refusal]
        if refusals:
            raise DossierError(422, "Refused", "the plan changed since filing", refusals)
        self._history(conn, parcel, run_id, dossier_id)
        fee = self._change_use(conn, parcel, seq, result["from_use"], result["to_use"],
                               dossier_id, run_id)
        conn.execute(text("UPDATE cadastre.dossier SET result = result || "
                          "jsonb_build_object('fee_basis', CAST(:f AS jsonb)) "
                          "WHERE dossier_id = :id"), {"f": json.dumps(fee), "id": dossier_id})
        return [parcel.ref]

    def _change_use(self, conn: Connection, parcel: Parcel, seq: int, old: str, new: str,
                    dossier_id: int | None, run_id: int | None) -> dict:
        """Change the part's code (and the parcel's joined codes); the fee basis is what
        the contributed prices say the parcel is worth after minus before."""
        on = date.today()
        before = [p for f in self.prices if (p := f(conn, parcel.district_code, parcel.uid,
                                                    on)) is not None]
        conn.execute(text("""
            UPDATE cadastre.parcel_land_use SET code = :new, source_code = :new
             WHERE district_code = :d AND parcel_uid = :uid AND seq = :seq
        """), {"new": new, "d": parcel.district_code, "uid": parcel.uid, "seq": seq})
        conn.execute(text("""
            UPDATE cadastre.parcel p SET land_use = x.codes, valid_from = now(),
                   load_run_id = coalesce(:run, p.load_run_id)
              FROM (SELECT string_agg(code, '+' ORDER BY is_primary DESC, seq) AS codes
                      FROM cadastre.parcel_land_use
                     WHERE district_code = :d AND parcel_uid = :uid) x
             WHERE p.district_code = :d AND p.uid = :uid
        """), {"d": parcel.district_code, "uid": parcel.uid, "run": run_id})
        after = [p for f in self.prices if (p := f(conn, parcel.district_code, parcel.uid,
                                                   on)) is not None]
        if run_id is not None and dossier_id is not None:
            self._event(conn, parcel, "change_of_purpose", run_id, dossier_id,
                        {"from": old, "to": new})
        return _fee_basis(before, after, old, new)

    def _apply_correction(self, conn: Connection, details: dict, parcels: list[Parcel],
                          dossier_id: int, run_id: int, result: dict) -> list[str]:
        parcel = parcels[0]
        self._history(conn, parcel, run_id, dossier_id)
        conn.execute(text("""
            UPDATE cadastre.parcel SET
                   geom = coalesce(ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326)), geom),
                   computed_area_m2 = coalesce(round(ST_Area(ST_Transform(
                        ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326), source_srid))::numeric, 1),
                        computed_area_m2),
                   area_m2 = coalesce(:area, area_m2),
                   legal_area_m2 = coalesce(:legal, legal_area_m2),
                   address = coalesce(:address, address),
                   valid_from = now(), load_run_id = :run
             WHERE district_code = :d AND uid = :uid
        """), {"g": details["geometry"], "area": details["area_m2"],
               "legal": details["legal_area_m2"], "address": details["address"],
               "d": parcel.district_code, "uid": parcel.uid, "run": run_id})
        self._event(conn, parcel, "correction", run_id, dossier_id,
                    {"fields": result.get("fields", [])})
        return [parcel.ref]

    def _apply_recovery(self, conn: Connection, details: dict, parcels: list[Parcel],
                        dossier_id: int, run_id: int, result: dict) -> list[str]:
        parcel = parcels[0]
        if details["geometry"] is None:
            self._event(conn, parcel, "recovery", run_id, dossier_id, {"whole": True})
            self._retire(conn, parcel, run_id, dossier_id)
            return [parcel.ref]
        self._history(conn, parcel, run_id, dossier_id)
        conn.execute(text("""
            UPDATE cadastre.parcel SET
                   geom = ST_Multi(ST_CollectionExtract(ST_Difference(geom,
                          ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326)), 3)),
                   valid_from = now(), load_run_id = :run
             WHERE district_code = :d AND uid = :uid
        """), {"g": details["geometry"], "d": parcel.district_code, "uid": parcel.uid,
               "run": run_id})
        conn.execute(text("""
            UPDATE cadastre.parcel SET
                   computed_area_m2 = round(ST_Area(ST_Transform(geom, source_srid))::numeric, 1),
                   area_m2 = round(ST_Area(ST_Transform(geom, source_srid))::numeric, 1)
             WHERE district_code = :d AND uid = :uid
        """), {"d": parcel.district_code, "uid": parcel.uid})
        self._event(conn, parcel, "recovery", run_id, dossier_id,
                    {"whole": False, "recovered_m2": result.get("recovered_m2")})
        return [parcel.ref]

    def _apply_transfer(self, conn: Connection, details: dict, parcels: list[Parcel],
                        dossier_id: int, run_id: int, result: dict, kind: str = "transfer"
                        ) -> list[str]:
        cert_id = None
        cert = details.get("certificate")
        if cert:
            cert_id = conn.execute(text("""
                INSERT INTO restricted.certificate (district_code, serial, register_no,
                                                    issue_date)
                VALUES (:d, :s, :r, CAST(:i AS date)) RETURNING certificate_id
            """), {"d": parcels[0].district_code, "s": cert["serial"],
                   "r": cert["register_no"], "i": cert["issue_date"]}).scalar_one()
        party_ids = [self._party(conn, dossier_id, i, p) for i, p in enumerate(details["to"])]
        for parcel in parcels:
            right_type = conn.execute(text("""
                UPDATE restricted.land_right SET valid_to = now()
                 WHERE district_code = :d AND parcel_uid = :uid AND valid_to IS NULL
                RETURNING right_type
            """), {"d": parcel.district_code, "uid": parcel.uid}).scalars().first() or "use"
            for party_id, holder in zip(party_ids, details["to"], strict=True):
                conn.execute(text("""
                    INSERT INTO restricted.land_right (district_code, parcel_uid, party_id,
                           certificate_id, right_type, dossier_id, share)
                    VALUES (:d, :uid, :party, :cert, :type, :dossier, :share)
                """), {"d": parcel.district_code, "uid": parcel.uid, "party": party_id,
                       "cert": cert_id, "type": right_type, "dossier": dossier_id,
                       "share": holder["share"]})
            self._event(conn, parcel, kind, run_id, dossier_id, {"holders": len(party_ids)})
        return [p.ref for p in parcels]

    def _apply_inheritance(self, *args: object) -> list[str]:
        return self._apply_transfer(*args, kind="inheritance")  # type: ignore[arg-type]

    def _apply_gift(self, *args: object) -> list[str]:
        return self._apply_transfer(*args, kind="gift")  # type: ignore[arg-type]

    def _party(self, conn: Connection, dossier_id: int, index: int, party: dict) -> int:
        """The party by ID number (an existing one is reused), else a new one."""
        key = (f"id:{party['id_number']}" if party["id_number"]
               else f"dossier:{dossier_id}:{index}")
        return conn.execute(text("""
            INSERT INTO restricted.party (kind, full_name, id_number, source_key, address)
            VALUES (:kind, :name, :id, :key, :address)
            ON CONFLICT (source_key) DO UPDATE SET full_name = EXCLUDED.full_name
            RETURNING party_id
        """), {"kind": party["kind"], "name": party["name"], "id": party["id_number"],
               "key": key, "address": party["address"]}).scalar_one()

    def _apply_mortgage(self, conn: Connection, details: dict, parcels: list[Parcel],
                        dossier_id: int, run_id: int, result: dict) -> list[str]:
        lender = self._party(conn, dossier_id, 0, details["lender"])
        for parcel in parcels:
            conn.execute(text("""
                INSERT INTO restricted.encumbrance (district_code, parcel_uid, kind,
                       holder_party_id, contract_no, dossier_id)
                VALUES (:d, :uid, 'mortgage', :lender, :contract, :dossier)
            """), {"d": parcel.district_code, "uid": parcel.uid, "lender": lender,
                   "contract": details["contract_no"], "dossier": dossier_id})
            self._event(conn, parcel, "mortgage", run_id, dossier_id)
        return [p.ref for p in parcels]

    def _apply_freeze(self, conn: Connection, details: dict, parcels: list[Parcel],
                      dossier_id: int, run_id: int, result: dict) -> list[str]:
        for parcel in parcels:
            conn.execute(text("""
                INSERT INTO restricted.encumbrance (district_code, parcel_uid, kind,
                       authority, document_ref, dossier_id)
                VALUES (:d, :uid, 'freeze', :authority, :doc, :dossier)
            """), {"d": parcel.district_code, "uid": parcel.uid,
                   "authority": details["authority"], "doc": details["document_ref"],
                   "dossier": dossier_id})
            self._event(conn, parcel, "freeze", run_id, dossier_id)
        return [p.ref for p in parcels]

    def _apply_mortgage_release(self, conn: Connection, details: dict, parcels: list[Parcel],
                                dossier_id: int, run_id: int, result: dict,
                                kind: str = "mortgage") -> list[str]:
        ended = conn.execute(text("""
            UPDATE restricted.encumbrance SET valid_to = now(), ended_by_dossier = :dossier
             WHERE encumbrance_id = :e AND kind = :kind AND valid_to IS NULL
            RETURNING district_code, parcel_uid
        """), {"e": details["encumbrance_id"], "kind": kind, "dossier": dossier_id}).first()
        if ended is None:
            raise DossierError(409, "Conflict", f"{kind} {details['encumbrance_id']} ended "
                               "since filing")
        parcel = next(p for p in parcels if p.uid == ended.parcel_uid)
        self._event(conn, parcel, "mortgage_release" if kind == "mortgage" else "freeze_lift",
                    run_id, dossier_id)
        return [parcel.ref]

    def _apply_freeze_lift(self, conn: Connection, details: dict, parcels: list[Parcel],
                           dossier_id: int, run_id: int, result: dict) -> list[str]:
        return self._apply_mortgage_release(conn, details, parcels, dossier_id, run_id,
                                            result, "freeze")

    # -- shared steps -------------------------------------------------------------------------
    def _unknown_uses(self, conn: Connection, codes: set[str]) -> list[str]:
        known = set(conn.execute(text(
            "SELECT code FROM cadastre.land_use_type WHERE code = ANY(:c) "
            "AND replaced_by IS NULL"), {"c": sorted(codes)}).scalars())
        return sorted(codes - known)

    def _numbers(self, conn: Connection, parent: Parcel, given: list[int | None],
                 out: list[dict]) -> list[int]:
        """Given numbers (free on the sheet), the rest the sheet's next free ones."""
        taken = set(conn.execute(text("""
            SELECT parcel_no FROM cadastre.parcel
             WHERE district_code = :d AND commune_code = :c AND sheet_no = :s
               AND parcel_no = ANY(:n)
        """), {"d": parent.district_code, "c": parent.commune_code, "s": parent.sheet_no,
               "n": [n for n in given if n]}).scalars())
        for number in sorted(taken):
            out.append(reason("numbering", f"parcel number {number} is taken on sheet "
                              f"{parent.sheet_no} of commune {parent.commune_code}",
                              f"{parent.commune_code}.{parent.sheet_no}.{number}"))
        top = conn.execute(text("""
            SELECT coalesce(max(parcel_no), 0) FROM cadastre.parcel
             WHERE district_code = :d AND commune_code = :c AND sheet_no = :s
        """), {"d": parent.district_code, "c": parent.commune_code,
               "s": parent.sheet_no}).scalar_one()
        numbers, nxt = [], max([top, *[n for n in given if n]])
        for n in given:
            if n:
                numbers.append(n)
            else:
                nxt += 1
                numbers.append(nxt)
        if len(set(numbers)) != len(numbers):
            out.append(reason("numbering", "two children are given the same number"))
        return numbers

    def _insert_pending(self, conn: Connection, parent: Parcel, dossier_id: int, number: int,
                        geometry: str, area: float, land_use: str | None,
                        address: str | None, drawn: float,
                        parents: list[Parcel] | None = None) -> int:
        """A pending parcel on the parent's sheet with land-use parts: the given code, or
        the parents' parts scaled to the child's share of their area."""
        sources = [p.uid for p in (parents or [parent])]
        uid = conn.execute(text(f"""
            INSERT INTO cadastre.parcel ({m.PARCEL_COLS}, dossier_id)
            SELECT p.province_code, p.district_code, p.commune_code, p.sheet_no, :no,
                   NULL, p.current_province_code, p.current_commune_code, :area,
                   round(CAST(:drawn AS numeric), 1), NULL, coalesce(:use, p.land_use),
                   coalesce(:address, p.address), 'pending', now(), NULL, p.source_srid,
                   NULL, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(:g), 4326)), :dossier
              FROM cadastre.parcel p WHERE p.district_code = :d AND p.uid = :uid
            RETURNING uid
        """), {"no": number, "area": area, "drawn": drawn, "use": land_use,
               "address": address, "g": geometry, "dossier": dossier_id,
               "d": parent.district_code, "uid": parent.uid}).scalar_one()
        # its own 2025 commune (a split can cross a new line), not the parent's
        current_units.assign(conn, "SELECT CAST(:d AS text), CAST(:uid AS bigint)",
                             {"d": parent.district_code, "uid": uid})
        if land_use:
            conn.execute(text("""
                INSERT INTO cadastre.parcel_land_use (district_code, parcel_uid, seq, code,
                       source_code, area_m2, is_primary)
                VALUES (:d, :uid, 1, :code, :code, :area, true)
            """), {"d": parent.district_code, "uid": uid, "code": land_use, "area": area})
        else:
            conn.execute(text("""
                INSERT INTO cadastre.parcel_land_use (district_code, parcel_uid, seq, code,
                       source_code, area_m2, is_primary, term, origin)
                SELECT :d, :uid, row_number() OVER w, u.code, u.code,
                       CASE WHEN bool_and(u.area_m2 IS NOT NULL) THEN round(
                           sum(u.area_m2) * CAST(:area AS numeric)
                           / CAST(:total AS numeric), 1) END,
                       row_number() OVER w = 1, min(u.term), min(u.origin)
                  FROM cadastre.parcel_land_use u
                 WHERE u.district_code = :d AND u.parcel_uid = ANY(:src)
                 GROUP BY u.code
                WINDOW w AS (ORDER BY bool_or(u.is_primary) DESC, min(u.seq))
            """), {"d": parent.district_code, "uid": uid, "area": area, "src": sources,
                   "total": sum(p.area_m2 for p in (parents or [parent])) or 1})
            conn.execute(text("""
                UPDATE cadastre.parcel p SET land_use = x.codes
                  FROM (SELECT string_agg(code, '+' ORDER BY seq) AS codes
                          FROM cadastre.parcel_land_use
                         WHERE district_code = :d AND parcel_uid = :uid) x
                 WHERE p.district_code = :d AND p.uid = :uid
            """), {"d": parent.district_code, "uid": uid})
        return uid

    def _dossier(self, conn: Connection, dossier_id: int, lock: bool = False) -> dict:
        try:
            row = conn.execute(text(
                "SELECT * FROM cadastre.dossier WHERE dossier_id = :id"
                + (" FOR UPDATE NOWAIT" if lock else "")), {"id": dossier_id}
            ).mappings().first()
        except DBAPIError as exc:
            if isinstance(exc.orig, pg_errors.LockNotAvailable):
                raise DossierError(409, "Conflict", f"dossier {dossier_id} is being "
                                   "registered by someone else right now") from None
            raise
        if row is None:
            raise DossierError(404, "NotFound", f"no dossier {dossier_id}")
        return dict(row)

    def _document(self, conn: Connection, dossier_id: int) -> dict:
        row = self._dossier(conn, dossier_id)
        pending = conn.execute(text("""
            SELECT jsonb_build_object('type', 'Feature', 'id', uid,
                   'geometry', ST_AsGeoJSON(geom, 9)::jsonb,
                   'properties', jsonb_build_object(
                       'parcel_ref', commune_code || '.' || sheet_no || '.' || parcel_no,
                       'status', status, 'area_m2', area_m2, 'land_use', land_use))
              FROM cadastre.parcel WHERE dossier_id = :id ORDER BY parcel_no
        """), {"id": dossier_id}).scalars().all()
        return {
            "dossier_id": row["dossier_id"], "kind": row["kind"],
            "receipt_no": row["receipt_no"], "procedure": row["procedure"],
            "received_date": row["received_date"].isoformat(),
            "district_code": row["district_code"], "officer": row["officer_sub"],
            "documents": row["documents"], "state": row["state"],
            "filed_at": row["filed_at"].isoformat(),
            "registered_at": row["registered_at"] and row["registered_at"].isoformat(),
            "registered_by": row["registered_by"], "result": row["result"],
            "reasons": row["reasons"],
            "parcels": {"type": "FeatureCollection", "features": pending},
        }

    def _audit(self, conn: Connection, actor: Actor, action: str, district: str, uid: int,
               request_ids: tuple[str, str | None], after: dict, why: str | None,
               run_id: int | None = None) -> None:
        conn.execute(text("""
            INSERT INTO audit.write_log (actor_sub, actor_role, actor_district, action,
                                         collection, district_code, parcel_uid, request_id,
                                         client_request_id, reason, after, load_run_id)
            VALUES (:sub, :role, :adistrict, :action, 'dossiers', :d, :uid, :rid, :crid,
                    :why, CAST(:after AS jsonb), :run)
        """), {"sub": actor.sub, "role": actor.role, "adistrict": actor.district,
               "action": action, "d": district, "uid": uid, "rid": request_ids[0],
               "crid": request_ids[1], "why": why, "after": json.dumps(after, default=str),
               "run": run_id})


def _commune_kind(conn: Connection, commune: str) -> str:
    name = conn.execute(text("SELECT name FROM admin.admin_unit WHERE level = 'commune' "
                             "AND code = :c ORDER BY valid_from NULLS FIRST LIMIT 1"),
                        {"c": commune}).scalar() or ""
    return commune_kind(name)


def _fee_basis(before: list[Prices], after: list[Prices], old: str, new: str) -> dict:
    """(New unit price - old) x the part's area, from the first contributed price source
    (the unit prices as the valuation's rules give them for the parcel)."""
    if not before or not after:
        return {"priced": False, "reason": "no land price table prices this parcel"}
    source = after[0].source
    old_part = next((p for p in before[0].parts if p.code == old), None)
    new_part = next((p for p in after[0].parts if p.code == new), None)
    for code, part in ((old, old_part), (new, new_part)):
        if part is None or part.unit_price is None:
            why = part.reason if part is not None and part.reason else \
                f"the price table does not price {code} here"
            return {"priced": False, "source": source, "reason": why}
    area = new_part.area_m2 or old_part.area_m2 or 0.0
    return {"priced": True, "source": source, "area_m2": area,
            "old_use": old, "old_unit_price": old_part.unit_price,
            "new_use": new, "new_unit_price": new_part.unit_price,
            "fee_basis_vnd": round((new_part.unit_price - old_part.unit_price) * area)}
