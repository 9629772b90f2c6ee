"""Parcel look-ups the land officers ask for, on the published (public) view."""

from __future__ import annotations

from cadastre.layers import PARCELS
from landplatform.publish.provider import PostGISProvider


def find_parcel(commune_code: str, sheet_no: int, parcel_no: int) -> dict | None:
    """The current parcel with this commune + sheet + parcel number, or None."""
    provider = PostGISProvider({"name": "lookup", "type": "feature",
                                "data": PARCELS.to_config()})
    result = provider.query(limit=1, properties=[("commune_code", commune_code),
                                                 ("sheet_no", str(sheet_no)),
                                                 ("parcel_no", str(parcel_no))])
    return result["features"][0] if result["features"] else None
