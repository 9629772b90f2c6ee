// The planner's map: parcels and planning zones of one district, from the platform's OGC APIs.
//
// Everything is discovered from /collections: districts are the `parcels-<d>` collections, and
// a district's zones (`planning-zones-<d>`) and price surface (`price-surface-<d>`) are drawn
// when those collections exist, so new domains appear here without a change to this page.
// `window.lisMap` exposes the state (status, counts, layers) for tests and for debugging.

import { bbox, interiorPoint, overlapping } from './geometry.js';

const L = window.L;
const ROOT = new URL('.', window.location.href); // the platform root: this page is <root>/map
const PAGE_LIMIT = 10000; // the API's largest page
const NO_COLOUR = '#cccccc';
const NUMBER = new Intl.NumberFormat('vi-VN', { maximumFractionDigits: 1 });
const PRICE_RAMP = ['#2c7bb6', '#abd9e9', '#ffffbf', '#fdae61', '#d7191c'];

const state = {
  status: 'init', // init -> loading -> ready | empty | error
  error: null,
  district: null,
  districts: [],
  available: { zones: false, price: false },
  counts: { parcels: 0, zones: 0, legend: 0 },
  priceNote: null,
  selected: null,
  map: null,
  groups: {},
  landUse: new Map(),
  parcelLayers: new Map(), // parcel_ref -> Leaflet layer
  zones: [], // [{geometry, bbox, properties}]
  /** A point well inside a drawn parcel, as {lat, lng} (tests click there). */
  interiorLatLng(ref) {
    const layer = state.parcelLayers.get(ref);
    const p = layer && interiorPoint(layer.feature.geometry);
    return p ? { lat: p[1], lng: p[0] } : null;
  },
  visible(name) {
    return Boolean(state.map && state.groups[name] && state.map.hasLayer(state.groups[name]));
  },
};
window.lisMap = state;

const $ = (id) => document.getElementById(id);
const api = (path) => new URL(path, ROOT).toString();

function setStatus(status, message) {
  state.status = status;
  const el = $('status');
  el.textContent = message;
  el.title = message;
  el.classList.toggle('error', status === 'error');
  el.dataset.state = status;
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`HTTP ${response.status} for ${url}`);
  return response.json();
}

/** Same-origin form of an API link (its host is the server's configured base URL). */
function local(href) {
  const url = new URL(href, ROOT);
  return url.pathname + url.search;
}

/** Every feature of a collection query, following `next` links. */
async function allFeatures(url) {
  const features = [];
  let next = url;
  while (next) {
    const page = await getJSON(next);
    features.push(...page.features);
    const link = (page.links || []).find((l) => l.rel === 'next');
    next = link && page.features.length ? local(link.href) : null;
  }
  return features;
}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

function colourOf(code) {
  return state.landUse.get(code)?.color || NO_COLOUR;
}

function darken(hex, factor = 0.55) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || '');
  if (!m) return '#444444';
  const part = (h) => Math.round(parseInt(h, 16) * factor).toString(16).padStart(2, '0');
  return `#${part(m[1])}${part(m[2])}${part(m[3])}`;
}

/** The first present property among alternative names (domains may name fields differently). */
function pick(props, names) {
  for (const name of names) {
    if (props[name] !== undefined && props[name] !== null && props[name] !== '') return props[name];
  }
  return null;
}

const ZONE_FIELDS = {
  code: ['zone_code', 'code'],
  use: ['planned_use', 'planned_land_use', 'land_use'],
  function: ['function', 'zone_function', 'function_name'],
  coverage: ['coverage_pct', 'building_coverage_pct', 'max_coverage_pct', 'coverage',
    'building_coverage'],
  floors: ['max_floors', 'floors', 'max_floor'],
  far: ['far', 'max_far', 'floor_area_ratio'],
};

function fmt(value) {
  if (value === null || value === undefined) return '–';
  return typeof value === 'number' ? NUMBER.format(value) : String(value);
}

// ------------------------------------------------------------------ map and controls

