"""Who may do what: tokens, role and district boundaries, Features Part 4 writes validated
by the loader's rules, the restricted rights read, and the append-only audit log.

Every parcel created here uses sheet numbers from 990 up (no other test counts them) and is
retired again before the module ends, so the per-district counts stay the manifest's.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import jwt
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from cadastre.layers import PARCELS
from cadastre.merge import refresh_district_summary
from landplatform.auth.tokens import Claims, InvalidToken, TokenVerifier, issue_local
from landplatform.db import PUBLIC_ROLE
from landplatform.settings import Settings
from support import TEST_AUTH_SECRET, data_snapshot, free_ground, free_port

PART4 = "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete"
TEST_SHEETS = 990
RESTRICTED_WORDS = ("owner", "party", "full_name", "id_number", "certificate", "serial",
                    "right")


def token(role: str, district: str | None = None, **kw: object) -> str:
    return issue_local(TEST_AUTH_SECRET, sub=f"{role}-{district or 'all'}", role=role,
                       district=district, **kw)


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


OFFICER_001 = bearer(token("officer", "001"))
OFFICER_003 = bearer(token("officer", "003"))
ADMIN = bearer(token("admin"))


@pytest.fixture(scope="module", autouse=True)
def leave_counts_as_found(api_db: Engine):
    """Retire whatever a failed test left current on the test sheets (counts stay right)."""
    yield
    with api_db.begin() as conn:
        districts = conn.execute(text("""
            UPDATE cadastre.parcel SET status = 'historic', valid_to = now()
             WHERE sheet_no >= :s AND status = 'current' RETURNING district_code
        """), {"s": TEST_SHEETS}).scalars().all()
        if districts:
            refresh_district_summary(conn, sorted(set(districts)))


@pytest.fixture(scope="module", autouse=True)
def free_templates(api_db: Engine) -> Iterator[None]:
    """Each district's first parcel, taken out for the module: its ground is where the
    tests lay their parcels (a parcel over a current one is refused, 409)."""
    with free_ground(api_db, "uid IN (SELECT min(uid) FROM cadastre.parcel "
                             "WHERE status = 'current' GROUP BY district_code)"):
        yield


WRITE_TIMEOUT = 60  # seconds: the shared test machine, not the write, sets the pace


def template(api_db: Engine, district: str) -> dict:
    """Geometry, commune and area of the district's first parcel (taken out for the
    module): a valid new parcel's shape, on free ground."""
    with api_db.connect() as conn:
        row = conn.execute(text("""
            SELECT commune_code, computed_area_m2, ST_AsGeoJSON(geom, 9) AS geometry
              FROM cadastre.parcel WHERE district_code = :d
             ORDER BY uid LIMIT 1
        """), {"d": district}).mappings().one()
    return {"commune_code": row["commune_code"], "area_m2": float(row["computed_area_m2"]),
            "geometry": json.loads(row["geometry"])}


def feature(tpl: dict, sheet: int, parcel: int, **props: object) -> dict:
    properties = {"commune_code": tpl["commune_code"], "sheet_no": sheet, "parcel_no": parcel,
                  "area_m2": tpl["area_m2"], "land_use": "ODT"}
    properties.update(props)
    return {"type": "Feature", "geometry": props.pop("geometry", tpl["geometry"]),
            "properties": {k: v for k, v in properties.items() if k != "geometry"}}


def count(api_db: Engine, district: str) -> int:
    with api_db.connect() as conn:
        return conn.execute(text("SELECT parcel_count FROM publish.districts "
                                 "WHERE district_code = :d"), {"d": district}).scalar_one()


def audit_rows(api_db: Engine, uid: int) -> list[dict]:
    with api_db.connect() as conn:
        return [dict(r) for r in conn.execute(text(
            "SELECT * FROM audit.write_log WHERE parcel_uid = :u ORDER BY id"),
            {"u": uid}).mappings()]


def assert_public_only(body: dict) -> None:
    """A write response carries the published properties and nothing else."""
    published = {f.name for f in PARCELS.fields}
    props = body["properties"]
    assert set(props) <= published, set(props) - published
    assert not [k for k in props if any(w in k for w in RESTRICTED_WORDS)]


