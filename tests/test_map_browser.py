"""The planner's map in a real browser: Debian's Chromium (WebGL in software) driven by
Playwright over a live server with the sample districts loaded, drawing the platform's
own vector tiles with MapLibre GL.

The browser checks are skipped only where /usr/bin/chromium is missing (bootstrap installs it);
the page's own assets are checked over plain HTTP either way.
"""

from __future__ import annotations

import http.server
import os
import re
import threading
import unicodedata
import warnings
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import numpy as np
import pytest
import rasterio
import shapely
import shapely.affinity
import shapely.geometry
import shapely.ops

from support import free_port

CHROMIUM = Path("/usr/bin/chromium")
STATIC = Path(__file__).resolve().parent.parent / "lis" / "web" / "static"
VENDOR = Path(__file__).resolve().parent.parent / "landplatform" / "publish" / "static" / \
    "vendor"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
BACKGROUND = np.array([0xEE, 0xF0, 0xEA])  # the style's background (style.js)
# CI installs Chromium (bootstrap.sh --tests), so there a missing browser is a failure
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"),
                                    reason=f"{CHROMIUM} missing (apt-get install chromium)")


class _Assets(HTMLParser):
    """Collects <script src> and <link href> of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.lang: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "script" and a.get("src"):
            self.refs.append(a["src"])
        if tag == "link" and a.get("href"):
            self.refs.append(a["href"])


def test_map_page_serves_only_local_assets(api: str) -> None:
    page = httpx.get(f"{api}/map", timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "charset=utf-8" in page.headers["content-type"]
    parser = _Assets()
    parser.feed(page.text)
    assert parser.lang == "vi"
    assert len(parser.refs) >= 4  # maplibre-gl.css, map.css, maplibre-gl.js, map.js
    for ref in parser.refs:
        assert not re.match(r"^(https?:)?//", ref), ref
        url = urljoin(f"{api}/map", ref)
        assert url.startswith((f"{api}/map/static/", f"{api}/vendor/")), url
        asset = httpx.get(url, timeout=30)
        assert asset.status_code == 200 and asset.content, url
        kind = "javascript" if url.endswith(".js") else "css"
        assert kind in asset.headers["content-type"], (url, asset.headers["content-type"])
    # the vendored MapLibre is the version its VERSION file (and web/package.json) names
    version = (VENDOR / "maplibre-gl" / "VERSION").read_text().split()[0].split("@")[1]
    js = httpx.get(f"{api}/vendor/maplibre-gl/maplibre-gl.js", timeout=30)
    assert js.status_code == 200 and f"v{version}" in js.text[:400]
    assert f'"maplibre-gl": "{version}"' in (STATIC.parent.parent.parent / "web" /
                                             "package.json").read_text()
    # nothing outside static/ is reachable, and a missing file is a 404
    assert httpx.get(f"{api}/map/static/..%2F..%2Fapp.py", timeout=30).status_code == 404
    assert httpx.get(f"{api}/map/static/nope.js", timeout=30).status_code == 404
    # no CDN anywhere in what the page can load
    for path in STATIC.rglob("*"):
        if path.suffix in (".html", ".js", ".css"):
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"unpkg|jsdelivr|cdnjs|googleapis|openstreetmap", text), path


# ---------------------------------------------------------------- in the browser

@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _guarded(browser, allowed: set[str]):  # noqa: ANN001, ANN202 - Playwright objects
    """A page that may talk to ``allowed`` hosts only: any other request is aborted and
    recorded (so is every request, in ``page.requests``)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="vi-VN")
    page = context.new_page()
    page.outside, page.errors, page.requests = [], [], []

    def route(r) -> None:  # noqa: ANN001
        url = urlsplit(r.request.url)
        page.requests.append(r.request.url)
        if url.scheme in ("data", "blob") or url.netloc in allowed:
            r.continue_()
        else:
            page.outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.set_default_timeout(60_000)
    return context, page


@pytest.fixture
def page(browser, api: str):  # noqa: ANN001, ANN201 - Playwright objects
    context, page = _guarded(browser, {urlsplit(api).netloc})
    yield page
    context.close()


def _features(api: str, collection: str) -> list[dict]:
    body = httpx.get(f"{api}/collections/{collection}/items",
                     params={"f": "json", "limit": 10000}, timeout=60).json()
    assert body["numberReturned"] == body["numberMatched"]
    return body["features"]