function createMap() {
  const map = L.map('map', { zoomSnap: 0.25, preferCanvas: false });
  // Panes: the price surface over the (opaque) parcel fills, zones on top; neither of them
  // catches clicks, which go to the parcels underneath.
  map.createPane('parcels').style.zIndex = 400;
  map.createPane('price').style.zIndex = 410;
  map.createPane('zones').style.zIndex = 420;
  map.getPane('zones').style.pointerEvents = 'none';
  map.getPane('price').style.pointerEvents = 'none';
  map.setView([16.0, 106.0], 6);
  L.control.scale({ imperial: false }).addTo(map);
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution('Dữ liệu: hệ thống thông tin đất đai');

  state.groups = {
    parcels: L.layerGroup().addTo(map),
    zones: L.layerGroup().addTo(map),
    price: L.layerGroup(),
    // Internet base map: off by default; the platform needs no tile service.
    osm: L.tileLayer('https://tile.openstreetmap.org/{z}/{x}/{y}.png', {
      maxZoom: 19, attribution: '&copy; OpenStreetMap contributors',
    }),
  };
  state.layersControl = L.control.layers(null, null, { collapsed: false }).addTo(map);
  state.legend = L.control({ position: 'bottomright' });
  state.legend.onAdd = () => {
    const div = L.DomUtil.create('div', 'legend');
    div.dataset.testid = 'legend';
    L.DomEvent.disableScrollPropagation(div);
    L.DomEvent.disableClickPropagation(div);
    return div;
  };
  state.legend.addTo(map);
  state.map = map;
}

const LABELS = {
  parcels: '<span data-testid="toggle-parcels">Thửa đất (parcels)</span>',
  zones: '<span data-testid="toggle-zones">Ô quy hoạch (planning zones)</span>',
  price: '<span data-testid="toggle-price">Giá đất (price surface)</span>',
  osm: '<span data-testid="toggle-osm">Nền OpenStreetMap (internet)</span>',
};

function refreshLayersControl() {
  const control = state.layersControl;
  for (const name of Object.keys(LABELS)) control.removeLayer(state.groups[name]);
  control.addOverlay(state.groups.parcels, LABELS.parcels);
  if (state.available.zones) control.addOverlay(state.groups.zones, LABELS.zones);
  if (state.available.price) control.addOverlay(state.groups.price, LABELS.price);
  control.addOverlay(state.groups.osm, LABELS.osm);
}

function renderLegend(parcelCodes, zoneCodes) {
  const div = state.legend.getContainer();
  div.replaceChildren();
  const section = (title, codes, testid, outlined) => {
    const list = el('ul');
    for (const [code, count] of codes) {
      const colour = colourOf(code);
      const swatch = el('span', { className: 'swatch' });
      swatch.style.background = outlined ? 'transparent' : colour;
      if (outlined) swatch.style.border = `2px dashed ${darken(colour)}`;
      const names = state.landUse.get(code);
      const item = el('li', { title: names ? `${names.name_vi} (${names.name_en})` : code }, [
        swatch,
        el('span', { className: 'code', textContent: code }),
        el('span', { className: 'name', textContent: state.landUse.get(code)?.name_vi || '?' }),
        el('span', { className: 'count', textContent: NUMBER.format(count) }),
      ]);
      item.dataset.testid = testid;
      item.dataset.code = code;
      list.append(item);
    }
    div.append(el('h4', { textContent: title }), list);
  };
  section('Loại đất hiện trạng (land use)', parcelCodes, 'legend-item', false);
  if (zoneCodes.length) section('Đất quy hoạch (planned use)', zoneCodes, 'legend-zone', true);
  if (state.price) {
    const ramp = el('div', { className: 'ramp' });
    ramp.style.background = `linear-gradient(to right, ${PRICE_RAMP.join(', ')})`;
    div.append(el('h4', { textContent: 'Giá đất (VND/m²)' }), ramp, el('div',
      { className: 'ramp-labels' }, [el('span', { textContent: fmt(state.price.min) }),
        el('span', { textContent: fmt(state.price.max) })]));
  }
  state.counts.legend = parcelCodes.length;
}

