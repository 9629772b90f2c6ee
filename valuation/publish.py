"""What valuation publishes: land prices, parcel values, price surfaces, the valuation process.

Collections (national, and one per district that has data):
- ``land-prices`` / ``land-prices-<d>``: ``publish.land_prices``, one feature per priced
  road segment and land type with its position prices side by side (vt1..vt5): a valuer
  styles the map by ``vt1`` and filters ``land_type=ODT`` (residential), ``TMD``...
- ``parcel-values`` / ``parcel-values-<d>``: ``publish.parcel_values``, the latest run of each
  district: parcel geometry, unit price of the primary part, value, explanation (JSON text).
  No owner data: the view joins ``publish.parcels`` only.
- ``price-surface-<d>``: the district's price surface, an OGC API coverage served by
  pygeoapi's rasterio provider from the COG ``valuation.surface`` wrote, for districts whose
  file exists; a PNG preview is linked for maps.
Process ``parcel-valuation`` (``valuation.processes``).

The publisher reads only small summary views (``publish.valuation_runs``, the segments per
district), so start-up cost does not grow with the number of parcels.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

from landplatform.publish.layers import Field, Layer
from landplatform.publish.resources import (
    VIETNAM_BBOX,
    collection,
    district_crs,
    units_crs,
)
from landplatform.settings import get_settings
from valuation.surface import coverage_id, surface_bounds, surface_path

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
PROCESS_ID = "parcel-valuation"

LAND_PRICES = Layer(
    key="land-prices",
    view="publish.land_prices",
    title="Land prices by road segment",
    description="Provincial land price tables (bảng giá đất): each priced road segment "
                "(đoạn đường) once per land type, with its prices in VND/m² by position "
                "(vị trí 1-5: vt1 = frontage). Filter land_type=ODT for urban residential, "
                "TMD commercial/service, SKC non-agricultural production.",
    keywords=("land prices", "bảng giá đất", "valuation", "đoạn đường"),
    fields=(
        Field("table_code", "string", "Price table"),
        Field("province_code", "string", "Issuing province"),
        Field("instrument", "string", "Issuing decision"),
        Field("effective_from", "date", "Effective from"),
        Field("effective_to", "date", "Effective to"),
        Field("segment_id", "integer", "Segment id"),
        Field("district_code", "string", "District code (pre-2025 GSO)"),
        Field("road_name", "string", "Road (tên đường)"),
        Field("from_desc", "string", "Segment from (từ)"),
        Field("to_desc", "string", "Segment to (đến)"),
        Field("road_class", "string", "Road class (loại đường)"),
        Field("land_type", "string", "Land type"),
        Field("land_type_name", "string", "Land type name"),
        Field("vt1", "number", "Position 1 (frontage), VND/m²"),
        Field("vt2", "number", "Position 2, VND/m²"),
        Field("vt3", "number", "Position 3, VND/m²"),
        Field("vt4", "number", "Position 4, VND/m²"),
        Field("vt5", "number", "Position 5, VND/m²"),
        Field("kind", "string", "road | remaining (các đường còn lại) | cross_section"),
        Field("commune_code", "string", "Commune of the row's heading (pre-2025 or 2025)"),
        Field("width_min_m", "number", "Cross-section from, m (inclusive)"),
        Field("width_max_m", "number", "Cross-section below, m"),
        Field("section", "string", "Section heading above the row"),
    ),
    id_type="string",
    title_field="road_name",
)

PARCEL_VALUES = Layer(
    key="parcel-values",
    view="publish.parcel_values",
    title="Parcel values",
    description="Value of every current parcel by the provincial land price table (latest "
                "valuation run of its district): unit price of the primary land-use part "
                "(VND/m², the table's rate), value (VND, sum over the land-use parts: area x "
                "unit price x adjustments) and an explanation per part (segment, position, "
                "area class, rules applied). Nothing about who holds the land.",
    keywords=("parcel values", "giá đất", "valuation", "thửa đất"),
    fields=(
        Field("province_code", "string", "Province code (pre-2025 GSO)"),
        Field("district_code", "string", "District code (pre-2025 GSO)"),
        Field("commune_code", "string", "Commune code (MaXa)"),
        Field("sheet_no", "integer", "Map sheet number"),
        Field("parcel_no", "integer", "Parcel number"),
        Field("parcel_ref", "string", "commune.sheet.parcel"),
        Field("land_use", "string", "Land-use codes"),
        Field("area_m2", "number", "Stated area, m²"),
        Field("run_id", "integer", "Valuation run"),
        Field("table_code", "string", "Price table"),
        Field("valued_on", "date", "Table date"),
        Field("land_type", "string", "Valuation land type (primary part)"),
        Field("basis", "string", "segment | area | zone (primary part)"),
        Field("road_name", "string", "Road of the price (primary part)"),
        Field("position", "integer", "Position, vị trí (primary part)"),
        Field("area_class", "integer", "Area class, khu vực (primary part)"),
        Field("unit_price", "number", "Unit price of the primary part, VND/m²"),
        Field("value", "number", "Value, VND"),
        Field("fully_valued", "boolean", "Every land-use part has a value"),
        Field("explanation", "string", "Per-part explanation (JSON)"),
        Field("unpriced_reason", "string", "Why a part has no price (reason code)"),
        Field("current_commune_code", "string", "Commune since 1 July 2025"),
    ),
    title_field="parcel_ref",
)

LAYERS = {layer.key: layer for layer in (LAND_PRICES, PARCEL_VALUES)}


def _district_sets(engine: Engine) -> tuple[set[str], set[str]]:
    """Districts with priced segments, and districts with a valuation run."""
    with engine.connect() as conn:
        priced = set(conn.execute(text(
            "SELECT DISTINCT district_code FROM publish.valuation_segments "
            "WHERE district_code IS NOT NULL")).scalars())
        valued = set(conn.execute(text(
            "SELECT district_code FROM publish.valuation_runs")).scalars())
    return priced, valued


def coverage_resource(district: dict, path_: str, bbox: list[float], base_url: str) -> dict:
    cid = coverage_id(district["district_code"])
    return {
        "type": "collection",
        "title": f"Land price surface, {district['district_name']}, "
                 f"{district['province_name']}",
        "description": "Unit land price (VND/m²) of the primary land-use part of each parcel "
                       f"of district {district['district_code']}, latest valuation run; "
                       "nodata (0) outside parcels and where no price applies. EPSG:4326, "
                       "0.00002° pixels (about 2 m).",
        "keywords": ["land prices", "price surface", "coverage", "giá đất"],
        "links": [{"type": "image/png", "rel": "preview",
                   "title": "Colour preview of the price surface (same extent)",
                   "href": f"{base_url}/valuation/coverage/{cid}.png"}],
        "extents": {"spatial": {"bbox": bbox, "crs": CRS84}},
        "providers": [{"type": "coverage", "name": "rasterio", "data": path_,
                       "format": {"name": "GTiff",  # the type GDAL's OGCAPI driver looks for
                                  "mimetype": "image/tiff; application=geotiff"}}],
    }


def process_resource() -> dict:
    return {"type": "process",
            "processor": {"name": "valuation.processes.ParcelValuationProcessor"}}


def publisher(engine: Engine, districts: list[dict]) -> dict[str, dict]:
    """pygeoapi resources of the valuation domain (see the module docstring)."""
    settings = get_settings()
    priced, valued = _district_sets(engine)
    national_crs = units_crs(districts)
    out: dict[str, dict] = {}
    for layer in (LAND_PRICES, PARCEL_VALUES):
        out[layer.key] = collection(
            layer, title=f"{layer.title} (national)",
            description=layer.description + " Filter with ?district_code=...",
            bbox=VIETNAM_BBOX, crs=national_crs)
    for d in districts:
        code = d["district_code"]
        bbox = [d["min_lon"], d["min_lat"], d["max_lon"], d["max_lat"]]
        place = f"{d['district_name']}, {d['province_name']}"
        if code in priced:
            out[f"{LAND_PRICES.key}-{code}"] = collection(
                LAND_PRICES, title=f"{LAND_PRICES.title}, {place}",
                description=f"{LAND_PRICES.description} District {code}.", bbox=bbox,
                crs=district_crs(d), fixed={"district_code": code})
        if code in valued:
            out[f"{PARCEL_VALUES.key}-{code}"] = collection(
                PARCEL_VALUES, title=f"{PARCEL_VALUES.title}, {place}",
                description=f"{PARCEL_VALUES.description} District {code}.", bbox=bbox,
                crs=district_crs(d), fixed={"district_code": code})
            path = surface_path(settings.var_dir, code)
            if path.exists():
                out[coverage_id(code)] = coverage_resource(d, str(path), surface_bounds(path),
                                                           settings.base_url)
    out[PROCESS_ID] = process_resource()
    return out
