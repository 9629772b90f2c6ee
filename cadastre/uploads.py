"""File loads through the API: an officer loads a delivered parcel file for their own
district, or for their own 2025 commune's parcels of a district
(``POST /districts/{district_code}/loads/parcels``).

Why through the loader: an uploaded file is the same delivery an operator loads with
``lis load parcels``, so it goes through ``cadastre.loader.load_parcels`` unchanged (the same
validation, one transaction, a recorded load run, re-loading changes nothing), with two
additions only: ``only_districts`` (every feature must lie in the path's district, checked
before anything is merged; a file of another district is not an officer's to load) and
``actor`` (the run's ``run_by`` and the audit row name the token's subject and role, through
the same trigger that audits the operator's loads, see ``etl/actor.py``). A commune officer
(scoped by a 2025 commune) adds ``only_commune``: every parcel the file writes or retires
must lie in their commune, as the 2025 units are decided on the stage (by the 2025
boundary, else the crosswalk); a file with others is refused naming them (quarantine
leaves them out).

Rights are decided before a byte of the body is read: no token 401, unknown district 404,
an officer of another district 403, a commune officer whose commune has no part in the
district 403. The upload is streamed to a private temporary directory
under ``LIS_VAR_DIR/uploads`` (never held in memory) and deleted when the request ends; its
size is capped by ``LIS_MAX_UPLOAD_BYTES`` (the body-limit middleware, 413). A .zip must hold
one Shapefile set; it is checked (member names, count, real uncompressed size) and
extracted by this module, never handed to a generic unzip.
"""

# No ``from __future__ import annotations``: FastAPI must see the route's Annotated
# dependency as an object (as in writes.py).
import codecs
import re
import shutil
import stat
import tempfile
import threading
import time
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy import text
from sqlalchemy.engine import Engine

from cadastre.loader import load_parcels
from cadastre.rules import Options
from etl.actor import Actor
from etl.report import LoadResult
from etl.sources import SHAPEFILE_PARTS, ZipTooLarge, expand_member, zip_bomb
from landplatform.auth.principal import Principal, forbidden, principal_dependency, require
from landplatform.auth.tokens import TokenVerifier
from landplatform.http import request_id
from landplatform.settings import Settings

DISTRICT = re.compile(r"^\d{3}$")
FILE_SUFFIXES = (".gpkg", ".geojson", ".json", ".zip")
# Sidecars GIS tools put next to a Shapefile: skipped, not refused.
SHAPEFILE_SIDECARS = (".sbn", ".sbx", ".qpj", ".xml", ".qmd", ".cst", ".qix")
MAX_ZIP_MEMBERS = 16
UNZIP_FACTOR = 5  # a .zip may expand to this many times LIS_MAX_UPLOAD_BYTES
MAX_FIELDS = 8
MAX_FIELD_BYTES = 1024
MAX_REJECTS_SHOWN = 1000
DISTRICTS_TTL_S = 60.0
SAFE_NAME = re.compile(r"[^\w.\-]+")


@dataclass
class LoadRequestError(Exception):
    """A request this route refuses before loading (4xx with a reason)."""

    status: int
    code: str
    description: str
    retry_after: int | None = None

    def response(self, request_id: str) -> JSONResponse:
        headers = {"X-Request-ID": request_id}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return JSONResponse({"code": self.code, "description": self.description},
                            status_code=self.status, headers=headers)


def bad(description: str) -> LoadRequestError:
    return LoadRequestError(400, "InvalidParameterValue", description)


@dataclass
class Upload:
    """What the multipart body held: the file (on disk) and the text fields."""

    path: Path | None = None
    fields: dict[str, str] = field(default_factory=dict)


def safe_name(filename: str) -> str:
    """The client's file name reduced to a plain file name: no directories (either
    separator), no characters a shell or GDAL could read as syntax; kept readable because
    it is what the load run records."""
    name = PureWindowsPath(PurePosixPath(filename).name).name
    name = SAFE_NAME.sub("_", unicodedata.normalize("NFC", name)).strip("._")
    return name[-120:] or "upload"