def test_anonymous_writes_are_401(api: str, api_db: Engine) -> None:
    tpl = template(api_db, "001")
    base = f"{api}/collections/parcels-001/items"
    for r in (httpx.post(base, json=feature(tpl, TEST_SHEETS, 1)),
              httpx.put(f"{base}/1", json=feature(tpl, TEST_SHEETS, 1)),
              httpx.delete(f"{base}/1")):
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_expired_forged_and_malformed_tokens_are_401(api: str, api_db: Engine) -> None:
    tpl = template(api_db, "001")
    expired = token("officer", "001", ttl_s=60, now=time.time() - 3600)
    forged = issue_local("another-secret-" + "y" * 32, sub="mallory", role="admin")
    url = f"{api}/collections/parcels-001/items"
    for tok in (expired, forged, "not.a.jwt"):
        r = httpx.post(url, json=feature(tpl, TEST_SHEETS, 2), headers=bearer(tok))
        assert r.status_code == 401, r.text
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
        r = httpx.get(f"{api}/restricted/parcels/1/rights", headers=bearer(tok))
        assert r.status_code == 401
    r = httpx.post(url, json=feature(tpl, TEST_SHEETS, 2),
                   headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
    assert r.status_code == 401


def test_officer_creates_replaces_and_retires_a_parcel(api: str, api_db: Engine) -> None:
    http = httpx.Client(timeout=WRITE_TIMEOUT)  # a write re-counts a district of ~7,000
    tpl = template(api_db, "001")
    before_count = count(api_db, "001")
    url = f"{api}/collections/parcels-001/items"

    r = http.post(url, json=feature(tpl, TEST_SHEETS + 1, 1, address="1 Test Street"),
                   headers={**OFFICER_001, "X-Request-ID": "client-chosen-1"})
    assert r.status_code == 201, r.text
    # decided by the district's boundary (the samples' are loaded), not its extent
    assert r.headers["x-location-checked"] == "boundary"
    # the server files the write under its own id; the client's is kept beside it
    assert r.headers["x-request-id"] != "client-chosen-1"
    created = r.json()
    uid, etag = created["id"], r.headers["etag"]
    assert r.headers["location"].endswith(f"/collections/parcels-001/items/{uid}")
    assert created["properties"]["parcel_ref"] == f"{tpl['commune_code']}.{TEST_SHEETS + 1}.1"
    assert_public_only(created)
    got = http.get(r.headers["location"], params={"f": "json"})
    assert got.status_code == 200 and got.json()["properties"]["address"] == "1 Test Street"
    assert count(api_db, "001") == before_count + 1
    [audit] = audit_rows(api_db, uid)
    assert (audit["action"], audit["actor_sub"], audit["actor_role"],
            audit["actor_district"]) == ("create", "officer-001", "officer", "001")
    assert audit["before"] is None and audit["after"]["land_use"] == "ODT"
    assert (audit["request_id"], audit["client_request_id"]) == (
        r.headers["x-request-id"], "client-chosen-1")
    with api_db.connect() as conn:
        run = conn.execute(text("SELECT kind, run_by, inserted, status FROM etl.load_run "
                                "WHERE run_id = :r"), {"r": audit["load_run_id"]}).one()
    assert tuple(run) == ("api", "officer-001", 1, "loaded")

    # Replace: a stale ETag is refused, the current one accepted; the old version is kept.
    changed = feature(tpl, TEST_SHEETS + 1, 1, land_use="TMD", address="2 Test Street")
    r = http.put(f"{url}/{uid}", json=changed, headers={**OFFICER_001, "If-Match": '"stale"'})
    assert r.status_code == 412, r.text
    r = http.put(f"{url}/{uid}", json=changed, headers={**OFFICER_001, "If-Match": etag})
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["land_use"] == "TMD"
    assert_public_only(r.json())
    audits = audit_rows(api_db, uid)
    assert [a["action"] for a in audits] == ["create", "replace"]
    assert audits[1]["before"]["land_use"] == "ODT" and audits[1]["after"]["land_use"] == "TMD"
    with api_db.connect() as conn:
        history = conn.execute(text("SELECT land_use FROM cadastre.parcel_history "
                                    "WHERE uid = :u ORDER BY history_id"), {"u": uid}).scalars()
        assert list(history) == ["ODT"]

    # Retire: gone from the published collections and the count, kept as history.
    r = http.delete(f"{url}/{uid}", headers=OFFICER_001)
    assert r.status_code == 204, r.text
    assert http.get(f"{url}/{uid}", params={"f": "json"}).status_code == 404
    assert count(api_db, "001") == before_count
    audits = audit_rows(api_db, uid)
    assert audits[-1]["action"] == "delete" and audits[-1]["after"] is None
    assert audits[-1]["before"]["address"] == "2 Test Street"
    with api_db.connect() as conn:
        status, valid_to = conn.execute(text(
            "SELECT status, valid_to FROM cadastre.parcel WHERE uid = :u"), {"u": uid}).one()
        kinds = conn.execute(text("SELECT kind FROM cadastre.parcel_event WHERE parcel_uid = :u "
                                  "ORDER BY event_id"), {"u": uid}).scalars().all()
        versions = conn.execute(text("SELECT count(*) FROM cadastre.parcel_history "
                                     "WHERE uid = :u"), {"u": uid}).scalar_one()
    assert status == "historic" and valid_to is not None
    assert kinds == ["create", "update", "retire"] and versions == 2
    assert http.delete(f"{url}/{uid}", headers=OFFICER_001).status_code == 404


def test_officer_of_001_cannot_touch_district_492(api: str, api_db: Engine) -> None:
    tpl = template(api_db, "492")
    with api_db.connect() as conn:
        uid = conn.execute(text("SELECT min(uid) FROM cadastre.parcel "
                                "WHERE district_code = '492'")).scalar_one()
    snapshot = data_snapshot(api_db)
    url = f"{api}/collections/parcels-492/items"
    assert httpx.post(url, json=feature(tpl, TEST_SHEETS, 3),
                      headers=OFFICER_001).status_code == 403
    assert httpx.put(f"{url}/{uid}", json=feature(tpl, TEST_SHEETS, 3),
                     headers=OFFICER_001).status_code == 403
    assert httpx.delete(f"{url}/{uid}", headers=OFFICER_001).status_code == 403
    assert data_snapshot(api_db) == snapshot


def test_commune_of_another_district_is_refused(api: str, api_db: Engine) -> None:
    """Officer of 001 posting a commune of 003 into parcels-001: 403, because the officer
    has no right in 003 whatever collection the feature is sent to. An administrator, who
    has, gets 400: the feature belongs in parcels-003, not parcels-001."""
    tpl = template(api_db, "003")
    snapshot = data_snapshot(api_db)
    url = f"{api}/collections/parcels-001/items"
    r = httpx.post(url, json=feature(tpl, TEST_SHEETS, 4), headers=OFFICER_001)
    assert r.status_code == 403, r.text
    r = httpx.post(url, json=feature(tpl, TEST_SHEETS, 4), headers=ADMIN)
    assert r.status_code == 400 and "parcels-003" in r.json()["description"]
    assert data_snapshot(api_db) == snapshot


def test_validation_failures_carry_the_loaders_reasons(api: str, api_db: Engine) -> None:
    tpl = template(api_db, "001")
    url = f"{api}/collections/parcels-001/items"
    snapshot = data_snapshot(api_db)
    x, y = tpl["geometry"]["coordinates"][0][0][0]
    bowtie = {"type": "Polygon", "coordinates": [[[x, y], [x + 0.001, y + 0.001],
                                                  [x + 0.001, y], [x, y + 0.001], [x, y]]]}
    cases = [
        (feature(tpl, TEST_SHEETS, 5, geometry=bowtie), "geometry", "invalid geometry"),
        (feature(tpl, TEST_SHEETS, 5, land_use="XYZ"), "land_use", "unknown land-use code"),
        (feature(tpl, TEST_SHEETS, 5, area_m2=tpl["area_m2"] * 3), "area_m2", ""),
        (feature(tpl, TEST_SHEETS, 5, commune_code="99999"), "commune_code", "GSO"),
        (feature(tpl, 0, 5), "sheet_no", ""),
    ]
    for body, field, reason in cases:
        r = httpx.post(url, json=body, headers=OFFICER_001)
        assert r.status_code == 400, (field, r.text)
        issues = r.json()["issues"]
        assert any(i["field"] == field and reason in i["reason"] for i in issues), issues
    for bad in (b"{not json", b'{"type": "FeatureCollection"}',
                json.dumps(feature(tpl, TEST_SHEETS, 5, owner_name="X")).encode(),
                # properties of the wrong JSON types (a 500 before)
                json.dumps(feature(tpl, TEST_SHEETS, 5, sheet_no=[1])).encode(),
                json.dumps(feature(tpl, TEST_SHEETS, 5, area_m2={"v": 1})).encode(),
                json.dumps(feature(tpl, TEST_SHEETS, 5, land_use=True)).encode()):
        r = httpx.post(url, content=bad, headers={**OFFICER_001,
                                                  "Content-Type": "application/geo+json"})
        assert r.status_code == 400, r.text
    assert data_snapshot(api_db) == snapshot


def test_admin_writes_anywhere(api: str, api_db: Engine) -> None:
    http = httpx.Client(timeout=WRITE_TIMEOUT)  # a write re-counts a district of ~7,000
    for district in ("492", "003"):
        tpl = template(api_db, district)
        before = count(api_db, district)
        url = f"{api}/collections/parcels-{district}/items"
        r = http.post(url, json=feature(tpl, TEST_SHEETS + 2, 1), headers=ADMIN)
        assert r.status_code == 201, r.text
        uid = r.json()["id"]
        assert count(api_db, district) == before + 1
        assert http.post(url, json=feature(tpl, TEST_SHEETS + 2, 1),
                          headers=ADMIN).status_code == 409
        assert http.delete(f"{url}/{uid}", headers=ADMIN).status_code == 204
        # the retired number given again brings the same parcel back, then retire it again
        r = http.post(url, json=feature(tpl, TEST_SHEETS + 2, 1), headers=ADMIN)
        assert r.status_code == 201 and r.json()["id"] == uid
        assert http.delete(f"{url}/{uid}", headers=ADMIN).status_code == 204
        assert count(api_db, district) == before
        assert [a["actor_role"] for a in audit_rows(api_db, uid)] == ["admin"] * 4


def test_writes_only_on_district_collections(api: str, api_db: Engine) -> None:
    tpl = template(api_db, "001")
    r = httpx.post(f"{api}/collections/parcels/items", json=feature(tpl, TEST_SHEETS, 6),
                   headers=ADMIN)
    assert r.status_code == 405


def test_restricted_rights_by_role_and_district(api: str, api_db: Engine) -> None:
    with api_db.connect() as conn:
        uid, name, serial = conn.execute(text("""
            SELECT r.parcel_uid, pa.full_name, c.serial FROM restricted.land_right r
              JOIN restricted.party pa USING (party_id)
              JOIN restricted.certificate c USING (certificate_id)
             WHERE r.district_code = '001' AND r.valid_to IS NULL ORDER BY r.right_id LIMIT 1
        """)).one()
    url = f"{api}/restricted/parcels/{uid}/rights"

    def reads() -> list[tuple]:
        with api_db.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT actor_sub, actor_role, reason, request_id FROM audit.write_log "
                "WHERE action = 'read_rights' AND parcel_uid = :u ORDER BY id"), {"u": uid})]

    before = reads()
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers=OFFICER_003).status_code == 403
    assert reads() == before  # refused reads read nothing
    for headers, reason in ((OFFICER_001, "hồ sơ chuyển nhượng 123/2026"), (ADMIN, None)):
        r = httpx.get(url, headers=headers, params={"reason": reason} if reason else None)
        assert r.status_code == 200, r.text
        rights = r.json()["rights"]
        assert name in [x["party"]["name"] for x in rights]
        assert serial in [x["certificate"]["serial"] for x in rights if x["certificate"]]
        assert r.headers["cache-control"] == "no-store"
        # who read which parcel's owners, and why: audited with the read
        *_, last = reads()
        assert last[1:3] == ("officer" if headers is OFFICER_001 else "admin", reason)
        assert last[3] == r.headers["x-request-id"]
    assert len(reads()) == len(before) + 2
    assert httpx.get(f"{api}/restricted/parcels/999999999/rights",
                     headers=ADMIN).status_code == 404
    assert httpx.get(url, headers=ADMIN, params={"reason": "x" * 501}).status_code == 400