function countBy(features, key) {
  const counts = new Map();
  for (const f of features) {
    const code = f.properties[key] || '?';
    counts.set(code, (counts.get(code) || 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

// ------------------------------------------------------------------ parcel panel

function showParcel(layer) {
  const map = state.map;
  if (state.selected) state.parcelsGeo.resetStyle(state.selected);
  layer.setStyle({ color: '#d00000', weight: 3 });
  layer.bringToFront();
  state.selected = layer;
  const p = layer.feature.properties;
  const commune = state.communes.get(p.commune_code);
  const use = state.landUse.get(p.primary_land_use);
  const rows = [
    ['Số hiệu thửa (parcel ref)', p.parcel_ref],
    ['Xã/phường (commune)', commune ? `${p.commune_code} – ${commune}` : p.commune_code],
    ['Tờ bản đồ (sheet)', fmt(p.sheet_no)],
    ['Thửa số (parcel no.)', fmt(p.parcel_no)],
    ['Diện tích (area)', p.area_m2 == null ? '–' : `${fmt(p.area_m2)} m²`],
    ['Loại đất (land use)', use ? `${p.land_use} – ${use.name_vi}` : fmt(p.land_use)],
  ];
  if (p.address) rows.push(['Địa chỉ (address)', p.address]);
  $('panel-ref').textContent = p.parcel_ref;
  $('panel-attrs').replaceChildren(...rows.flatMap(([k, v]) => [
    el('dt', { textContent: k }), el('dd', { textContent: v ?? '–' })]));

  const body = $('panel-zones').tBodies[0];
  const over = state.available.zones ? overlapping(layer.feature.geometry, state.zones) : [];
  body.replaceChildren(...over.map(({ candidate, share }) => {
    const z = candidate.properties;
    const plan = [z.plan_code, z.decision_no].filter(Boolean).join(', QĐ ');
    const row = el('tr', { title: `${plan ? `${plan}: ` : ''}≈ ${Math.round(share * 100)} % `
      + 'của thửa (of the parcel)' },
      ['code', 'use', 'function', 'coverage', 'floors', 'far'].map(
        (k) => el('td', { textContent: fmt(pick(z, ZONE_FIELDS[k])) })));
    row.dataset.testid = 'zone-row';
    row.dataset.zone = fmt(pick(z, ZONE_FIELDS.code));
    return row;
  }));
  $('panel-zones').hidden = over.length === 0;
  $('panel-zones-note').textContent = !state.available.zones
    ? 'Chưa có quy hoạch công bố cho quận/huyện này (no planning zones published).'
    : over.length ? `${over.length} ô quy hoạch (zones)`
      : 'Không có ô quy hoạch nào phủ thửa này (no zone over this parcel).';
  const wasHidden = $('panel').hidden;
  $('panel').hidden = false;
  if (wasHidden) map.invalidateSize({ pan: false });
}

function hidePanel() {
  if (state.selected) state.parcelsGeo.resetStyle(state.selected);
  state.selected = null;
  $('panel').hidden = true;
  state.map.invalidateSize({ pan: false });
}

// ------------------------------------------------------------------ price surface

/** Draw a CoverageJSON grid (geographic CRS only) to a data URL with a colour ramp. */
function coverageImage(cov) {
  const { x, y } = cov.domain.axes;
  const system = cov.domain.referencing?.[0]?.system?.id || '';
  if (!/CRS84|EPSG\/0\/4326$/.test(system)) {
    throw new Error(`price surface in ${system || 'an unknown CRS'} is not drawn`);
  }
  const range = Object.values(cov.ranges)[0];
  const values = range.values.map((v) => (typeof v === 'number' && v > 0 ? v : null));
  const present = values.filter((v) => v !== null);
  if (!present.length) throw new Error('price surface has no values');
  const min = Math.min(...present);
  const max = Math.max(...present);
  const canvas = el('canvas', { width: x.num, height: y.num });
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(x.num, y.num);
  const stops = PRICE_RAMP.map((h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16)));
  const northUp = y.start > y.stop; // rows from north to south, as on the canvas
  values.forEach((v, i) => {
    if (v === null) return;
    const row = Math.floor(i / x.num);
    const col = i % x.num;
    const at = ((northUp ? row : y.num - 1 - row) * x.num + col) * 4;
    const t = max > min ? ((v - min) / (max - min)) * (stops.length - 1) : 0;
    const k = Math.min(Math.floor(t), stops.length - 2);
    const f = t - k;
    for (let c = 0; c < 3; c += 1) {
      image.data[at + c] = Math.round(stops[k][c] * (1 - f) + stops[k + 1][c] * f);
    }
    image.data[at + 3] = 255;
  });
  ctx.putImageData(image, 0, 0);
  const south = Math.min(y.start, y.stop);
  const north = Math.max(y.start, y.stop);
  return { url: canvas.toDataURL('image/png'), min, max,
    bounds: [[south, Math.min(x.start, x.stop)], [north, Math.max(x.start, x.stop)]] };
}

/**
 * pygeoapi 0.24 serves a coverage as CoverageJSON (f=json) or in the provider's native format:
 * a native PNG (a link of type image/png) is used as is, placed on the collection's extent;
 * otherwise the CoverageJSON grid is drawn here.
 */
async function loadPrice(id) {
  const collection = await getJSON(api(`collections/${id}?f=json`));
  const png = (collection.links || []).find((l) => (l.type || '').startsWith('image/png')
    && /\/coverage/.test(l.href));
  if (png) {
    const [minx, miny, maxx, maxy] = collection.extent.spatial.bbox[0];
    return { url: local(png.href), bounds: [[miny, minx], [maxy, maxx]], min: null, max: null };
  }
  return coverageImage(await getJSON(api(`collections/${id}/coverage?f=json`)));
}

// ------------------------------------------------------------------ a district

let loadSeq = 0;

async function loadDistrict(code) {
  const seq = ++loadSeq;
  const district = state.districts.find((d) => d.code === code);
  state.district = code;
  state.selected = null;
  if (!$('panel').hidden) {
    $('panel').hidden = true;
    state.map.invalidateSize({ pan: false });
  }
  setStatus('loading', `Đang tải ${district.title}…`);
  const zonesId = `planning-zones-${code}`;
  const priceId = `price-surface-${code}`;
  const available = { zones: state.collections.has(zonesId),
    price: state.collections.has(priceId) };
  let results;
  try {
    results = await Promise.all([
      allFeatures(api(`collections/parcels-${code}/items?f=json&limit=${PAGE_LIMIT}`)),
      available.zones
        ? allFeatures(api(`collections/${zonesId}/items?f=json&limit=${PAGE_LIMIT}`)) : [],
      allFeatures(api(`collections/admin-units/items?f=json&level=commune&parent_code=${code}`
        + `&skipGeometry=true&limit=${PAGE_LIMIT}`)).catch(() => []),
      available.price ? loadPrice(priceId).catch((e) => ({ error: e.message })) : null,
    ]);
  } catch (error) {
    if (seq === loadSeq) throw error;
  }
  if (seq !== loadSeq) return; // another district was chosen meanwhile
  const [parcels, zones, communes, price] = results;

  for (const group of Object.values(state.groups)) {
    if (group !== state.groups.osm) group.clearLayers();
  }
  state.available = { zones: available.zones, price: Boolean(price && !price.error) };
  state.priceNote = price?.error || null;
  state.price = state.available.price ? price : null;
  state.communes = new Map(communes.map((f) => [f.properties.code, f.properties.name]));
  state.parcelLayers = new Map();

  state.parcelsGeo = L.geoJSON(parcels, {
    pane: 'parcels',
    className: 'lis-parcel',
    style: (f) => ({ color: '#4d4d4d', weight: 0.6, fillOpacity: 0.85,
      fillColor: colourOf(f.properties.primary_land_use) }),
    onEachFeature: (f, layer) => {
      state.parcelLayers.set(f.properties.parcel_ref, layer);
      layer.on('click', () => showParcel(layer));
    },
  }).addTo(state.groups.parcels);

  state.zones = zones.map((f) => ({ geometry: f.geometry, bbox: bbox(f.geometry),
    properties: f.properties }));
  if (zones.length) {
    L.geoJSON(zones, {
      pane: 'zones',
      className: 'lis-zone',
      interactive: false,
      style: (f) => {
        const colour = colourOf(pick(f.properties, ZONE_FIELDS.use));
        return { color: darken(colour), weight: 2.2, dashArray: '6 4', fillColor: colour,
          fillOpacity: 0.1 };
      },
    }).addTo(state.groups.zones);
  }
  if (state.price) {
    L.imageOverlay(state.price.url, state.price.bounds, { pane: 'price', opacity: 0.7 })
      .addTo(state.groups.price);
  }
  refreshLayersControl();
  renderLegend(countBy(parcels, 'primary_land_use'),
    zones.length ? zones.reduce((acc, f) => {
      const use = pick(f.properties, ZONE_FIELDS.use) || '?';
      const hit = acc.find((a) => a[0] === use);
      if (hit) hit[1] += 1; else acc.push([use, 1]);
      return acc;
    }, []).sort((a, b) => b[1] - a[1]) : []);

  state.counts.parcels = state.parcelLayers.size;
  state.counts.zones = zones.length;
  if (parcels.length) state.map.fitBounds(state.parcelsGeo.getBounds(), { padding: [12, 12] });
  const url = new URL(window.location.href);
  url.searchParams.set('district', code);
  window.history.replaceState(null, '', url);
  const parts = [`${NUMBER.format(parcels.length)} thửa (parcels)`];
  if (available.zones) parts.push(`${NUMBER.format(zones.length)} ô quy hoạch (zones)`);
  if (state.available.price) parts.push('giá đất (prices)');
  if (state.priceNote) parts.push(`giá đất: ${state.priceNote}`);
  setStatus('ready', `${code}: ${parts.join(', ')}`);
}

// ------------------------------------------------------------------ start

async function start() {
  createMap();
  const [collections, landUse] = await Promise.all([
    getJSON(api('collections?f=json')),
    allFeatures(api(`collections/land-use-types/items?f=json&skipGeometry=true&limit=1000`)),
  ]);
  state.collections = new Map(collections.collections.map((c) => [c.id, c]));
  state.landUse = new Map(landUse.map((f) => [f.properties.code, f.properties]));
  state.districts = collections.collections
    // districts only: parcels-p<code> are the 2025 provinces (not a unit this map shows)
    .map((c) => ({ match: /^parcels-(\d{3})$/.exec(c.id), c }))
    .filter(({ match }) => match)
    .map(({ match, c }) => ({ code: match[1],
      title: `${match[1]} – ${(c.title || '').replace(/^Cadastral parcels,\s*/, '')}` }))
    .sort((a, b) => a.code.localeCompare(b.code));

  const select = $('district');
  select.replaceChildren(...state.districts.map((d) => el('option',
    { value: d.code, textContent: d.title })));
  if (!state.districts.length) {
    select.append(el('option', { value: '', textContent: 'Chưa có dữ liệu (no districts)' }));
    setStatus('empty', 'Chưa có thửa đất nào được công bố (no parcels published).');
    return;
  }
  select.disabled = false;
  select.addEventListener('change', () => loadDistrict(select.value).catch(fail));
  $('panel-close').addEventListener('click', hidePanel);
  const wanted = new URL(window.location.href).searchParams.get('district');
  const first = state.districts.some((d) => d.code === wanted) ? wanted : state.districts[0].code;
  select.value = first;
  await loadDistrict(first);
}

function fail(error) {
  state.error = String(error?.message || error);
  setStatus('error', `Lỗi (error): ${state.error}`);
  console.error(error);
}

start().catch(fail);
