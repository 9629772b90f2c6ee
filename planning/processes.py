"""The overlay as an OGC API process: ``POST /processes/planning-overlay/execution``.

pygeoapi's process plugin model: a ``BaseProcessor`` subclass named in the generated config
(``planning.publish``). It runs on the API's read-only engine (role ``lis_public``) and the
overlay reads ``publish.*`` views only, so its output cannot carry owners.
"""

from __future__ import annotations

import logging
import math

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError
from sqlalchemy.exc import SQLAlchemyError

from landplatform.publish.engine import get_public_engine
from planning.overlay import PlanNotFound, overlay_geojson

LOGGER = logging.getLogger(__name__)

PROCESS_METADATA = {
    "version": "1.0.0",
    "id": "planning-overlay",
    "title": {"en": "Plan overlay on cadastral parcels",
              "vi": "Chồng xếp quy hoạch lên thửa đất"},
    "description": {
        "en": "Which parcels a plan's zones affect: for every (parcel, zone) pair the "
              "overlap in m² (province's VN-2000 TM-3) and the share of the parcel, the "
              "parcel's current land use, the zone's planned use, and whether the parcel's "
              "primary use disagrees with the planned use of the zone covering most of it; "
              "with a summary (counts, total overlap, area by planned use).",
        "vi": "Các thửa đất bị ảnh hưởng bởi quy hoạch: diện tích và tỷ lệ chồng lấn, "
              "mục đích sử dụng hiện trạng và quy hoạch.",
    },
    "jobControlOptions": ["sync-execute"],
    "outputTransmission": ["value"],
    "keywords": ["planning", "overlay", "quy hoạch", "cadastre"],
    "links": [],
    "inputs": {
        "plan_code": {
            "title": "Plan code",
            "description": "Code of a published plan (see the 'plans' collection).",
            "schema": {"type": "string", "minLength": 1, "maxLength": 100},
            "minOccurs": 1, "maxOccurs": 1,
        },
        "district_code": {
            "title": "District code",
            "description": "Only this pre-2025 district's zones and parcels (3 digits).",
            "schema": {"type": "string", "pattern": "^[0-9]{3}$"},
            "minOccurs": 0, "maxOccurs": 1,
        },
        "min_share": {
            "title": "Minimum share",
            "description": "Leave out (parcel, zone) pairs covering less than this share "
                           "of the parcel (0-1).",
            "schema": {"type": "number", "minimum": 0, "maximum": 1, "default": 0},
            "minOccurs": 0, "maxOccurs": 1,
        },
    },
    "outputs": {
        "parcels": {
            "title": "Affected parcels",
            "description": "GeoJSON FeatureCollection: one feature per (parcel, zone) pair, "
                           "parcel geometry, properties parcel_id, parcel_ref, land_use, "
                           "zone_code, planned_use, overlap_m2, share, main_zone, disagrees.",
            "schema": {"type": "object", "contentMediaType": "application/geo+json"},
        },
        "summary": {
            "title": "Summary",
            "description": "Counts, total overlap (m²) and overlap by planned land-use code.",
            "schema": {"type": "object", "contentMediaType": "application/json"},
        },
    },
    "example": {"inputs": {"plan_code": "QHPK-001-2021-2030", "min_share": 0.1}},
}


def parse_inputs(data: dict) -> tuple[str, str | None, float]:
    """Validate the inputs; a ProcessorExecuteError (HTTP 400) names the bad one."""
    if not isinstance(data, dict):
        raise ProcessorExecuteError(user_msg="inputs must be an object")
    unknown = sorted(set(data) - set(PROCESS_METADATA["inputs"]))
    if unknown:
        raise ProcessorExecuteError(user_msg=f"unknown input(s): {', '.join(unknown)}")
    plan = data.get("plan_code")
    if not isinstance(plan, str) or not plan.strip() or len(plan) > 100:
        raise ProcessorExecuteError(user_msg="plan_code is required: a plan's code (string)")
    district = data.get("district_code")
    if district is not None:
        district = str(district).strip()
        if not (district.isascii() and district.isdigit() and len(district) == 3):
            raise ProcessorExecuteError(user_msg="district_code must be 3 digits, e.g. '001'")
    share = data.get("min_share", 0)
    if isinstance(share, bool) or not isinstance(share, int | float) \
            or not math.isfinite(share) or not 0 <= share <= 1:
        raise ProcessorExecuteError(user_msg="min_share must be a number from 0 to 1")
    return plan.strip(), district, float(share)


class OverlayProcessor(BaseProcessor):
    """Plan-on-parcels overlay, executed synchronously in PostGIS."""

    def __init__(self, processor_def: dict) -> None:
        super().__init__(processor_def, PROCESS_METADATA)
        self.supports_outputs = True

    def execute(self, data: dict, outputs: dict | None = None) -> tuple[str, dict]:
        plan, district, min_share = parse_inputs(data)
        try:
            doc = overlay_geojson(get_public_engine(), plan, district, min_share)
        except PlanNotFound as exc:
            raise ProcessorExecuteError(user_msg=str(exc)) from None
        except SQLAlchemyError as exc:
            LOGGER.error("overlay failed: %s", exc)
            raise ProcessorExecuteError(user_msg="overlay failed (see the server log)") \
                from None
        wanted = set(outputs or {}) & set(doc) or set(doc)
        return "application/json", {k: v for k, v in doc.items() if k in wanted}

    def __repr__(self) -> str:
        return f"<OverlayProcessor> {self.name}"
