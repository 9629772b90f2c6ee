"""Refresh the browser assets of the HTML pages and the templates that point at them.

pygeoapi's templates load Bootstrap, Leaflet and friends from CDNs; on an office network
without internet those pages are unstyled and their maps blank. This script
  1. fetches the pinned npm packages (``npm pack``, into a temporary folder), copies only
     the files the pages use, with each package's licence, into
     ``landplatform/publish/static/vendor/<package>/`` (served at ``/vendor/...``);
  2. copies the pygeoapi templates that name a CDN into ``landplatform/publish/templates``
     with those references pointing at ``/vendor/...`` (pygeoapi falls back to its own
     templates for every other page), and fails if any external script or stylesheet is
     left.
The output is committed: neither users nor CI need npm. Run it after a pygeoapi upgrade
or to change a version here: ``python scripts/vendor_pages.py`` (``--templates-only``: the
templates alone, without npm).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "landplatform" / "publish" / "static" / "vendor"
TEMPLATES = ROOT / "landplatform" / "publish" / "templates"

# npm package@version -> (vendor folder, [files in the package to copy], licence file)
PACKAGES = {
    "bootstrap@5.1.3": ("bootstrap", ["dist/css/bootstrap.min.css"], "LICENSE"),
    "leaflet@1.9.4": ("leaflet", ["dist/leaflet.js", "dist/leaflet.css", "dist/images/*"],
                      "LICENSE"),
    "leaflet.markercluster@1.5.3": ("leaflet.markercluster", [
        "dist/leaflet.markercluster.js", "dist/MarkerCluster.css",
        "dist/MarkerCluster.Default.css"], "MIT-LICENCE.txt"),
    "c3@0.7.20": ("c3", ["c3.min.css", "c3.min.js"], "LICENSE"),
    "d3@5.16.0": ("d3", ["dist/d3.min.js"], "LICENSE"),
    "covutils@0.6.1": ("covutils", ["covutils.min.js"], "LICENSE"),
    "covjson-reader@0.16.3": ("covjson-reader", ["covjson-reader.min.js"], "LICENSE"),
    "leaflet-coverage@0.7.2": ("leaflet-coverage", ["leaflet-coverage.min.js",
                                                    "leaflet-coverage.css"], "LICENSE"),
    # the planner's map (lis/web): vector tiles in WebGL; the UMD build carries its
    # worker inline (a blob), so nothing else is fetched
    "maplibre-gl@5.24.1": ("maplibre-gl", ["dist/maplibre-gl.js", "dist/maplibre-gl.css"],
                           "LICENSE.txt"),
    "swagger-ui-dist@5.35.0": ("swagger-ui", [
        "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css",
        "favicon-32x32.png", "favicon-16x16.png", "NOTICE"], "LICENSE"),
}

V = "{{ config['server']['url'] }}/vendor"
# (pattern, replacement) over the templates' text; a pattern that is a whole tag with
# nothing to load here (an OGC API Maps plugin, drawing tools for records, html5shiv for
# IE 8) is removed.
REWRITES = [
    (r'https://unpkg\.com/bootstrap@[\d.]+/dist/css/bootstrap\.min\.css',
     f"{V}/bootstrap/bootstrap.min.css"),
    (r'https://unpkg\.com/leaflet@[\d.]+/dist/leaflet\.(css|js)', f"{V}/leaflet/leaflet.\\1"),
    (r'https://cdnjs\.cloudflare\.com/ajax/libs/leaflet/[\d.]+/leaflet\.js',
     f"{V}/leaflet/leaflet.js"),
    (r'https://unpkg\.com/leaflet\.markercluster/dist/(MarkerCluster(?:\.Default)?\.css)',
     f"{V}/leaflet.markercluster/\\1"),
    (r'https://unpkg\.com/leaflet\.markercluster/dist/leaflet\.markercluster-src\.js',
     f"{V}/leaflet.markercluster/leaflet.markercluster.js"),
    (r'https://cdn\.jsdelivr\.net/npm/c3@[\d.]+/c3\.(css|js)', f"{V}/c3/c3.min.\\1"),
    (r'https://cdn\.jsdelivr\.net/npm/d3@[\d.]+/dist/d3\.js', f"{V}/d3/d3.min.js"),
    (r'https://unpkg\.com/covutils@[\d.]+/covutils\.min\.js', f"{V}/covutils/covutils.min.js"),
    (r'https://unpkg\.com/covjson-reader@[\d.]+/covjson-reader\.src\.js',
     f"{V}/covjson-reader/covjson-reader.min.js"),
    (r'https://unpkg\.com/leaflet-coverage@[\d.]+/leaflet-coverage\.(css|min\.js)',
     f"{V}/leaflet-coverage/leaflet-coverage.\\1"),
    (r'https://unpkg\.com/swagger-ui-dist/([\w.-]+)', f"{V}/swagger-ui/\\1"),
    (r'\s*<script src="https://unpkg\.com/leaflet-imageoverlay-ogcapi[^"]*"></script>', ""),
    (r'\s*<!--\[if lt IE 9\]>.*?<!\[endif\]-->', ""),
    (r'\s*\{% if data\[\'itemtype\'\] == \'record\' %\}\s*<link[^>]*leaflet-draw[^>]*/>\s*'
     r'<script[^>]*leaflet-draw[^>]*></script>\s*\{% endif %\}', ""),
]
# Field labels from the layer declarations (the provider's ``fields`` in the config:
# [name, type, title]) for the collection ``cid_expr`` names, into ``ns.labels``.
LABELS = """{% set ns = namespace(labels={}) %}
{%- set cid = (CID_EXPR).rstrip('/').split('/') | last %}
{%- for p in config['resources'].get(cid, {}).get('providers', []) if p.type == 'feature' %}
{%- for f in (p.data.fields if p.data is mapping else []) or [] %}
{%- set _ = ns.labels.update({f[0]: f[2] or f[0]}) %}
{%- endfor %}{%- endfor %}"""
# (page, old, new): exact edits after the rewrites; each must match once. Labels instead of
# column names, nothing instead of ``None``, and the composition root's pages
# (``server.pages``, e.g. the planner's map) linked from the landing page.
EDITS = [
    ("collections/items/item.html", "{% block body %}",
     "{% block body %}\n" + LABELS.replace(
         "CID_EXPR", "(data['links'] | selectattr('rel', 'equalto', 'collection') "
                     "| map(attribute='href') | first) or ''")),
    ("collections/items/item.html", "<td>{{ k | striptags }}</td>",
     "<td title=\"{{ k | striptags }}\">{{ ns.labels.get(k, k) | striptags }}</td>"),
    ("collections/items/item.html",
     "{% set val = v | string | trim %}\n    {% if val|length and",
     "{% set val = v | string | trim %}\n    {% if v is none %}\n"
     "        <span class=\"text-muted\">&ndash;</span>\n    {% elif val|length and"),
    ("collections/items/index.html", "{% block body %}",
     "{% block body %}\n" + LABELS.replace("CID_EXPR", "data['dataset_path'] or ''")),
    ("collections/items/index.html", "<th>{{ k | striptags }}</th>",
     "<th title=\"{{ k | striptags }}\">{{ ns.labels.get(k, k) | striptags }}</th>"),
    ("collections/items/index.html", "<th>{{ title_field }}</th>",
     "<th title=\"{{ title_field }}\">{{ ns.labels.get(title_field, title_field) }}</th>"),
    ("collections/items/index.html",
     "{{ ft.properties.get(prop, '') | string | truncate( 35 ) }}",
     "{{ '' if ft.properties.get(prop) is none else "
     "ft.properties.get(prop) | string | truncate( 35 ) }}"),
    ("landing_page.html", "  {% if data['collection'] %}\n  <section id=\"collections\">",
     "  {% if config['server'].get('pages') %}\n  <section id=\"pages\">\n"
     "    <h2>Bản đồ và công cụ <small>(maps and tools)</small></h2>\n"
     "    <p class=\"languages\">Ngôn ngữ / language: "
     "<a href=\"?f=html&amp;lang=vi\" hreflang=\"vi\">Tiếng Việt</a> | "
     "<a href=\"?f=html&amp;lang=en\" hreflang=\"en\">English</a></p>\n    <ul>\n"
     "    {% for page in config['server']['pages'] %}\n"
     "      <li><a href=\"{{ page['href'] }}\">{{ page['title'] }}</a></li>\n"
     "    {% endfor %}\n    </ul>\n  </section>\n  {% endif %}\n"
     "  {% if data['collection'] %}\n  <section id=\"collections\">"),
]
# the pages this platform serves through pygeoapi (STAC, EDR, tiles and AsyncAPI pages are
# not reachable here, so they are left as pygeoapi ships them)
PAGES = ["_base.html", "landing_page.html", "collections/collection.html",
         "collections/items/index.html", "collections/items/item.html",
         "collections/coverage/index.html", "openapi/swagger.html"]
EXTERNAL = re.compile(r'<(?:script|link)\b[^>]*(?:src|href)="https?://', re.IGNORECASE)


def fetch(spec: str, folder: str, files: list[str], licence: str, work: Path) -> None:
    subprocess.run(["npm", "pack", spec, "--silent", "--pack-destination", str(work)],
                   check=True, capture_output=True, timeout=300)
    name, version = spec.rsplit("@", 1)
    tgz = next(work.glob(f"{name.replace('/', '-')}-{version}.tgz"))
    unpacked = work / folder
    with tarfile.open(tgz) as tar:
        tar.extractall(unpacked, filter="data")
    package = unpacked / "package"
    dest = VENDOR / folder
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for pattern in files:
        for src in sorted(package.glob(pattern)):
            # a folder pattern (``dist/images/*``) keeps its folder, a file goes flat
            target = (dest / src.relative_to(package / Path(pattern).parent.parent)
                      if pattern.endswith("/*") else dest / src.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = src.read_bytes()
            if src.suffix in (".js", ".css"):  # the source maps are not shipped
                text = re.sub(rb"\n(?://|/\*)# sourceMappingURL=[^\n]*", b"", text)
            target.write_bytes(text)
    shutil.copy(package / licence, dest / "LICENSE")
    (dest / "VERSION").write_text(f"{spec} (npm)\n", encoding="utf-8")


def rewrite_templates() -> None:
    import pygeoapi

    source = Path(pygeoapi.__file__).parent / "templates"
    for page in PAGES:
        text = (source / page).read_text(encoding="utf-8")
        for pattern, replacement in REWRITES:
            text = re.sub(pattern, replacement, text, flags=re.DOTALL)
        for _, old, new in [e for e in EDITS if e[0] == page]:
            if text.count(old) != 1:
                sys.exit(f"{page}: the edit for {old!r} no longer applies (pygeoapi changed?)")
            text = text.replace(old, new)
        left = EXTERNAL.findall(text)
        if left:
            sys.exit(f"{page} still loads from the internet: {left}")
        target = TEMPLATES / page
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def main() -> None:
    if "--templates-only" not in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            for spec, (folder, files, licence) in PACKAGES.items():
                fetch(spec, folder, files, licence, Path(tmp))
        print(f"vendored {len(PACKAGES)} packages into {VENDOR.relative_to(ROOT)}")
    rewrite_templates()
    print(f"rewrote {len(PAGES)} templates into {TEMPLATES.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
