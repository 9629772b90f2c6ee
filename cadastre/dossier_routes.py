"""HTTP routes of the dossiers (``cadastre.dossiers``): file, show, register, withdraw,
and the audited "is this parcel mortgaged or frozen?" read. Officers act in their own
district, or on the parcels of their own 2025 commune; administrators anywhere; the public
gets 401."""

# No ``from __future__ import annotations``: FastAPI must see the Annotated dependency.
import json
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from cadastre.dossiers import Actor, DossierError, DossierService
from cadastre.writes import MAX_REASON
from landplatform.auth.principal import Principal, principal_dependency, require
from landplatform.auth.tokens import TokenVerifier
from landplatform.http import client_request_id, request_id

MAX_BODY = 4 * 1024 * 1024  # a split of many children with detailed boundaries


def _actor(principal: Principal | None) -> Actor:
    who = require(principal)
    return Actor(who.sub, who.role, who.district or who.commune, who)


def _id(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 18 or int(value) == 0:
        raise DossierError(404, "NotFound", "identifier not found")
    return int(value)


def dossiers_router(service: DossierService, verifier: TokenVerifier) -> APIRouter:
    router = APIRouter()
    Caller = Annotated[Principal | None, Depends(principal_dependency(verifier))]

    def answer(rid: str, status: int, doc: dict) -> JSONResponse:
        return JSONResponse(json.loads(json.dumps(doc, default=str)), status_code=status,
                            headers={"Cache-Control": "no-store", "X-Request-ID": rid})

    async def run(request: Request, fn, *args) -> JSONResponse:  # noqa: ANN001
        rid = request_id(request)
        try:
            status, doc = await run_in_threadpool(fn, *args)
            return answer(rid, status, doc)
        except DossierError as exc:
            return answer(rid, exc.status, exc.body())

    @router.post("/cadastre/dossiers", tags=["cadastre dossiers"], status_code=201)
    async def file_dossier(request: Request, principal: Caller) -> JSONResponse:
        """File a dossier (JSON: kind, receipt_no, received_date, parcels, ... and
        ``register: true`` to register it at once); 422 lists every reason it is refused."""
        actor = _actor(principal)
        body = await request.body()
        rid = request_id(request)
        if len(body) > MAX_BODY:
            return answer(rid, 413, {"code": "PayloadTooLarge", "description":
                                     f"a dossier is at most {MAX_BODY // 2**20} MiB"})
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return answer(rid, 400, {"code": "InvalidBody", "description": "not JSON"})
        return await run(request, service.file, actor, doc,
                         (rid, client_request_id(request)))

    @router.get("/cadastre/dossiers/{dossier_id}", tags=["cadastre dossiers"])
    async def show_dossier(request: Request, dossier_id: str,
                           principal: Caller) -> JSONResponse:
        """A dossier with its pending (or registered) parcels."""
        actor = _actor(principal)
        return await run(request, lambda: (200, service.show(actor, _id(dossier_id))))

    @router.post("/cadastre/dossiers/{dossier_id}/register", tags=["cadastre dossiers"])
    async def register_dossier(request: Request, dossier_id: str,
                               principal: Caller) -> JSONResponse:
        """Register a filed dossier: one transaction, or 409/422 and nothing changed."""
        actor = _actor(principal)
        ids = (request_id(request), client_request_id(request))
        return await run(request, lambda: (200, service.register(actor, _id(dossier_id),
                                                                 ids)))

    @router.post("/cadastre/dossiers/{dossier_id}/withdraw", tags=["cadastre dossiers"])
    async def withdraw_dossier(request: Request, dossier_id: str,
                               principal: Caller) -> JSONResponse:
        """Withdraw a filed dossier (its pending parcels go)."""
        actor = _actor(principal)
        return await run(request, lambda: (200, service.withdraw(actor, _id(dossier_id))))

    @router.get("/restricted/parcels/{uid}/encumbrances", tags=["restricted"])
    async def encumbrances(request: Request, uid: str, principal: Caller) -> JSONResponse:
        """Is the parcel mortgaged or frozen? (own district/admin; the read is audited,
        with ``?reason=`` if given)."""
        actor = _actor(principal)
        why = request.query_params.get("reason")
        if why is not None and (len(why) > MAX_REASON or "\x00" in why):
            return answer(request_id(request), 400, {
                "code": "InvalidParameterValue",
                "description": f"reason is at most {MAX_REASON} characters of text"})
        ids = (request_id(request), client_request_id(request))
        return await run(request, lambda: (200, service.encumbrances(actor, _id(uid), ids,
                                                                     why)))

    return router