def _first(api: str, collection: str) -> dict:
    return httpx.get(f"{api}/collections/{collection}/items",
                     params={"f": "json", "limit": 1}, timeout=60).json()["features"][0]


def _wait_ready(page, district: str) -> None:  # noqa: ANN001
    page.wait_for_function(
        "d => window.lisMap && (lisMap.status === 'error' || "
        "(lisMap.status === 'ready' && lisMap.district === d))", arg=district)
    assert page.evaluate("lisMap.status") == "ready", page.evaluate("lisMap.error")


def _settle(page, script: str = "", arg: object = None) -> None:  # noqa: ANN001
    """Run ``script`` (a map move) and wait until the map has drawn everything."""
    page.evaluate("""([script, arg]) => new Promise((done) => {
        lisMap.map.once('idle', () => done(true));
        (new Function('arg', script))(arg);
        lisMap.map.triggerRepaint();
    })""", [script, arg])
    page.wait_for_timeout(200)  # the legend is redrawn on the idle after a move


def _screen(page, tmp_path: Path, name: str) -> np.ndarray:  # noqa: ANN001
    """The map's pixels (RGB) from a screenshot."""
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot))
    box = page.locator("#map").bounding_box()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a screenshot is not georeferenced
        with rasterio.open(shot) as src:
            rgb = src.read()[:3].transpose(1, 2, 0).astype(int)
    x, y = int(box["x"]), int(box["y"])
    return rgb[y:y + int(box["height"]), x:x + int(box["width"])]


def _drawn_share(pixels: np.ndarray) -> tuple[int, float]:
    """Distinct colours and the share of pixels that are not background."""
    flat = pixels.reshape(-1, 3)
    plain = (np.abs(flat - BACKGROUND).sum(axis=1) <= 6) | (flat.min(axis=1) >= 250)
    colours = len(np.unique(flat[:, 0] << 16 | flat[:, 1] << 8 | flat[:, 2]))
    return colours, float(1 - plain.mean())


def _pixel_at(page, pixels: np.ndarray, lon: float, lat: float) -> np.ndarray:  # noqa: ANN001
    x, y = page.evaluate("([lon, lat]) => { const p = lisMap.map.project([lon, lat]); "
                         "return [Math.round(p.x), Math.round(p.y)]; }", [lon, lat])
    return pixels[y, x]


def _blend(hex_colour: str, alpha: float) -> np.ndarray:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return np.round(rgb * alpha + BACKGROUND * (1 - alpha))


