// The planner's map style (MapLibre GL), built from what the platform publishes.
//
// A plain ES module without DOM access: the planner's map imports it, and so can a page on
// another origin that embeds MapLibre over the platform's tiles (CORS lets it read them):
//
//   const { loadStyle } = await import('https://lis.example.vn/map/static/style.js');
//   new maplibregl.Map({ container: 'map', style: await loadStyle('https://lis.example.vn/') });
//
// Parcels, zones and parcel values are the platform's own vector tiles (OGC API Tiles,
// WebMercatorQuad). Below z12 the parcels' tiles hold district and commune shapes with
// their dominant land use (the same `primary_land_use` property), so one colour rule draws
// both. Land-use colours are the code list's (`land-use-types`, Thông tư 08/2024 and the
// superseded 2018 codes), never written here. No glyphs or sprites: nothing but the
// platform is asked for anything.

export const NO_COLOUR = '#cccccc';
// unit price of the primary land-use part, VND/m²: stops of the price overlay's ramp
export const PRICE_STOPS = [
  [0, '#2c7bb6'], [10e6, '#abd9e9'], [30e6, '#ffffbf'], [60e6, '#fdae61'], [120e6, '#d7191c'],
];
export const PARCEL_ZOOM = 12; // from here the tiles hold parcels, below it summaries

/** `#rrggbb` darkened (zone outlines in their planned use's colour, but readable). */
export function darken(hex, factor = 0.55) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || '');
  if (!m) return '#444444';
  const part = (h) => Math.round(parseInt(h, 16) * factor).toString(16).padStart(2, '0');
  return `#${part(m[1])}${part(m[2])}${part(m[3])}`;
}

/** A MapLibre `match` on a property over the code list's colours. */
export function colourMatch(property, landUse, fallback = NO_COLOUR) {
  const pairs = [];
  for (const [code, row] of landUse) {
    if (row.color) pairs.push(code, row.color);
  }
  if (!pairs.length) return fallback;
  return ['match', ['coalesce', ['get', property], ''], ...pairs, fallback];
}

function tiles(root, id) {
  return {
    type: 'vector',
    // a string, not a URL object: that would escape the template's braces
    tiles: [`${new URL(`collections/${id}/tiles/WebMercatorQuad/`, root)}{z}/{y}/{x}`],
    minzoom: 0,
    maxzoom: 22,
    attribution: 'Hệ thống thông tin đất đai (land information platform)',
  };
}

/**
 * The style for a platform at `root` (its base URL, ending in `/`), given the code list
 * (`Map` code -> properties) and which collections exist (a `Set` of ids).
 */
