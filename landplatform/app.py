"""The FastAPI application: pygeoapi's OGC APIs at the root, plus what OGC does not cover.

Built from the list of domains the composition root (``lis.app``) hands in: their
collections go into the generated pygeoapi configuration, their routes are included, their
migration branches decide what "the schema is current" means. Routes of our own
(``/health``, the domains' routes, the JSON features path, vector tiles, ``/conformance``,
the coverage guard, ``/api-docs`` and the pages' vendored ``/vendor`` files) are declared
before pygeoapi is mounted at ``/``, so they win; everything else is pygeoapi. CORS wraps
all of it (``PlatformApp``).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.types import ASGIApp

from landplatform import __version__
from landplatform.auth.tokens import TokenVerifier
from landplatform.cors import CORSMiddleware, parse_origins
from landplatform.db import get_engine, read_database_urls
from landplatform.domain import (
    Domain,
    Services,
    extensions,
    migration_locations,
    publishing_units,
)
from landplatform.limits import BodyLimitMiddleware
from landplatform.migrate import expected_heads
from landplatform.publish.assets import assets_router
from landplatform.publish.conformance import conformance_router
from landplatform.publish.coverage_guard import coverage_files, coverage_router
from landplatform.publish.engine import get_public_engine
from landplatform.publish.fast_lane import FeaturesFastLane
from landplatform.publish.features_api import (
    FeaturesService,
    collections_from_config,
    features_router,
)
from landplatform.publish.ogc_app import build_ogc_app
from landplatform.publish.process_guard import process_router
from landplatform.publish.resources import build_config
from landplatform.publish.tiles import tiles_router
from landplatform.read_routing import ReadRouting
from landplatform.settings import Settings, get_settings


class PlatformApp(FastAPI):
    """FastAPI with CORS outside Starlette's error middleware.

    ``add_middleware`` places a middleware inside ``ServerErrorMiddleware``, so a 500 would
    leave without CORS headers and a browser on another origin would see a network error
    instead of the problem; here CORS wraps the whole stack, fast lane included.
    """

    cors_origins: tuple[str, ...] = ("*",)

    def build_middleware_stack(self) -> ASGIApp:
        return CORSMiddleware(super().build_middleware_stack(), self.cors_origins)


def build_app(domains: Sequence[Domain], settings: Settings | None = None,
              extra_routers: Sequence[APIRouter] = (),
              pages: Sequence[tuple[str, str]] = ()) -> FastAPI:
    """The app for these domains (``extra_routers``: pages of the composition root;
    ``pages``: (title, path) of those the landing page links)."""
    settings = settings or get_settings()
    engine = get_public_engine()
    config = build_config(engine, settings, [d.publisher for d in domains if d.publisher],
                          publishing_units(domains), pages)
    app = PlatformApp(title="Land information platform", version=__version__,
                      docs_url=None, redoc_url=None, openapi_url="/api-docs/openapi.json")
    app.cors_origins = parse_origins(settings.cors_origins)
    uploads = [p for d in domains for p in d.upload_paths]
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes,
                       overrides=[(p, settings.max_upload_bytes) for p in uploads])
    heads = expected_heads(migration_locations(domains))

    @app.get("/health", tags=["platform"])
    def health() -> JSONResponse:
        """Liveness and readiness: the database answers and the schema is current."""
        try:
            with engine.connect() as conn:
                current = set(conn.execute(text(
                    "SELECT version_num FROM public.alembic_version")).scalars())
        except Exception:  # noqa: BLE001 - any failure means not ready
            # what failed is for the server's log, not for whoever asks /health
            return JSONResponse({"status": "unavailable", "database": "unreachable"},
                                status_code=503, headers={"Retry-After": "5"})
        ok = current == heads
        return JSONResponse({"status": "ok" if ok else "degraded", "database": "ok",
                             "schema": sorted(current), "expected_schema": sorted(heads),
                             "version": __version__}, status_code=200 if ok else 503)

    # /api-docs (Swagger UI) and the pages' browser libraries, served here (no CDN)
    app.include_router(assets_router(app.openapi_url, app.title))
    services = Services(settings, get_engine(), engine, TokenVerifier(settings),
                        extensions(domains))
    for router in extra_routers:
        app.include_router(router)
    for domain in domains:
        for router in domain.routers(services) if domain.routers else ():
            app.include_router(router)
    app.state.pygeoapi_config = config
    ogc = build_ogc_app(config, settings.var_dir / "pygeoapi")
    from pygeoapi.starlette_app import collection_coverage as pygeoapi_coverage
    from pygeoapi.starlette_app import collection_items as pygeoapi_items
    from pygeoapi.starlette_app import collections as pygeoapi_collection
    from pygeoapi.starlette_app import execute_process_jobs as pygeoapi_execute
    from pygeoapi.starlette_app import get_tilematrix_set as pygeoapi_tms

    # The JSON features path, vector tiles and /conformance are ours; pygeoapi serves
    # everything else (and the HTML/JSON-LD items pages, handed over by the router).
    service = FeaturesService(engine, collections_from_config(config), settings.base_url,
                              settings.page_limit_default, settings.page_limit_max)
    app.include_router(features_router(service, pygeoapi_items, settings.html_page_limit))
    # GET items/item for GeoJSON skip the app's stack (same service, same answers)
    app.add_middleware(FeaturesFastLane, service=service, threads=settings.pool_size)
    if read_database_urls(settings):  # outside the fast lane: it decides for every request
        app.add_middleware(ReadRouting, window_s=settings.read_primary_after_write_s)
    app.include_router(tiles_router(service, pygeoapi_tms, pygeoapi_collection))
    app.include_router(conformance_router(config))
    app.include_router(coverage_router(coverage_files(config), pygeoapi_coverage))
    app.include_router(process_router(pygeoapi_execute, settings.max_concurrent_processes))
    app.mount("/", ogc)
    return app
