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