export function buildStyle(root, landUse, collections) {
  const fill = colourMatch('primary_land_use', landUse);
  const sources = { parcels: tiles(root, 'parcels') };
  const layers = [
    { id: 'background', type: 'background', paint: { 'background-color': '#eef0ea' } },
    // districts and communes (below z12): their dominant land use, paler when it is
    // only a small share of the unit, with a firm outline
    { id: 'summary-fill', type: 'fill', source: 'parcels', 'source-layer': 'parcels',
      maxzoom: PARCEL_ZOOM, metadata: { group: 'parcels' },
      paint: { 'fill-color': fill,
        'fill-opacity': ['interpolate', ['linear'], ['coalesce', ['get', 'dominant_share'], 0.5],
          0, 0.45, 1, 0.9] } },
    { id: 'summary-line', type: 'line', source: 'parcels', 'source-layer': 'parcels',
      maxzoom: PARCEL_ZOOM, metadata: { group: 'parcels' },
      paint: { 'line-color': '#5a4a3a',
        'line-width': ['match', ['get', 'level'], 'district', 1.6, 0.7] } },
    { id: 'parcels-fill', type: 'fill', source: 'parcels', 'source-layer': 'parcels',
      minzoom: PARCEL_ZOOM, metadata: { group: 'parcels' },
      paint: { 'fill-color': fill, 'fill-opacity': 0.88 } },
    { id: 'parcels-line', type: 'line', source: 'parcels', 'source-layer': 'parcels',
      minzoom: PARCEL_ZOOM, metadata: { group: 'parcels' },
      paint: { 'line-color': '#4d4d4d',
        'line-width': ['interpolate', ['linear'], ['zoom'], 12, 0.2, 17, 1] } },
  ];
  if (collections.has('parcel-values')) {
    sources.prices = tiles(root, 'parcel-values');
    layers.push({ id: 'price-fill', type: 'fill', source: 'prices',
      'source-layer': 'parcel-values', minzoom: PARCEL_ZOOM, metadata: { group: 'price' },
      layout: { visibility: 'none' },
      filter: ['has', 'unit_price'],
      paint: { 'fill-opacity': 0.75,
        'fill-color': ['interpolate', ['linear'], ['to-number', ['get', 'unit_price'], 0],
          ...PRICE_STOPS.flat()] } });
  }
  if (collections.has('planning-zones')) {
    sources.zones = tiles(root, 'planning-zones');
    const zoneColour = colourMatch('planned_use', landUse);
    const zoneLine = ['match', ['coalesce', ['get', 'planned_use'], ''],
      ...[...landUse].filter(([, r]) => r.color).flatMap(([c, r]) => [c, darken(r.color)]),
      '#444444'];
    layers.push(
      { id: 'zones-fill', type: 'fill', source: 'zones', 'source-layer': 'planning-zones', minzoom: 10,
        metadata: { group: 'zones' }, paint: { 'fill-color': zoneColour, 'fill-opacity': 0.12 } },
      { id: 'zones-line', type: 'line', source: 'zones', 'source-layer': 'planning-zones', minzoom: 10,
        metadata: { group: 'zones' },
        paint: { 'line-color': landUse.size ? zoneLine : '#444444', 'line-width': 2.2,
          'line-dasharray': [3, 2] } },
    );
  }
  layers.push({ id: 'parcels-selected', type: 'line', source: 'parcels',
    'source-layer': 'parcels', minzoom: PARCEL_ZOOM, metadata: { group: 'selection' },
    filter: ['==', ['id'], -1], paint: { 'line-color': '#d00000', 'line-width': 3 } });
  return { version: 8, name: 'Bản đồ quy hoạch – planner\'s map', sources, layers,
    center: [106.0, 16.0], zoom: 5 };
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`HTTP ${response.status} for ${url}`);
  return response.json();
}

/** The code list as a Map code -> properties (code, name_vi, name_en, color, ...). */
export async function loadLandUse(root) {
  const page = await getJSON(new URL(
    'collections/land-use-types/items?f=json&skipGeometry=true&limit=1000', root));
  return new Map(page.features.map((f) => [f.properties.code, f.properties]));
}

/** The collections document's ids, and the collections by id. */
export async function loadCollections(root) {
  const doc = await getJSON(new URL('collections?f=json', root));
  return new Map(doc.collections.map((c) => [c.id, c]));
}

/** Everything a map on any origin needs: the style over the platform at `root`. */
export async function loadStyle(root) {
  const base = new URL(root, globalThis.location?.href).toString();
  const [landUse, collections] = await Promise.all([loadLandUse(base), loadCollections(base)]);
  return buildStyle(base, landUse, new Set(collections.keys()));
}

// ------------------------------------------------------------------ shared colours
//
// The national colour table gives one colour to many codes (#FFAAA0 for most public,
// service and business land): printed maps tell them apart by the code written in each
// parcel. This map cannot write text without a glyph server, so every code after the
// first of a shared colour gets a hatch in a darker tone of that colour (the fill stays
// the official colour underneath). Which code gets which hatch follows the code list
// (current codes, then superseded ones, each by code), so it is the same on every page
// and in the legend.

const HATCHES = ['diagonal', 'antidiagonal', 'horizontal', 'vertical', 'cross', 'dots',
  'grid', 'diamond', 'wide-diagonal', 'wide-antidiagonal', 'wide-horizontal', 'wide-vertical'];
const PATTERN_SIZE = 16;

