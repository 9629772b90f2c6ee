#!/usr/bin/env bash
# Refresh the browser libraries the planner's map serves from lis/web/static/vendor/.
#
# The vendored files are committed, so neither users nor CI need npm at run time; run this only
# to change a version: edit web/package.json, `npm install --package-lock-only --prefix web`,
# then this script, then commit web/package*.json and the vendor folder together.
#
#   1. npm ci --prefix web   (exactly the versions and hashes pinned in web/package-lock.json)
#   2. copy leaflet's dist (leaflet.js, leaflet.css, images/, LICENSE) into the vendor folder
#   3. write VERSION there; remove web/node_modules (a build cache, never committed)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WEB="$ROOT/web"
DEST="$ROOT/lis/web/static/vendor/leaflet"

command -v npm >/dev/null 2>&1 || { echo "[vendor-web] npm is needed (Debian: apt-get install npm)" >&2; exit 1; }
trap 'rm -rf "$WEB/node_modules"' EXIT

npm ci --prefix "$WEB" --ignore-scripts --no-audit --no-fund
SRC="$WEB/node_modules/leaflet"
VERSION="$(node -p "require('$SRC/package.json').version")"

rm -rf "$DEST/images"
mkdir -p "$DEST/images"
cp "$SRC/dist/leaflet.js" "$SRC/dist/leaflet.js.map" "$SRC/dist/leaflet.css" "$DEST/"
cp "$SRC"/dist/images/*.png "$DEST/images/"
cp "$SRC/LICENSE" "$DEST/LICENSE"
echo "$VERSION" > "$DEST/VERSION"
echo "[vendor-web] leaflet $VERSION -> ${DEST#"$ROOT"/}"