class MultipartUpload:
    """Streams a ``multipart/form-data`` body: the ``file`` part straight into ``directory``
    (so a 200 MB upload never sits in memory), small text fields into memory."""

    def __init__(self, directory: Path, charset: str = "utf-8") -> None:
        self.directory = directory
        self.charset = charset
        self.upload = Upload()
        self._name = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}
        self._field: str | None = None
        self._data = bytearray()
        self._out = None

    # python-multipart callbacks -------------------------------------------------------
    def on_part_begin(self) -> None:
        self._headers, self._field, self._data = {}, None, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._name.lower()] = self._value
        self._name, self._value = b"", b""

    def on_headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        name = options.get(b"name")
        if name is None:
            raise bad("a multipart part has no name (Content-Disposition: form-data; name=...)")
        self._field = name.decode(self.charset, "replace")
        if b"filename" in options:
            if self._field != "file":
                raise bad(f"unexpected file part {self._field!r}: send the delivery as the "
                          "part named 'file'")
            if self.upload.path is not None:
                raise bad("one file per request: send a Shapefile set as one .zip")
            filename = safe_name(options[b"filename"].decode(self.charset, "replace"))
            if not filename.lower().endswith(FILE_SUFFIXES):
                raise bad(f"{filename}: not a delivery this route loads; send a GeoPackage "
                          "(.gpkg), GeoJSON (.geojson, .json) or a .zip holding one "
                          "Shapefile (.shp, .shx, .dbf, .prj, .cpg)")
            self.upload.path = self.directory / filename
            self._out = self.upload.path.open("xb")
        elif len(self.upload.fields) >= MAX_FIELDS:
            raise bad(f"more than {MAX_FIELDS} form fields")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._out is not None:
            self._out.write(data[start:end])
            return
        self._data += data[start:end]
        if len(self._data) > MAX_FIELD_BYTES:
            raise bad(f"form field {self._field!r} is longer than {MAX_FIELD_BYTES} bytes")

    def on_part_end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        elif self._field is not None:
            self.upload.fields[self._field] = self._data.decode(self.charset, "replace")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()

    async def read(self, request: Request) -> Upload:
        """Parse the request body; 400 for a body that is not a usable multipart form."""
        content_type = request.headers.get("content-type", "")
        kind, params = parse_options_header(content_type)
        if kind != b"multipart/form-data" or not params.get(b"boundary"):
            raise LoadRequestError(415, "UnsupportedMediaType",
                                   "send the file as multipart/form-data (field 'file'), e.g. "
                                   "curl -F file=@thua_dat.gpkg")
        callbacks = {name: getattr(self, name) for name in (
            "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
            "on_headers_finished", "on_part_data", "on_part_end")}
        parser = MultipartParser(params[b"boundary"], callbacks)
        try:
            # Disk writes of the file part happen in the callbacks, synchronously: chunks
            # are at most the server's read size (64 KiB), cheaper to write than to hand
            # to a thread one by one.
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
        except FormParserError as exc:
            raise bad(f"the multipart body is malformed: {exc}") from None
        finally:
            self.close()
        if self.upload.path is None:
            raise bad("no file: send the delivery as the multipart part named 'file'")
        return self.upload