def test_audit_log_is_append_only_and_not_public(api_db: Engine, manifest: list[dict]
                                                 ) -> None:
    with api_db.connect() as conn:
        loads = conn.execute(text("""
            SELECT a.actor_sub, a.actor_role, r.run_by FROM audit.write_log a
              JOIN etl.load_run r ON r.run_id = a.load_run_id
             WHERE a.action = 'load' AND r.kind = 'parcels'
               AND a.actor_role NOT IN ('officer', 'admin')
               AND regexp_replace(r.file_name, '^.*/', '') = ANY(:samples)
        """), {"samples": [e["file"] for e in manifest]}).all()
    # the operator's loads (`lis load samples`): audited, with the OS user as the actor
    # (file loads through the API, cadastre/tests/test_cadastre_uploads.py, name the token's role)
    assert len(loads) == 4
    assert {tuple(row) for row in loads} == {(getpass.getuser(), "operator", getpass.getuser())}
    for stmt in ("UPDATE audit.write_log SET actor_sub = 'x'", "DELETE FROM audit.write_log",
                 "TRUNCATE audit.write_log"):
        with api_db.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text(stmt))
    with api_db.connect() as conn, pytest.raises(DBAPIError, match="permission denied"):
        conn.execute(text(f"SET ROLE {PUBLIC_ROLE}"))
        conn.execute(text("SELECT count(*) FROM audit.write_log"))