/** Code -> {id, hatch, tone} for codes that share their colour with an earlier code. */
export function sharedColourPatterns(landUse) {
  const byColour = new Map();
  // current codes first (a superseded code never reaches a parcel: loads map it)
  const current = (row) => (/2024/.test(row.catalog || '') ? 0 : 1);
  const ordered = [...landUse].sort(([a, ra], [b, rb]) => current(ra) - current(rb)
    || a.localeCompare(b));
  for (const [code, row] of ordered) {
    if (!row.color) continue;
    const key = row.color.toUpperCase();
    if (!byColour.has(key)) byColour.set(key, []);
    byColour.get(key).push(code);
  }
  const patterns = new Map();
  for (const [colour, codes] of byColour) {
    codes.slice(1).forEach((code, i) => {
      const hatch = HATCHES[i % HATCHES.length];
      const tone = [0.55, 0.75, 0.35][Math.floor(i / HATCHES.length) % 3];
      patterns.set(code, { id: `lis-hatch-${code}`, hatch, tone, colour });
    });
  }
  return patterns;
}

function inHatch(hatch, x, y) {
  const n = PATTERN_SIZE;
  if (hatch.startsWith('wide-')) { // the same lines twice as far apart, twice as thick
    const line = hatch.slice(5);
    if (line === 'diagonal') return (x + y) % 16 < 4;
    if (line === 'antidiagonal') return (x - y + n) % 16 < 4;
    if (line === 'horizontal') return y % 16 < 4;
    return x % 16 < 4;
  }
  switch (hatch) {
    case 'diagonal': return (x + y) % 8 < 2;
    case 'antidiagonal': return (x - y + n) % 8 < 2;
    case 'horizontal': return y % 8 < 2;
    case 'vertical': return x % 8 < 2;
    case 'cross': return (x + y) % 8 < 2 || (x - y + n) % 8 < 2;
    case 'dots': return x % 8 < 3 && y % 8 < 3;
    case 'grid': return x % 8 < 1 || y % 8 < 1;
    default: return Math.abs((x % 8) - 4) + Math.abs((y % 8) - 4) === 3; // diamond
  }
}

/** A hatch as an RGBA image (transparent where not drawn): MapLibre's addImage input. */
export function hatchImage(pattern) {
  const n = PATTERN_SIZE;
  const data = new Uint8Array(n * n * 4);
  const rgb = [1, 3, 5].map((i) => Math.round(parseInt(pattern.colour.slice(i, i + 2), 16)
    * pattern.tone));
  for (let y = 0; y < n; y += 1) {
    for (let x = 0; x < n; x += 1) {
      if (!inHatch(pattern.hatch, x, y)) continue;
      data.set([...rgb, 255], (y * n + x) * 4);
    }
  }
  return { width: n, height: n, data };
}

/**
 * The hatch layers over shared colours, added to a map that has the style: the images,
 * then one fill layer per level (summaries below z12, parcels above), under the zones.
 */
export function addHatches(map, landUse) {
  const patterns = sharedColourPatterns(landUse);
  if (!patterns.size) return patterns;
  for (const pattern of patterns.values()) {
    if (!map.hasImage(pattern.id)) map.addImage(pattern.id, hatchImage(pattern));
  }
  const choice = ['match', ['coalesce', ['get', 'primary_land_use'], ''],
    ...[...patterns].flatMap(([code, p]) => [code, p.id]), ''];
  const codes = [...patterns.keys()];
  const filter = ['in', ['coalesce', ['get', 'primary_land_use'], ''], ['literal', codes]];
  const before = map.getLayer('price-fill') ? 'price-fill'
    : map.getLayer('zones-fill') ? 'zones-fill' : 'parcels-selected';
  map.addLayer({ id: 'parcels-hatch', type: 'fill', source: 'parcels', 'source-layer': 'parcels',
    minzoom: PARCEL_ZOOM, filter, metadata: { group: 'parcels' },
    paint: { 'fill-pattern': choice } }, before);
  map.addLayer({ id: 'summary-hatch', type: 'fill', source: 'parcels', 'source-layer': 'parcels',
    maxzoom: PARCEL_ZOOM, filter, metadata: { group: 'parcels' },
    paint: { 'fill-pattern': choice, 'fill-opacity': 0.8 } }, before);
  return patterns;
}
