"""The FastAPI application: pygeoapi's OGC APIs at the root, plus what OGC does not cover.

Routes of our own (``/health``, the cadastral look-up, the map, the JSON features path,
vector tiles, ``/conformance``) are declared before pygeoapi is mounted at ``/``, so they
win; everything else is pygeoapi.
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Path
from fastapi.responses import JSONResponse
from sqlalchemy import text

from landplatform import __version__
from landplatform.auth.tokens import TokenVerifier
from landplatform.db import get_engine
from landplatform.limits import BodyLimitMiddleware
from landplatform.migrate import expected_heads
from landplatform.publish.conformance import conformance_router
from landplatform.publish.coverage_guard import coverage_files, coverage_router
from landplatform.publish.engine import get_public_engine
from landplatform.publish.fast_lane import FeaturesFastLane
from landplatform.publish.features_api import (
    FeaturesService,
    collections_from_config,
    features_router,
)
from landplatform.publish.loads import LOAD_PATHS, LoadService, loads_router
from landplatform.publish.ogc_app import build_ogc_app
from landplatform.publish.resources import Publisher, build_config
from landplatform.publish.tiles import tiles_router
from landplatform.publish.writes import WriteService, writes_router
from landplatform.settings import Settings, get_settings
from landplatform.web import map_router


def domain_publishers() -> list[Publisher]:
    """Collections and processes the domains add (the app is a composition root)."""
    from planning.publish import publisher as planning_publisher
    from valuation.publish import publisher as valuation_publisher

    return [planning_publisher, valuation_publisher]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = get_public_engine()
    config = build_config(engine, settings, domain_publishers())
    app = FastAPI(title="Land information platform", version=__version__,
                  docs_url="/api-docs", redoc_url=None, openapi_url="/api-docs/openapi.json")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       overrides=[(LOAD_PATHS, settings.max_upload_bytes)])
    heads = expected_heads()

    @app.get("/health", tags=["platform"])
    def health() -> JSONResponse:
        """Liveness and readiness: the database answers and the schema is current."""
        try:
            with engine.connect() as conn:
                current = set(conn.execute(text(
                    "SELECT version_num FROM public.alembic_version")).scalars())
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return JSONResponse({"status": "unavailable", "database": str(exc)[:200]},
                                status_code=503, headers={"Retry-After": "5"})
        ok = current == heads
        return JSONResponse({"status": "ok" if ok else "degraded", "database": "ok",
                             "schema": sorted(current), "expected_schema": sorted(heads),
                             "version": __version__}, status_code=200 if ok else 503)

    @app.get("/cadastre/parcels/{commune_code}/{sheet_no}/{parcel_no}", tags=["cadastre"])
    def parcel_by_number(commune_code: str = Path(pattern=r"^\d{5}$"),
                         sheet_no: int = Path(gt=0), parcel_no: int = Path(gt=0)) -> dict:
        """A parcel by commune code + map sheet number + parcel number, as GeoJSON."""
        from cadastre.lookup import find_parcel

        feature = find_parcel(commune_code, sheet_no, parcel_no)
        if feature is None:
            raise HTTPException(404, f"no current parcel {sheet_no}/{parcel_no} in commune "
                                     f"{commune_code}")
        base = settings.base_url
        feature["links"] = [
            {"rel": "self", "type": "application/geo+json",
             "href": f"{base}/collections/parcels/items/{feature['id']}"},
            {"rel": "collection", "type": "application/json",
             "href": f"{base}/collections/parcels-{feature['properties']['district_code']}"},
        ]
        return feature

    app.include_router(map_router)  # the planner's map: /map, /map/static/...
    from valuation.routes import router as valuation_router

    app.include_router(valuation_router)  # price-surface PNG previews for the map
    app.state.pygeoapi_config = config
    ogc = build_ogc_app(config, settings.var_dir / "pygeoapi")
    from pygeoapi.starlette_app import collection_coverage as pygeoapi_coverage
    from pygeoapi.starlette_app import collection_items as pygeoapi_items

    # The JSON features path, vector tiles and /conformance are ours; pygeoapi serves
    # everything else (and the HTML/JSON-LD items pages, handed over by the router).
    service = FeaturesService(engine, collections_from_config(config), settings.base_url,
                              settings.page_limit_default, settings.page_limit_max)
    app.include_router(features_router(service, pygeoapi_items))
    # GET items/item for GeoJSON skip the app's stack (same service, same answers)
    app.add_middleware(FeaturesFastLane, service=service, threads=settings.pool_size)
    app.include_router(tiles_router(service))
    app.include_router(conformance_router(config))
    app.include_router(coverage_router(coverage_files(config), pygeoapi_coverage))
    # Writes (Features Part 4) and restricted reads: read/write engine, bearer tokens.
    verifier = TokenVerifier(settings)
    app.include_router(writes_router(WriteService(get_engine(), settings.base_url), verifier))
    # File loads by district officers (multipart upload, run through etl.parcels).
    app.include_router(loads_router(LoadService(get_engine(), settings), verifier))
    app.mount("/", ogc)
    return app
