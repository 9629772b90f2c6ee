"""``/conformance`` that lists exactly the classes this server passes.

pygeoapi derives its list from provider types and would claim, for instance, Features
Part 4 (create/replace/delete) for any feature provider; we answer this one ourselves.
Classes a layer brings are declared on the layer (``Layer.conformance``; Features Part 4
follows from ``Layer.writable``) and listed only when a collection of that layer is
configured. Each class here is exercised by the test suite.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

COMMON = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/landing-page",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/json",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/collections",
]
FEATURES = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
]
# CQL2 (OGC 21-065r2) as landplatform/publish/cql.py translates it, on every features
# path; tests/test_cql2_classes.py answers each class against an independent evaluator
CQL2 = [f"http://www.opengis.net/spec/cql2/1.0/conf/{name}" for name in (
    "cql2-text", "cql2-json", "basic-cql2", "advanced-comparison-operators",
    "case-insensitive-comparison", "accent-insensitive-comparison",
    "basic-spatial-functions", "basic-spatial-functions-plus", "spatial-functions",
    "temporal-functions", "property-property", "arithmetic")]
# create/replace/delete, where a layer is declared writable (its domain serves the writes)
PART4 = "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete"
TILES = [
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
]


def conformance_classes(config: dict) -> list[str]:
    """The classes for this configuration: processes/coverages only when configured."""
    from pygeoapi.api import coverages, processes

    classes = COMMON + FEATURES + CQL2 + TILES
    kinds = {r["type"] for r in config["resources"].values()}
    provider_types = {p["type"] for r in config["resources"].values()
                      for p in r.get("providers", [])}
    if "process" in kinds:
        classes += processes.CONFORMANCE_CLASSES
    if "coverage" in provider_types:
        classes += coverages.CONFORMANCE_CLASSES
    layers = [p["data"] for r in config["resources"].values() for p in r.get("providers", [])
              if p["type"] == "feature"]
    classes += [c for data in layers for c in data.get("conformance") or ()]
    if any(data.get("writable") for data in layers):
        classes.append(PART4)
    return sorted(set(classes))


def conformance_router(config: dict) -> APIRouter:
    classes = conformance_classes(config)
    router = APIRouter()

    @router.get("/conformance", include_in_schema=False)
    def conformance(request: Request) -> Response:
        fmt = request.query_params.get("f")
        wants_html = fmt == "html" or (fmt is None and "text/html" in
                                       request.headers.get("accept", ""))
        if wants_html:
            items = "".join(f"<li><a href='{html.escape(c)}'>{html.escape(c)}</a></li>"
                            for c in classes)
            return HTMLResponse(f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                                f"<title>Conformance</title></head><body><h1>Conformance"
                                f"</h1><ul>{items}</ul></body></html>")
        return JSONResponse({"conformsTo": classes})

    return router
