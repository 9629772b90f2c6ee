"""The HTML pages work on a network without internet: every script and stylesheet they
load is served by the platform (vendored from npm), and in a real browser with every
request to another host refused, the pages are styled and their maps draw the features.

The one thing left outside is the basemap's raster tiles (OpenStreetMap, the map URL of
pygeoapi's config): without internet the map shows the features on a blank background.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from support import sample_window

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
BASEMAP_HOST = "tile.openstreetmap.org"
PAGES = [
    "/?f=html", "/collections?f=html", "/collections/parcels-001?f=html",
    "/collections/parcels-001/items?f=html&limit=20", "/collections/plans/items?f=html",
    "/collections/price-surface-003?f=html", "/processes?f=html", "/openapi?f=html",
    "/api-docs", f"/collections/price-surface-003/coverage?f=html&bbox={sample_window('003')}",
    "/map",  # the planner's map: MapLibre from /vendor, its own files from /map/static
]
# what a page loads: scripts, stylesheets, icons (not the <link rel=alternate> to data)
LOADED_RELS = {"stylesheet", "icon", "shortcut icon", "preload", "modulepreload"}


class _Loads(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.refs.append(a["src"])
        if tag == "link" and a.get("href") and (a.get("rel") or "").lower() in LOADED_RELS:
            self.refs.append(a["href"])


def _item_url(api: str) -> str:
    fid = httpx.get(f"{api}/collections/parcels-001/items", params={"limit": 1},
                    timeout=60).json()["features"][0]["id"]
    return f"/collections/parcels-001/items/{fid}?f=html"


@pytest.mark.parametrize("path", [*PAGES, "item"])
def test_page_loads_nothing_from_another_host(api: str, path: str) -> None:
    if path == "item":
        path = _item_url(api)
    page = httpx.get(api + path, timeout=60)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"], path
    parser = _Loads()
    parser.feed(page.text)
    assert parser.refs, f"{path} loads no script or stylesheet at all?"
    host = urlsplit(api).netloc
    for ref in parser.refs:
        url = urljoin(api + path, ref)
        assert urlsplit(url).netloc == host, (path, ref)
        asset = httpx.get(url, timeout=60)
        assert asset.status_code == 200 and asset.content, (path, url)
        if url.endswith(".js"):
            assert "javascript" in asset.headers["content-type"], url
        if url.endswith(".css"):
            assert "text/css" in asset.headers["content-type"], url
            # what the stylesheet pulls in (Leaflet's icons) is here too
            for inner in re.findall(r'url\(["\']?([^"\')]+)["\']?\)', asset.text):
                if inner.startswith("data:") or inner.startswith("#"):
                    continue
                target = urljoin(url, inner)
                assert urlsplit(target).netloc == host, (url, inner)
                assert httpx.get(target, timeout=60).status_code == 200, target
    assert not re.search(r"unpkg\.com|jsdelivr\.net|cdnjs\.|googleapis\.com", page.text)


def test_vendor_route_stays_inside_its_folder(api: str) -> None:
    ok = httpx.get(f"{api}/vendor/leaflet/leaflet.js", timeout=30)
    assert ok.status_code == 200 and "max-age" in ok.headers["cache-control"]
    assert 'version="1.9.4"' in ok.text.replace(" ", "")
    for bad in ("/vendor/..%2F..%2Fapp.py", "/vendor/leaflet/LICENSE", "/vendor/nope.js",
                "/vendor/"):
        assert httpx.get(api + bad, timeout=30).status_code == 404, bad


def test_every_vendored_package_carries_its_licence() -> None:
    vendor = Path(__file__).resolve().parent.parent / "landplatform" / "publish" / \
        "static" / "vendor"
    packages = [p for p in vendor.iterdir() if p.is_dir()]
    assert len(packages) >= 4
    for package in packages:
        assert (package / "LICENSE").stat().st_size > 200, package
        assert (package / "VERSION").read_text().strip(), package


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


@pytest.fixture
def offline(browser, api: str):  # noqa: ANN001, ANN201 - Playwright objects
    """A page whose requests to any other host are refused (and recorded)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.outside, page.errors = [], []
    local = urlsplit(api).netloc

    def route(r) -> None:  # noqa: ANN001
        url = urlsplit(r.request.url)
        if url.scheme in ("data", "blob") or url.netloc == local:
            r.continue_()
        else:
            page.outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.mark.parametrize("path", ["/collections/parcels-001/items?f=html&limit=20", "item"])
