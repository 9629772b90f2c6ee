"""The cadastre's HTTP routes: the parcel look-up by number, Part 4 writes and restricted
reads, and officers' file loads; built from the platform's services (``Domain.routers``)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path

from cadastre.layers import PARCELS
from cadastre.lookup import find_parcel
from cadastre.uploads import LoadService, loads_router
from cadastre.writes import WriteService, writes_router
from landplatform.domain import Services


def lookup_router(base_url: str) -> APIRouter:
    router = APIRouter()

    @router.get("/cadastre/parcels/{commune_code}/{sheet_no}/{parcel_no}", tags=["cadastre"])
    def parcel_by_number(commune_code: str = Path(pattern=r"^\d{5}$"),
                         sheet_no: int = Path(gt=0), parcel_no: int = Path(gt=0)) -> dict:
        """A parcel by commune code + map sheet number + parcel number, as GeoJSON."""
        feature = find_parcel(commune_code, sheet_no, parcel_no)
        if feature is None:
            raise HTTPException(404, f"no current parcel {sheet_no}/{parcel_no} in commune "
                                     f"{commune_code}")
        district = feature["properties"]["district_code"]
        feature["links"] = [
            {"rel": "self", "type": "application/geo+json",
             "href": f"{base_url}/collections/{PARCELS.key}/items/{feature['id']}"},
            {"rel": "collection", "type": "application/json",
             "href": f"{base_url}/collections/{PARCELS.key}-{district}"},
        ]
        return feature

    return router


def routers(services: Services) -> list[APIRouter]:
    settings = services.settings
    return [
        lookup_router(settings.base_url),
        # Writes (Features Part 4) and restricted reads: read/write engine, bearer tokens.
        writes_router(WriteService(services.engine, settings.base_url), services.verifier),
        # File loads by district officers (multipart upload, run through the loader).
        loads_router(LoadService(services.engine, settings), services.verifier),
    ]