def test_cli_issues_tokens_the_server_accepts(api: str, api_db: Engine) -> None:
    env = {**os.environ, "LIS_AUTH_SECRET": TEST_AUTH_SECRET}
    out = subprocess.run([sys.executable, "-m", "lis.cli", "token", "issue",
                          "--sub", "cli-officer", "--role", "officer", "--district", "003",
                          "--ttl", "5m"], env=env, capture_output=True, text=True, check=True)
    with api_db.connect() as conn:
        uid = conn.execute(text("SELECT min(parcel_uid) FROM restricted.land_right "
                                "WHERE district_code = '003'")).scalar_one()
    r = httpx.get(f"{api}/restricted/parcels/{uid}/rights", headers=bearer(out.stdout.strip()))
    assert r.status_code == 200, r.text
    refused = subprocess.run([sys.executable, "-m", "lis.cli", "token", "issue",
                              "--sub", "x", "--role", "admin"], capture_output=True, text=True,
                             env={**env, "LIS_AUTH_JWKS_URL": "https://idp.example/jwks"})
    assert refused.returncode != 0 and "LIS_AUTH_JWKS_URL" in refused.stderr


def test_conformance_claims_part_4(api: str) -> None:
    classes = httpx.get(f"{api}/conformance", params={"f": "json"}).json()["conformsTo"]
    assert PART4 in classes


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[tuple[str, object]]:
    """A local OIDC provider's JWKS endpoint (a real HTTP server) and its private key."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/certs", key
    server.shutdown()


def test_external_oidc_tokens(jwks_server: tuple[str, object],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    url, key = jwks_server
    monkeypatch.setenv("LIS_AUTH_JWKS_URL", url)
    monkeypatch.setenv("LIS_AUTH_ISSUER", "https://idp.example/realms/land")
    monkeypatch.setenv("LIS_AUTH_AUDIENCE", "lis-api")
    verifier = TokenVerifier(Settings())
    now = int(time.time())
    claims = {"iss": "https://idp.example/realms/land", "aud": "lis-api", "sub": "u-42",
              "exp": now + 300, "realm_access": {"roles": ["offline_access", "officer"]},
              "district": "491"}
    good = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})
    assert verifier.verify(good) == Claims("u-42", "officer", "491")
    bad = [
        jwt.encode({**claims, "aud": "other"}, key, algorithm="RS256", headers={"kid": "k1"}),
        jwt.encode({**claims, "iss": "https://evil"}, key, algorithm="RS256",
                   headers={"kid": "k1"}),
        jwt.encode({k: v for k, v in claims.items() if k != "exp"}, key, algorithm="RS256",
                   headers={"kid": "k1"}),
        jwt.encode({**claims, "realm_access": {"roles": ["viewer"]}}, key, algorithm="RS256",
                   headers={"kid": "k1"}),
        jwt.encode({**claims, "district": None}, key, algorithm="RS256", headers={"kid": "k1"}),
        issue_local(TEST_AUTH_SECRET, sub="x", role="admin"),  # HS256: not this mode's
    ]
    for tok in bad:
        with pytest.raises(InvalidToken):
            verifier.verify(tok)