@needs_chromium
def test_planner_map_in_chromium(api: str, manifest: list[dict], page, tmp_path: Path) -> None:  # noqa: ANN001
    entry = max(manifest, key=lambda e: e["district_code"])  # not the one shown first
    district = entry["district_code"]
    parcels = _features(api, f"parcels-{district}")
    colours = {f["properties"]["code"]: f["properties"]
               for f in _features(api, "land-use-types")}

    page.goto(f"{api}/map")
    page.wait_for_function("window.lisMap && lisMap.districts.length > 0")
    first = page.evaluate("lisMap.districts[0].code")
    assert first != district
    _wait_ready(page, first)
    options = page.eval_on_selector_all("[data-testid=district-select] option",
                                        "os => os.map(o => o.value)")
    assert set(options) == {e["district_code"] for e in manifest}
    page.select_option("[data-testid=district-select]", district)
    _wait_ready(page, district)
    _settle(page)

    # the district's parcels are drawn from the tiles (not pulled as GeoJSON)
    rendered = page.evaluate("lisMap.renderedParcels().map(f => [f.id, "
                             "f.properties.district_code, f.properties.primary_land_use])")
    ours = {fid for fid, d, _ in rendered if d == district}
    assert len(ours) >= 0.9 * entry["feature_count"], (len(ours), entry["feature_count"])
    assert not [u for u in page.requests if re.search(r"/collections/parcels[^/]*/items\?", u)]
    assert any("/collections/parcels/tiles/WebMercatorQuad/" in u for u in page.requests)

    # the legend lists exactly the codes on screen, with their Vietnamese names
    codes = {c for _, _, c in rendered}
    legend = page.locator("[data-testid=legend-item]")
    assert set(legend.evaluate_all("ls => ls.map(l => l.dataset.code)")) == codes
    code = sorted(codes)[0]
    assert colours[code]["name_vi"] in page.locator(
        f"[data-testid=legend-item][data-code={code}]").inner_text()
    # codes of one official colour are told apart: a hatch each, the same in the legend
    hatches = legend.evaluate_all("ls => ls.map(l => [l.dataset.code, "
                                  "l.querySelector('.swatch').dataset.hatch || null])")
    shared = {}
    for c, hatch in hatches:
        shared.setdefault(colours[c]["color"].upper(), []).append(hatch)
    assert any(len(v) > 1 for v in shared.values())  # the sample has shared colours
    for group in shared.values():
        assert len(set(group)) == len(group), group

    # a parcel of a code with its own colour is filled with it, as the code list says
    pixels = _screen(page, tmp_path, "district")
    colours_seen, share = _drawn_share(pixels)
    assert colours_seen >= 50 and share >= 0.2, (colours_seen, share)
    plain = [f for f in sorted(parcels, key=lambda f: -f["properties"]["area_m2"])
             if not any(p for c, p in hatches if c == f["properties"]["primary_land_use"])
             and f["id"] in ours]
    assert plain
    zones = _features(api, f"planning-zones-{district}")
    zone_lines = shapely.union_all([shapely.geometry.shape(z["geometry"]).boundary
                                    for z in zones])
    checked = 0
    for f in plain:
        geom = shapely.geometry.shape(f["geometry"])
        point = geom.representative_point()
        # a zone's dashed outline (zones follow the streets) within a few pixels: skip
        near = shapely.ops.nearest_points(zone_lines, point)[0]
        gap = np.subtract(*[page.evaluate(
            "([lon, lat]) => { const p = lisMap.map.project([lon, lat]); return [p.x, p.y]; }",
            [q.x, q.y]) for q in (near, point)])
        if np.hypot(*gap) < 6:
            continue
        got = _pixel_at(page, pixels, point.x, point.y)
        expected = _blend(colours[f["properties"]["primary_land_use"]]["color"], 0.88)
        assert np.abs(got - expected).max() <= 40, (f["properties"]["parcel_ref"], got,
                                                    expected)
        checked += 1
        if checked == 5:
            break
    assert checked

    # the parcels layer toggles off and on
    page.click("[data-testid=toggle-parcels]")
    page.wait_for_function("!lisMap.visible('parcels')")
    _settle(page)
    assert page.evaluate("lisMap.renderedParcels().length") == 0
    page.click("[data-testid=toggle-parcels]")
    page.wait_for_function("lisMap.visible('parcels')")
    _settle(page)
    assert page.evaluate("lisMap.renderedParcels().length") > 0

    # click a parcel: its attributes (labelled from the field titles) and the zones over it
    shapes_by_ref = {f["properties"]["parcel_ref"]: shapely.geometry.shape(f["geometry"])
                     for f in parcels}
    zone_shapes = [(z["properties"], shapely.geometry.shape(z["geometry"])) for z in zones]

    def zone_shares(ref: str) -> dict[str, float]:
        geom = shapes_by_ref[ref]
        return {p["zone_code"]: geom.intersection(z).area / geom.area
                for p, z in zone_shapes if geom.intersects(z)}

    candidates = [f for f in sorted(parcels, key=lambda f: -f["properties"]["area_m2"])
                  if max(zone_shares(f["properties"]["parcel_ref"]).values(), default=0) > .5]
    assert candidates, "no parcel is mostly inside a zone"
    target = candidates[0]
    geom = shapes_by_ref[target["properties"]["parcel_ref"]]
    _settle(page, "lisMap.map.fitBounds(arg, {padding: 120, animate: false})",
            [list(geom.bounds[:2]), list(geom.bounds[2:])])
    inside = geom.representative_point()
    x, y = page.evaluate("([lon, lat]) => { const p = lisMap.map.project([lon, lat]); "
                         "const b = lisMap.map.getContainer().getBoundingClientRect(); "
                         "return [b.left + p.x, b.top + p.y]; }", [inside.x, inside.y])
    page.mouse.click(x, y)
    panel = page.locator("[data-testid=parcel-panel]")
    panel.wait_for(state="visible")
    props = target["properties"]
    page.wait_for_function("ref => document.querySelector('[data-testid=parcel-ref]')"
                           ".textContent === ref", arg=props["parcel_ref"])
    attrs = page.locator("[data-testid=parcel-attributes]").inner_text()
    assert props["commune_code"] in attrs and props["land_use"] in attrs
    assert str(props["sheet_no"]) in attrs and str(props["parcel_no"]) in attrs
    schema = httpx.get(f"{api}/collections/parcels/schema", params={"f": "json"},
                       timeout=60).json()["properties"]
    assert "số hiệu tờ bản đồ" in schema["sheet_no"]["title"].lower()
    assert "Số hiệu tờ bản đồ" in attrs and "Map sheet number" in attrs  # both languages
    rows = page.locator("[data-testid=zone-row]")
    rows.first.wait_for(state="attached")
    shown = set(rows.evaluate_all("rs => rs.map(r => r.dataset.zone)"))
    shares = zone_shares(props["parcel_ref"])
    assert {z for z, s in shares.items() if s > .1} <= shown <= set(shares)

    # the price overlay: parcel values from their tiles, with a ramp legend in VND/m²
    assert page.evaluate("lisMap.available.price")
    page.click("[data-testid=toggle-price]")
    page.wait_for_function("lisMap.visible('price')")
    _settle(page)
    priced = page.evaluate("lisMap.map.queryRenderedFeatures({layers: ['price-fill']})"
                           ".filter(f => f.properties.unit_price > 0).length")
    assert priced > 0
    ramp = page.locator("[data-testid=legend]").inner_text()
    assert "VND/m²" in ramp and "triệu đồng/m²" in ramp
    assert page.locator("[data-testid=legend-price]").is_visible()

    assert not page.errors, page.errors
    assert not page.evaluate("lisMap.tileErrors"), page.evaluate("lisMap.tileErrors")
    assert not page.outside, page.outside  # no CDN, no base map: nothing but the platform