def extract_shapefile(archive: Path, directory: Path, max_bytes: int) -> Path:
    """The .shp of the one Shapefile set in ``archive``, extracted into ``directory``.

    Refused (400) before anything is written outside ``directory`` or beyond ``max_bytes``:
    member names with directories climbing out (``../``), absolute or drive paths, links,
    more than MAX_ZIP_MEMBERS members, members other than one Shapefile's parts, and a
    real uncompressed size over ``max_bytes`` (counted while extracting, so a directory
    that understates sizes cannot hide a bomb).
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise bad(f"{archive.name}: not a readable .zip archive ({exc})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise bad(f"{archive.name}: {len(infos)} members, more than {MAX_ZIP_MEMBERS}; a "
                      "delivery .zip holds one Shapefile (.shp, .shx, .dbf, .prj, .cpg)")
        wanted: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if (name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name)
                    or "\x00" in name):
                raise bad(f"{archive.name}: member {name!r} has an unsafe path (absolute or "
                          "climbing out with '..'); refused")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise bad(f"{archive.name}: member {name!r} is a symbolic link; refused")
            if info.is_dir() or parts[0] == "__MACOSX" or parts[-1] == ".DS_Store":
                continue
            suffix = PurePosixPath(parts[-1]).suffix.lower()
            if suffix in SHAPEFILE_SIDECARS:
                continue
            if suffix not in SHAPEFILE_PARTS:
                raise bad(f"{archive.name}: member {name!r} is not part of a Shapefile "
                          "(.shp, .shx, .dbf, .prj, .cpg); a delivery .zip holds one "
                          "Shapefile")
            if suffix in wanted:
                raise bad(f"{archive.name}: more than one {suffix} file; a delivery .zip "
                          "holds one Shapefile (send one file per request)")
            wanted[suffix] = info
        missing = [s for s in (".shp", ".shx", ".dbf") if s not in wanted]
        if missing:
            raise bad(f"{archive.name}: no Shapefile set inside ({', '.join(missing)} "
                      "missing)")
        stems = {PurePosixPath(i.filename.replace("\\", "/")).stem for i in wanted.values()}
        if len(stems) > 1:
            raise bad(f"{archive.name}: the Shapefile parts have different names "
                      f"({', '.join(sorted(stems))})")
        if sum(i.file_size for i in wanted.values()) > max_bytes:
            raise bad(f"{archive.name} expands beyond {max_bytes:,} bytes; refused")
        for info in wanted.values():  # the loader's zip-bomb rule, member by member
            if zip_bomb(info):
                raise bad(f"{archive.name}: member {info.filename!r} expands "
                          f"{info.file_size / max(info.compress_size, 1):,.0f} times; "
                          "refused as a zip bomb")
        stem = safe_name(stems.pop())
        total = 0
        for suffix, info in wanted.items():
            target = directory / f"{stem}{suffix}"  # our name, never the member's path
            try:
                with target.open("xb") as out:
                    total = expand_member(zf, info, total, max_bytes, out)
            except ZipTooLarge:
                raise bad(f"{archive.name} expands beyond {max_bytes:,} bytes; refused") \
                    from None
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError,
                    RuntimeError) as exc:  # damaged, encrypted, unknown compression
                raise bad(f"{archive.name}: member {info.filename!r} cannot be extracted "
                          f"({exc})") from None
    return directory / f"{stem}.shp"


def parse_bool(name: str, value: str | None) -> bool:
    if value is None or value.strip() == "":
        return False
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise bad(f"{name} must be true or false, not {value!r}")


def report(result: LoadResult, district: str, file_name: str) -> tuple[int, dict]:
    """(HTTP status, JSON report) of a load. 201: something was written; 200: nothing
    changed (the same file again); 422: rejected or unreadable, nothing loaded."""
    changed = result.inserted + result.updated
    matched = changed + result.unchanged
    if result.status != "loaded" or (result.rejects and matched == 0):
        status, outcome = 422, result.status if result.status != "loaded" else "rejected"
    elif changed:
        status, outcome = 201, "loaded"
    else:
        status, outcome = 200, "unchanged"
    rejects = [{"feature": i.feature_no, "field": i.field, "reason": i.reason,
                "value": i.value} for i in result.rejects[:MAX_REJECTS_SHOWN]]
    body = {"run_id": result.run_id, "status": outcome, "district": district,
            "file": file_name, "mode": result.mode,
            "counts": {"read": result.features_read, "inserted": result.inserted,
                       "updated": result.updated, "unchanged": result.unchanged,
                       "rejected": result.rejected, "repaired": len(result.repairs)},
            "rejects": rejects, "rejects_total": len(result.rejects),
            "rejects_shown": len(rejects)}
    if result.message:
        body["message"] = result.message
    if len(result.rejects) > MAX_REJECTS_SHOWN:
        body["rejects_note"] = (f"the first {MAX_REJECTS_SHOWN} of {len(result.rejects)} "
                                f"rejects; all are recorded with run {result.run_id}")
    return status, body


class LoadService:
    """Checks rights and the upload, runs the loader in a worker thread; one per app."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.upload_root = settings.var_dir / "uploads"
        self.max_unzipped = min(settings.max_delivery_bytes,
                                UNZIP_FACTOR * settings.max_upload_bytes)
        self._districts: set[str] = set()
        self._districts_at = 0.0
        # Loads at once: a load takes a core and a long transaction; beyond the limit a
        # client is told to come back (503) rather than queued behind the others.
        self._slots = threading.BoundedSemaphore(settings.max_concurrent_uploads)

    def known_district(self, code: str) -> bool:
        """Districts with communes in the GSO catalogue (cached briefly, as in writes.py)."""
        if not DISTRICT.match(code):
            return False
        if time.monotonic() - self._districts_at > DISTRICTS_TTL_S:
            with self.engine.connect() as conn:
                self._districts = set(conn.execute(text("""
                    SELECT DISTINCT parent_code FROM admin.admin_unit
                     WHERE level = 'commune' AND valid_to = DATE '2025-06-30'
                """)).scalars())
            self._districts_at = time.monotonic()
        return code in self._districts

    def authorise(self, principal: Principal | None, district: str) -> Principal:
        """401 without a token, 404 for an unknown district, 403 for another district
        (or, for a commune officer, a district no part of their commune lies in)."""
        caller = require(principal)
        if not self.known_district(district):
            raise LoadRequestError(404, "NotFound", f"no district {district}")
        if caller.role == "officer" and caller.commune is not None:
            # Which parcels of the file lie in the commune is decided on the stage, by
            # the loader (``only_commune``); here: could any of them?
            if not self.commune_reaches(caller.commune, district):
                raise forbidden(caller, district, f"district {district}'s file loads (no "
                                f"part of commune {caller.commune} lies in it)")
            return caller
        if not caller.may_act_in(district):
            raise forbidden(caller, district)
        return caller

    def commune_reaches(self, commune: str, district: str) -> bool:
        """Whether any old commune of ``district`` went (wholly or in part) into the 2025
        ``commune``, by the crosswalk."""
        with self.engine.connect() as conn:
            return conn.execute(text("""
                SELECT EXISTS (
                    SELECT 1 FROM admin.admin_unit_map m
                      JOIN admin.admin_unit c ON c.code = m.old_code AND c.level = 'commune'
                       AND c.valid_to = DATE '2025-06-30'
                     WHERE m.new_code = :commune AND c.parent_code = :district)
            """), {"commune": commune, "district": district}).scalar_one()

    async def load(self, request: Request, caller: Principal, district: str,
                   request_id: str) -> JSONResponse:
        if not self._slots.acquire(blocking=False):
            raise LoadRequestError(503, "ServiceUnavailable", "other file loads are "
                                   "running; try again shortly", retry_after=30)
        try:
            return await self._load(request, caller, district, request_id)
        finally:
            self._slots.release()

    async def _load(self, request: Request, caller: Principal, district: str,
                    request_id: str) -> JSONResponse:
        self.upload_root.mkdir(parents=True, exist_ok=True, mode=0o700)
        directory = Path(tempfile.mkdtemp(prefix="load-", dir=self.upload_root))
        try:
            upload = await MultipartUpload(directory).read(request)
            fields = {**upload.fields, **request.query_params}  # the query string wins
            unknown = sorted(set(fields) - {"crs", "quarantine", "encoding"})
            if unknown:
                raise bad(f"unknown options: {', '.join(unknown)} (known: crs, quarantine, "
                          "encoding)")
            quarantine = parse_bool("quarantine", fields.get("quarantine"))
            crs = (fields.get("crs") or "").strip() or None
            encoding = (fields.get("encoding") or "").strip() or None
            if encoding is not None:
                try:
                    codecs.lookup(encoding)
                except LookupError:
                    raise bad(f"encoding {encoding!r} is not a known text encoding "
                              "(e.g. utf-8, cp1258)") from None
            file_name = upload.path.name
            path = upload.path
            if path.suffix.lower() == ".zip":
                unpacked = directory / "unpacked"
                unpacked.mkdir()
                path = await run_in_threadpool(extract_shapefile, path, unpacked,
                                               self.max_unzipped)
            actor = Actor(caller.sub, caller.role, caller.district or caller.commune,
                          district, request_id)
            result = await run_in_threadpool(
                load_parcels, self.engine, path, options=Options(crs=crs),
                quarantine=quarantine, encoding=encoding, only_districts={district},
                actor=actor, name=f"upload:{file_name}",
                only_commune=caller.commune if caller.role == "officer" else None)
            status, body = report(result, district, file_name)
            return JSONResponse(body, status_code=status, headers={"X-Request-ID": request_id})
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def loads_router(service: LoadService, verifier: TokenVerifier) -> APIRouter:
    """``POST /districts/{district_code}/loads/parcels``."""
    router = APIRouter()
    Caller = Annotated[Principal | None, Depends(principal_dependency(verifier))]
    body_schema = {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "the delivery: .gpkg, .geojson/.json, or a .zip of one "
                                "Shapefile (.shp, .shx, .dbf, .prj, .cpg)"},
        "crs": {"type": "string", "description": "CRS when the file has none, e.g. EPSG:5897"},
        "quarantine": {"type": "boolean", "description": "load the valid features, "
                       "report the rejected ones (default: all or nothing)"},
        "encoding": {"type": "string", "description": "text encoding of a DBF without .cpg"},
    }}

    @router.post("/districts/{district_code}/loads/parcels", tags=["loads"],
                 status_code=201,
                 responses={200: {"description": "nothing changed (the same file again)"},
                            400: {"description": "unusable request or archive"},
                            401: {"description": "no or bad bearer token"},
                            403: {"description": "not an officer of this district (or of a "
                                                  "2025 commune with parcels in it)"},
                            404: {"description": "no such district"},
                            413: {"description": "over LIS_MAX_UPLOAD_BYTES"},
                            422: {"description": "rejected: nothing loaded (report)"}},
                 openapi_extra={"requestBody": {"required": True, "content": {
                     "multipart/form-data": {"schema": body_schema}}}})
    async def load_parcels_file(request: Request, district_code: str,
                                principal: Caller) -> JSONResponse:
        """Load a delivered parcel file for one district (officer of it, an officer of a
        2025 commune for that commune's parcels only, or admin), as ``lis load parcels``
        does: validated, all or nothing (or ``quarantine``), recorded and audited as the
        caller's load."""
        rid = request_id(request)
        try:
            caller = await run_in_threadpool(service.authorise, principal, district_code)
            return await service.load(request, caller, district_code, rid)
        except LoadRequestError as exc:
            return exc.response(rid)

    return router
