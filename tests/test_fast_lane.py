"""The fast lane in front of the app: which requests it takes, and that what it answers
is what the routes behind it would answer."""

from __future__ import annotations

import httpx
import pytest

from landplatform.publish.fast_lane import FeaturesFastLane


def _scope(path: str, method: str = "GET", root_path: str = "") -> dict:
    return {"type": "http", "method": method, "path": path, "root_path": root_path}


@pytest.mark.parametrize(("scope", "target"), [
    (_scope("/collections/parcels/items"), ("parcels", None)),
    (_scope("/collections/parcels-001/items/42"), ("parcels-001", "42")),
    (_scope("/lis/collections/parcels/items/7", root_path="/lis"), ("parcels", "7")),
    (_scope("/collections/parcels/items", method="POST"), None),
    (_scope("/collections/parcels/items", method="HEAD"), None),
    (_scope("/collections/parcels/items/"), None),  # the app redirects or 404s
    (_scope("/collections/parcels"), None),
    (_scope("/collections//items"), None),
    (_scope("/collections/parcels/items/1/extra"), None),
    (_scope("/other/parcels/items"), None),
])
def test_takes_only_get_items_and_item(scope: dict, target: tuple | None) -> None:
    assert FeaturesFastLane._target(scope) == target


def test_html_and_other_collections_go_on_to_pygeoapi(api: str) -> None:
    items = f"{api}/collections/parcels-001/items"
    fid = httpx.get(items, params={"limit": 1}, timeout=60).json()["features"][0]["id"]
    html = httpx.get(f"{items}/{fid}", params={"f": "html"}, timeout=60)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    browser = httpx.get(f"{items}/{fid}", headers={"Accept": "text/html"}, timeout=60)
    assert "text/html" in browser.headers["content-type"]
    missing = httpx.get(f"{api}/collections/no-such-thing/items", timeout=60)
    assert missing.status_code == 404
    # a collection our provider does not serve is still pygeoapi's (plans are features)
    plans = httpx.get(f"{api}/collections/plans/items", params={"limit": 1}, timeout=60)
    assert plans.status_code == 200


def test_item_and_items_answers_agree(api: str) -> None:
    """One parcel from the item route is the same feature as in its page, with the same
    headers as the routed path sets (content type, Content-Crs)."""
    page = httpx.get(f"{api}/collections/parcels-001/items", params={"limit": 2},
                     timeout=60)
    assert page.headers["content-type"] == "application/geo+json"
    assert page.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    feature = page.json()["features"][1]
    one = httpx.get(f"{api}/collections/parcels-001/items/{feature['id']}", timeout=60)
    assert one.status_code == 200 and one.headers["content-type"] == "application/geo+json"
    body = one.json()
    assert {k: body[k] for k in ("id", "geometry", "properties")} == \
        {k: feature[k] for k in ("id", "geometry", "properties")}
    assert httpx.get(f"{api}/collections/parcels-001/items/999999999",
                     timeout=60).status_code == 404


def test_query_strings_are_decoded_like_starlette(api: str) -> None:
    """Percent-encoded UTF-8 in a filter (a Vietnamese value) and a repeated key (the
    last wins) are read as the routes behind the lane read them."""
    url = f"{api}/collections/parcels/items"
    r = httpx.get(url + "?limit=1&limit=3&filter=address%20%3D%20%27Ph%C6%B0%E1%BB%9Dng%27",
                  timeout=60)
    assert r.status_code == 200
    assert r.json()["numberReturned"] == 0  # no parcel has exactly that address
    assert httpx.get(url + "?limit=1&limit=3", timeout=60).json()["numberReturned"] == 3