@needs_chromium
def test_map_shows_parcels_at_national_and_provincial_zoom(api: str, manifest: list[dict],
                                                           page, tmp_path: Path) -> None:  # noqa: ANN001
    """Below z12 the map draws the districts' and communes' summary shapes in their
    dominant land use: a national view is not empty."""
    page.goto(f"{api}/map")
    page.wait_for_function("window.lisMap && lisMap.districts.length > 0")
    _wait_ready(page, page.evaluate("lisMap.districts[0].code"))
    summaries = {}
    for z in (5, 8, 10):
        _settle(page, "lisMap.map.jumpTo({center: [105.9, 18.5], zoom: arg})", z)
        if z == 5:
            summaries[z] = page.evaluate(
                "lisMap.map.queryRenderedFeatures({layers: ['summary-fill']})"
                ".map(f => [f.properties.level, f.properties.district_code])")
            continue
        entry = manifest[0]
        extent = httpx.get(f"{api}/collections/parcels-{entry['district_code']}",
                           params={"f": "json"}, timeout=60).json()["extent"]["spatial"]
        w, s, e, n = extent["bbox"][0]
        _settle(page, "lisMap.map.jumpTo({center: arg[0], zoom: arg[1]})",
                [[(w + e) / 2, (s + n) / 2], z])
        summaries[z] = page.evaluate(
            "lisMap.map.queryRenderedFeatures({layers: ['summary-fill']})"
            ".map(f => [f.properties.level, f.properties.district_code])")
        pixels = _screen(page, tmp_path, f"z{z}")
        centre = _pixel_at(page, pixels, (w + e) / 2, (s + n) / 2)
        assert np.abs(centre - BACKGROUND).sum() > 30, (z, centre)
    assert {d for level, d in summaries[5] if level == "district"} == \
        {e["district_code"] for e in manifest}
    assert {level for level, _ in summaries[8]} == {"district"}
    assert {level for level, _ in summaries[10]} == {"commune"}
    legend = page.locator("[data-testid=legend]").inner_text()
    assert "dominant land use" in legend
    assert not page.errors and not page.outside
    assert not page.evaluate("lisMap.tileErrors")