def test_items_map_draws_without_internet(offline, api: str, path: str) -> None:  # noqa: ANN001
    if path == "item":
        path = _item_url(api)
    offline.goto(api + path, wait_until="load")
    offline.wait_for_function("() => window.L && document.querySelector('.leaflet-container')")
    offline.wait_for_selector("path.leaflet-interactive", state="attached")
    drawn = offline.eval_on_selector_all("path.leaflet-interactive", "els => els.length")
    assert drawn >= 1
    # Bootstrap's stylesheet applied: the page header is a flex box (.d-flex), unstyled
    # it is a block
    display = offline.eval_on_selector("header.d-flex", "el => getComputedStyle(el).display")
    assert display == "flex"
    assert not offline.errors, offline.errors
    assert all(urlsplit(u).netloc.endswith(BASEMAP_HOST) for u in offline.outside), \
        offline.outside


def test_api_docs_render_without_internet(offline, api: str) -> None:  # noqa: ANN001
    for path in ("/api-docs", "/openapi?f=html"):
        offline.goto(api + path, wait_until="load")
        offline.wait_for_selector(".swagger-ui .opblock", state="attached", timeout=60_000)
        assert not offline.outside, offline.outside
        assert not offline.errors, offline.errors


# ---------------------------------------------------------------- what people read

def test_html_tables_show_labels_and_no_none(api: str) -> None:
    """Column and row labels are the layer's field titles (as its schema gives them), not
    database names like ``legal_area_m2``; an empty value is shown as nothing."""
    schema = httpx.get(f"{api}/collections/parcels-001/schema",
                       params={"f": "json"}, timeout=60).json()["properties"]
    titles = {k: v["title"] for k, v in schema.items()
              if v.get("title") and v["title"] != k}
    assert "legal_area_m2" in titles
    listing = httpx.get(f"{api}/collections/parcels-001/items",
                        params={"f": "html", "limit": 50}, timeout=60).text
    item = httpx.get(api + _item_url(api), timeout=60).text
    escape = {"'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}
    for page in (listing, item):
        for name, title in titles.items():
            shown = "".join(escape.get(c, c) for c in title)
            assert f">{shown}</t" in page, (name, title)
            assert f">{name}</t" not in page, name
        assert not re.search(r">\s*None\s*<", page)
    # the sample parcels do have empty values (current versions have no end)
    assert httpx.get(f"{api}/collections/parcels-001/items", params={"limit": 50},
                     timeout=60).json()["features"][0]["properties"]["valid_to"] is None


def test_landing_page_links_the_planners_map(api: str) -> None:
    landing = httpx.get(f"{api}/", params={"f": "html"}, timeout=60).text
    links = re.findall(r'<a href="([^"]+)"', landing)
    maps = [href for href in links if urlsplit(href).path == "/map"]
    assert maps, "no link to the planner's map"
    assert httpx.get(maps[0], timeout=60).status_code == 200
    assert "Bản đồ quy hoạch / Planner&#39;s map" in landing
    # the page in either language: pygeoapi's ?lang=, linked from the page itself
    for lang in ("vi", "en"):
        assert f"?f=html&amp;lang={lang}" in landing
        page = httpx.get(f"{api}/", params={"f": "html", "lang": lang}, timeout=60).text
        assert re.search(rf'<html lang="{lang}', page), lang
        assert "Bản đồ và công cụ" in page and "maps and tools" in page