@needs_chromium
def test_search_finds_parcels_communes_and_roads(api: str, manifest: list[dict], page) -> None:  # noqa: ANN001
    district = manifest[0]["district_code"]
    target = _first(api, f"parcels-{district}")["properties"]
    page.goto(f"{api}/map")
    _wait_ready(page, district)

    def hits(q: str) -> list[dict]:
        page.fill("[data-testid=search]", q)
        page.press("[data-testid=search]", "Enter")
        page.wait_for_function("() => !document.querySelector('[data-testid=search-results]')"
                               ".hidden")
        page.wait_for_timeout(300)
        return page.eval_on_selector_all("[data-testid=search-hit]", "hs => hs.map(h => "
                                         "({kind: h.dataset.kind, ref: h.dataset.ref}))")

    # the parcel by its numbers: chosen, the map goes there and opens its panel
    found = hits(target["parcel_ref"])
    assert found[0] == {"kind": "parcel", "ref": target["parcel_ref"]}
    page.click("[data-testid=search-hit] button")
    page.wait_for_function("ref => document.querySelector('[data-testid=parcel-ref]')"
                           ".textContent === ref", arg=target["parcel_ref"])
    assert page.evaluate("lisMap.map.getZoom()") >= 16
    # a commune by its name without marks
    commune = httpx.get(f"{api}/collections/admin-units/items",
                        params={"code": target["commune_code"], "level": "commune"},
                        timeout=60).json()["features"][0]["properties"]["name"]
    plain = commune.split(" ", 1)[1].lower().replace("đ", "d")
    plain = "".join(c for c in unicodedata.normalize("NFD", plain)
                    if unicodedata.category(c) != "Mn")
    assert {"kind": "commune", "ref": target["commune_code"]} in hits(plain)
    # a road of the price table, by name
    road = _first(api, f"land-prices-{district}")["properties"]["road_name"]
    assert any(h["kind"] == "road" for h in hits(road.split(" ", 1)[1]))
    assert hits("zzzz-nothing") == []
    assert not page.errors and not page.outside


@needs_chromium
def test_map_opens_the_district_in_the_url(api: str, manifest: list[dict], page) -> None:  # noqa: ANN001
    district = manifest[1]["district_code"]
    page.goto(f"{api}/map?district={district}")
    _wait_ready(page, district)
    assert page.input_value("[data-testid=district-select]") == district
    _settle(page)
    drawn = page.evaluate("lisMap.renderedParcels().filter(f => "
                          f"f.properties.district_code === '{district}').length")
    assert drawn >= 0.9 * manifest[1]["feature_count"]
    assert not page.errors and not page.outside


# ---------------------------------------------------------------- another origin

EMBED = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Embedded land map</title>
<link rel="stylesheet" href="{api}/vendor/maplibre-gl/maplibre-gl.css">
<script src="{api}/vendor/maplibre-gl/maplibre-gl.js"></script>
<style>html, body, #map {{ height: 100%; margin: 0; }}</style></head>
<body><div id="map"></div>
<script type="module">
  const {{ loadStyle }} = await import('{api}/map/static/style.js');
  const style = await loadStyle('{api}/');
  const map = new maplibregl.Map({{ container: 'map', style, center: {center}, zoom: 17 }});
  window.embedded = {{ map, errors: [] }};
  map.on('error', (e) => window.embedded.errors.push(String(e.error?.message || e)));
  map.on('load', () => map.once('idle', () => {{ window.embedded.ready = true; }}));
</script></body></html>"""


@pytest.fixture
def other_origin(api: str, manifest: list[dict]) -> Iterator[str]:
    """A page on another origin (its own port) that points MapLibre at the platform."""
    bbox = httpx.get(f"{api}/collections/parcels-{manifest[0]['district_code']}",
                     params={"f": "json"}, timeout=60).json()["extent"]["spatial"]["bbox"][0]
    centre = [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2]
    body = EMBED.format(api=api, center=centre).encode()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the handler's API
            self.send_response(200 if self.path == "/" else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            if self.path == "/":
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@needs_chromium
def test_map_on_another_origin_draws_the_platforms_parcels(browser, api: str,  # noqa: ANN001
                                                           other_origin: str,
                                                           tmp_path: Path) -> None:
    """A developer's page on another origin embeds MapLibre over the platform's style and
    tiles (CORS): parcels are rendered, and with every host but 127.0.0.1 unreachable no
    request leaves it."""
    assert urlsplit(other_origin).netloc != urlsplit(api).netloc
    context, page = _guarded(browser, {urlsplit(api).netloc, urlsplit(other_origin).netloc})
    try:
        page.goto(other_origin)
        page.wait_for_function("window.embedded && window.embedded.ready")
        rendered = page.evaluate("embedded.map.queryRenderedFeatures({layers: "
                                 "['parcels-fill']}).length")
        assert rendered > 50
        shot = tmp_path / "embedded.png"
        page.screenshot(path=str(shot))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with rasterio.open(shot) as src:
                pixels = src.read()[:3].transpose(1, 2, 0).astype(int)
        colours, share = _drawn_share(pixels)
        assert colours >= 20 and share > 0.5, (colours, share)
        assert not page.evaluate("embedded.errors"), page.evaluate("embedded.errors")
        origins = {urlsplit(u).netloc for u in page.requests
                   if urlsplit(u).scheme in ("http", "https")}
        assert origins == {urlsplit(api).netloc, urlsplit(other_origin).netloc}
        assert all(urlsplit(u).hostname == "127.0.0.1" for u in page.requests
                   if urlsplit(u).scheme in ("http", "https"))
        assert not page.outside and not page.errors, (page.outside, page.errors)
    finally:
        context.close()


@needs_chromium
def test_zone_overlay_code_matches_shapely(api: str, manifest: list[dict], page) -> None:  # noqa: ANN001
    """The page's own overlay code (static/geometry.js, run in Chromium) against shapely, on
    real parcels and zones made to cut across them at odd angles."""
    district = manifest[0]["district_code"]
    parcels = _features(api, f"parcels-{district}")[::40]
    shapes = [shapely.geometry.shape(f["geometry"]) for f in parcels]
    minx, miny, maxx, maxy = shapely.union_all(shapes).bounds
    dx, dy = (maxx - minx) / 3, (maxy - miny) / 3
    zones = [shapely.affinity.rotate(shapely.affinity.scale(
        shapely.box(minx + i * dx, miny + j * dy, minx + (i + 1) * dx, miny + (j + 1) * dy),
        0.9, 0.9), 17) for i in range(3) for j in range(3)]
    zone_json = [{"geometry": shapely.geometry.mapping(z), "bbox": list(z.bounds),
                  "properties": {"zone_code": f"Z{k}"}} for k, z in enumerate(zones)]
    page.goto(f"{api}/map")
    result = page.evaluate("""async ([parcels, zones]) => {
        const g = await import('./map/static/geometry.js');
        return parcels.map((geom) => ({
            point: g.interiorPoint(geom),
            over: g.overlapping(geom, zones).map(
                (o) => [o.candidate.properties.zone_code, o.share]),
        }));
    }""", [[f["geometry"] for f in parcels], zone_json])
    assert any(r["over"] for r in result) and any(len(r["over"]) > 1 for r in result)
    for shape, got in zip(shapes, result, strict=True):
        assert shape.contains(shapely.Point(got["point"]))
        expected = {f"Z{k}": shape.intersection(z).area / shape.area
                    for k, z in enumerate(zones) if shape.intersects(z)}
        shares = dict(got["over"])
        assert {z for z, s in expected.items() if s > 0.1} <= set(shares) <= set(expected)
        for zone, share in shares.items():
            assert abs(share - expected[zone]) < 0.1, (zone, share, expected[zone])


def test_search_endpoint_answers_what_an_officer_types(api: str, manifest: list[dict]) -> None:
    """``/cadastre/search`` over HTTP: numbers, codes, names without marks, bounded and
    refusing what PostgreSQL cannot take."""
    district = manifest[0]["district_code"]
    first = _first(api, f"parcels-{district}")["properties"]

    def search(q: str, **params: str) -> httpx.Response:
        return httpx.get(f"{api}/cadastre/search", params={"q": q, **params}, timeout=60)

    ref = first["parcel_ref"]
    for spelling in (ref, ref.replace(".", " "), ref.replace(".", "/")):
        body = search(spelling).json()
        assert body["features"][0]["properties"]["ref"] == ref, spelling
    hit = search(ref).json()["features"][0]
    assert hit["geometry"]["type"] == "Point" and len(hit["bbox"]) == 4
    by_sheet = search(f"{first['sheet_no']}/{first['parcel_no']}", district=district).json()
    assert ref in {f["properties"]["ref"] for f in by_sheet["features"]}
    assert {f["properties"]["district_code"] for f in by_sheet["features"]} == {district}
    commune = search(first["commune_code"]).json()["features"]
    assert [f["properties"]["kind"] for f in commune] == ["commune"]
    name = commune[0]["properties"]["unit_name"]
    plain = "".join(c for c in unicodedata.normalize("NFD", name.replace("đ", "d")
                                                     .replace("Đ", "D"))
                    if unicodedata.category(c) != "Mn").lower()
    assert first["commune_code"] in {f["properties"]["ref"] for f in search(plain).json()
                                     ["features"]}
    assert search(district).json()["features"][0]["properties"]["kind"] == "district"
    assert len(search("Phường", limit="2").json()["features"]) == 2
    assert search("%_%").json()["features"] == []  # wildcards are literal
    for bad in ({"q": "a\x00b"}, {"q": "   "}, {"q": "x", "limit": "51"},
                {"q": "x", "district": "1"}):
        assert httpx.get(f"{api}/cadastre/search", params=bad, timeout=60).status_code == 422
