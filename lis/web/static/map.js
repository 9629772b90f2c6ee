// The planner's map: MapLibre GL over the platform's own vector tiles (parcels, planning
// zones, parcel values), with the code list's land-use colours, search, legends and a
// parcel panel.
//
// Everything is discovered from /collections: districts are the `parcels-<d>` collections,
// zones and prices are drawn when `planning-zones` and `parcel-values` exist, and labels
// are the layers' field titles (their schema), so new fields and domains appear here
// without a change to this page. `window.lisMap` exposes the state for tests and debugging.

import { interiorPoint, overlapping } from './geometry.js';
import {
  PARCEL_ZOOM, PRICE_STOPS, NO_COLOUR, addHatches, buildStyle, darken, hatchImage,
  loadCollections, loadLandUse,
} from './style.js';

const maplibregl = window.maplibregl;
const ROOT = new URL('.', window.location.href); // the platform root: this page is <root>/map
const NUMBER = new Intl.NumberFormat('vi-VN', { maximumFractionDigits: 1 });
const GROUPS = { parcels: ['summary-fill', 'summary-hatch', 'summary-line', 'parcels-fill',
  'parcels-hatch', 'parcels-line', 'parcels-selected'], zones: ['zones-fill', 'zones-line'], price: ['price-fill'] };
const PANEL_FIELDS = ['parcel_ref', 'commune_code', 'sheet_no', 'parcel_no', 'area_m2',
  'legal_area_m2', 'land_use', 'address', 'valid_from'];
const SUMMARY_FIELDS = ['unit_name', 'district_code', 'commune_code', 'parcel_count',
  'area_m2', 'primary_land_use', 'dominant_share', 'land_use_mix', 'shape_source'];
const ZONE_FIELDS = ['zone_code', 'planned_use', 'function', 'coverage_pct', 'max_floors',
  'far'];

const state = {
  status: 'init', // init -> loading -> ready | empty | error
  error: null,
  district: null,
  districts: [],
  collections: new Map(),
  landUse: new Map(),
  titles: { parcels: {}, zones: {}, summary: {} },
  available: { zones: false, price: false },
  counts: { parcels: 0, legend: 0 },
  legendCodes: [],
  patterns: new Map(), // code -> hatch over a colour it shares with other codes
  selected: null,
  map: null,
  /** Whether a layer group (parcels, zones, price) is shown. */
  visible(name) {
    const ids = (GROUPS[name] || []).filter((id) => state.map?.getLayer(id));
    return ids.length > 0
      && ids.every((id) => state.map.getLayoutProperty(id, 'visibility') !== 'none');
  },
  /** The parcel features drawn on screen now (not the summaries). */
  renderedParcels() {
    return state.map.queryRenderedFeatures({ layers: ['parcels-fill'] })
      .filter((f) => f.properties.parcel_ref);
  },
  /** A point well inside a parcel, as {lng, lat} (tests click there). */
  async interiorLngLat(id) {
    const item = await getJSON(api(`collections/parcels/items/${id}?f=json`));
    const p = interiorPoint(item.geometry);
    return p ? { lng: p[0], lat: p[1] } : null;
  },
};
window.lisMap = state;

const $ = (id) => document.getElementById(id);
const api = (path) => new URL(path, ROOT).toString();

function setStatus(status, message) {
  state.status = status;
  const node = $('status');
  node.textContent = message;
  node.title = message;
  node.classList.toggle('error', status === 'error');
  node.dataset.state = status;
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`HTTP ${response.status} for ${url}`);
  return response.json();
}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

function fmt(value) {
  if (value === null || value === undefined || value === '') return '–';
  return typeof value === 'number' ? NUMBER.format(value) : String(value);
}

/**
 * A field title as two lines: the platform's titles are bilingual, "English (tiếng Việt,
 * NationalName)" or "Tiếng Việt / English"; either gives {vi, en}.
 */
export function bilingual(title, name) {
  if (!title) return { vi: name, en: '' };
  const slash = title.split(' / ');
  if (slash.length === 2) return { vi: slash[0], en: slash[1] };
  const m = /^(.*?)\s*\(([^)]*)\)\s*$/.exec(title);
  if (m && /[\u00C0-\u1EF9]/.test(m[2])) { // Vietnamese letters in the parentheses
    return { vi: m[2], en: m[1] };
  }
  return { vi: title, en: '' };
}

function label(group, name) {
  const { vi, en } = bilingual(state.titles[group][name], name);
  const node = el('span', { className: 'label' }, [vi]);
  if (en) node.append(' ', el('small', { textContent: `(${en})` }));
  return node;
}

async function fieldTitles(collection) {
  try {
    const schema = await getJSON(api(`collections/${collection}/schema?f=json`));
    return Object.fromEntries(Object.entries(schema.properties || {})
      .map(([k, v]) => [k, v.title || k]));
  } catch {
    return {};
  }
}

// ------------------------------------------------------------------ legend

const hatchUrls = new Map();

/** A hatch as a data URL, for a legend swatch (the same image the map fills with). */
function hatchUrl(pattern) {
  if (!hatchUrls.has(pattern.id)) {
    const image = hatchImage(pattern);
    const canvas = el('canvas', { width: image.width, height: image.height });
    const ctx = canvas.getContext('2d');
    const data = ctx.createImageData(image.width, image.height);
    data.data.set(image.data);
    ctx.putImageData(data, 0, 0);
    hatchUrls.set(pattern.id, canvas.toDataURL('image/png'));
  }
  return hatchUrls.get(pattern.id);
}

function swatch(colour, outlined, code) {
  const node = el('span', { className: 'swatch' });
  if (outlined) {
    node.style.border = `2px dashed ${darken(colour)}`;
    return node;
  }
  node.style.backgroundColor = colour;
  const pattern = state.patterns.get(code);
  if (pattern) {
    node.style.backgroundImage = `url(${hatchUrl(pattern)})`;
    node.dataset.hatch = `${pattern.hatch}/${pattern.tone}`; // what tells it apart
  }
  return node;
}

function useName(code) {
  const row = state.landUse.get(code);
  return row ? { vi: row.name_vi, en: row.name_en } : { vi: '?', en: '' };
}

function codeList(counts, testid, outlined) {
  const list = el('ul');
  for (const [code, count] of counts) {
    const colour = state.landUse.get(code)?.color || NO_COLOUR;
    const names = useName(code);
    const item = el('li', { title: `${names.vi} (${names.en})` }, [
      swatch(colour, outlined, code),
      el('span', { className: 'code', textContent: code }),
      el('span', { className: 'name', textContent: names.vi }),
      el('span', { className: 'count', textContent: NUMBER.format(count) }),
    ]);
    item.dataset.testid = testid;
    item.dataset.code = code;
    list.append(item);
  }
  return list;
}

function tally(features, key) {
  const seen = new Map(); // a feature cut by tile edges is counted once
  for (const f of features) seen.set(`${f.id}`, f.properties[key] || '?');
  const counts = new Map();
  for (const code of seen.values()) counts.set(code, (counts.get(code) || 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** Legends of what is on screen: land use (or dominant use), zoning, the price ramp. */
function renderLegend() {
  const map = state.map;
  const div = $('legend');
  div.replaceChildren();
  const parcelsShown = state.visible('parcels');
  const low = map.getZoom() < PARCEL_ZOOM;
  if (parcelsShown) {
    const features = map.queryRenderedFeatures({ layers: [low ? 'summary-fill' : 'parcels-fill'] });
    const counts = tally(features, 'primary_land_use');
    state.legendCodes = counts.map(([code]) => code);
    state.counts.legend = counts.length;
    div.append(el('h4', {}, low
      ? ['Loại đất chủ yếu của quận/xã ', el('small', { textContent: '(dominant land use of districts/communes)' })]
      : ['Loại đất hiện trạng ', el('small', { textContent: '(land use, Thông tư 08/2024)' })]));
    div.append(codeList(counts, 'legend-item', false));
    if (low) {
      div.append(el('p', { className: 'note', textContent: `Phóng to đến mức ${PARCEL_ZOOM} để xem `
        + `từng thửa (zoom to ${PARCEL_ZOOM} for single parcels); đậm hơn: loại đất chiếm tỷ lệ lớn hơn `
        + '(stronger: a larger share).' }));
    }
  }
  if (state.available.zones && state.visible('zones')) {
    const zones = map.queryRenderedFeatures({ layers: ['zones-fill'] });
    const counts = tally(zones, 'planned_use');
    div.append(el('h4', {}, ['Đất quy hoạch ', el('small', { textContent: '(planned use, zone outline)' })]),
      counts.length ? codeList(counts, 'legend-zone', true)
        : el('p', { className: 'note', textContent: 'Không có ô quy hoạch trong khung nhìn (no zone in view).' }));
  }
  if (state.available.price && state.visible('price')) {
    const ramp = el('div', { className: 'ramp', title: 'VND/m²' });
    ramp.dataset.testid = 'legend-price';
    const max = PRICE_STOPS[PRICE_STOPS.length - 1][0];
    ramp.style.background = `linear-gradient(to right, ${PRICE_STOPS.map(
      ([v, c]) => `${c} ${Math.round((v / max) * 100)}%`).join(', ')})`;
    div.append(
      el('h4', {}, ['Giá đất vị trí chính ', el('small', { textContent: '(unit price of the primary part)' })]),
      ramp,
      el('div', { className: 'ramp-labels' }, PRICE_STOPS.map(([v]) => el('span',
        { textContent: NUMBER.format(v / 1e6) }))),
      el('p', { className: 'note', textContent: 'triệu đồng/m² (million VND/m²); '
        + `từ mức ${PARCEL_ZOOM} (from zoom ${PARCEL_ZOOM}); không tô: chưa định giá (blank: not valued)` }),
    );
  }
}

// ------------------------------------------------------------------ panel

function showRows(group, props, fields) {
  $('panel-attrs').replaceChildren(...fields.filter((k) => k in props).flatMap((k) => {
    let value = fmt(props[k]);
    if (k === 'area_m2' || k === 'legal_area_m2') value = props[k] == null ? '–' : `${fmt(props[k])} m²`;
    if (k === 'land_use' || k === 'primary_land_use') {
      const first = String(props[k] || '').split('+')[0];
      const names = useName(first);
      value = `${fmt(props[k])} – ${names.vi}`;
    }
    if (k === 'dominant_share' && props[k] != null) value = `${Math.round(props[k] * 100)} %`;
    return [el('dt', {}, [label(group, k)]), el('dd', { textContent: value })];
  }));
}

function openPanel() {
  $('panel').hidden = false;
}

function hidePanel() {
  state.selected = null;
  state.map.setFilter('parcels-selected', ['==', ['id'], -1]);
  $('panel').hidden = true;
}

function showSummary(feature) {
  const p = feature.properties;
  state.selected = null;
  $('panel-kind').textContent = p.level === 'district' ? 'Quận/huyện' : 'Xã/phường';
  $('panel-ref').textContent = p.level === 'district' ? p.district_code : p.commune_code;
  showRows('summary', p, SUMMARY_FIELDS);
  $('panel-zones-block').hidden = true;
  openPanel();
}

/** The parcel `id`: its attributes (from the API, whole) and the zones over it. */
async function selectParcel(id) {
  const item = await getJSON(api(`collections/parcels/items/${id}?f=json`));
  state.selected = { id, ref: item.properties.parcel_ref, geometry: item.geometry };
  state.map.setFilter('parcels-selected', ['==', ['id'], Number(id)]);
  $('panel-kind').textContent = 'Thửa đất';
  $('panel-ref').textContent = item.properties.parcel_ref;
  showRows('parcels', item.properties, PANEL_FIELDS);
  $('panel-zones-block').hidden = false;
  const head = $('panel-zones').tHead.rows[0];
  head.replaceChildren(...ZONE_FIELDS.map((k) => el('th', {}, [label('zones', k)])));
  const body = $('panel-zones').tBodies[0];
  let over = [];
  if (state.available.zones) {
    const [w, s, e, n] = bboxOf(item.geometry);
    const zones = await getJSON(api(`collections/planning-zones/items?f=json&limit=1000`
      + `&bbox=${w},${s},${e},${n}`));
    over = overlapping(item.geometry, zones.features.map((f) => ({ geometry: f.geometry,
      bbox: bboxOf(f.geometry), properties: f.properties })));
  }
  body.replaceChildren(...over.map(({ candidate, share }) => {
    const z = candidate.properties;
    const row = el('tr', { title: `${z.plan_code || ''} ${z.decision_no ? `QĐ ${z.decision_no}` : ''}`
      + ` ≈ ${Math.round(share * 100)} % của thửa (of the parcel)` },
    ZONE_FIELDS.map((k) => el('td', { textContent: fmt(z[k]) })));
    row.dataset.testid = 'zone-row';
    row.dataset.zone = fmt(z.zone_code);
    return row;
  }));
  $('panel-zones').hidden = over.length === 0;
  $('panel-zones-note').textContent = !state.available.zones
    ? 'Chưa có quy hoạch công bố (no planning zones published).'
    : over.length ? `${over.length} ô quy hoạch (zones)`
      : 'Không có ô quy hoạch nào phủ thửa này (no zone over this parcel).';
  openPanel();
  return item;
}

function bboxOf(geometry) {
  let w = Infinity; let s = Infinity; let e = -Infinity; let n = -Infinity;
  const walk = (c) => {
    if (typeof c[0] === 'number') {
      w = Math.min(w, c[0]); e = Math.max(e, c[0]); s = Math.min(s, c[1]); n = Math.max(n, c[1]);
    } else c.forEach(walk);
  };
  walk(geometry.coordinates);
  return [w, s, e, n];
}

// ------------------------------------------------------------------ search

let searchSeq = 0;

/** Hits for `q`: the cadastre's search, then roads of the price tables by name. */
async function searchHits(q) {
  const district = state.district ? `&district=${state.district}` : '';
  const cadastre = await getJSON(api(`cadastre/search?limit=8&q=${encodeURIComponent(q)}${district}`))
    .catch(() => ({ features: [] }));
  const hits = cadastre.features.map((f) => ({ label: f.properties.label, kind: f.properties.kind,
    bbox: f.bbox, ref: f.properties.ref,
    district: f.properties.district_code }));
  if (state.collections.has('land-prices') && !/^[\d\s./,-]+$/.test(q)) {
    const filter = `ACCENTI(CASEI(road_name)) LIKE ACCENTI(CASEI('%${q.replace(/'/g, "''")}%'))`;
    const roads = await getJSON(api(`collections/land-prices/items?f=json&limit=5`
      + `&filter=${encodeURIComponent(filter)}`)).catch(() => ({ features: [] }));
    const seen = new Set();
    for (const f of roads.features) {
      const key = `${f.properties.road_name}|${f.properties.district_code}`;
      if (seen.has(key) || !f.geometry) continue;
      seen.add(key);
      hits.push({ label: `Đường ${f.properties.road_name} (road), ${f.properties.district_code}`,
        kind: 'road', bbox: bboxOf(f.geometry), ref: f.properties.road_name });
    }
  }
  return hits;
}

async function runSearch(q) {
  const seq = ++searchSeq;
  const list = $('search-results');
  if (!q.trim()) { list.hidden = true; return; }
  const hits = await searchHits(q.trim());
  if (seq !== searchSeq) return;
  list.replaceChildren(...(hits.length ? hits.map((hit) => {
    const item = el('li', {}, [el('button', { type: 'button', textContent: hit.label })]);
    item.dataset.testid = 'search-hit';
    item.dataset.kind = hit.kind;
    item.dataset.ref = hit.ref;
    item.firstChild.addEventListener('click', () => goTo(hit).catch(fail));
    return item;
  }) : [el('li', { className: 'note', textContent: 'Không tìm thấy (nothing found)' })]));
  list.hidden = false;
}

async function goTo(hit) {
  $('search-results').hidden = true;
  const [w, s, e, n] = hit.bbox;
  state.map.fitBounds([[w, s], [e, n]], { padding: 60, animate: false,
    maxZoom: hit.kind === 'parcel' ? 19 : 17 });
  if (hit.kind === 'parcel') {
    const found = await getJSON(api(`cadastre/parcels/${hit.ref.split('.').join('/')}`));
    await selectParcel(found.id);
  }
}

// ------------------------------------------------------------------ districts

async function showDistrict(code) {
  const district = state.districts.find((d) => d.code === code);
  state.district = code;
  setStatus('loading', `Đang tải ${district.title}…`);
  const [w, s, e, n] = district.bbox;
  state.map.fitBounds([[w, s], [e, n]], { padding: 20, animate: false });
  const url = new URL(window.location.href);
  url.searchParams.set('district', code);
  window.history.replaceState(null, '', url);
  await state.map.once('idle');
  if (state.district !== code) return;
  state.counts.parcels = Number(district.count) || 0;
  renderLegend();
  const parts = [`${NUMBER.format(state.counts.parcels)} thửa (parcels)`];
  if (state.available.zones) parts.push('quy hoạch (zoning)');
  if (state.available.price) parts.push('giá đất (prices)');
  setStatus('ready', `${code}: ${parts.join(', ')}`);
}

function setGroup(name, on) {
  for (const id of GROUPS[name] || []) {
    if (state.map.getLayer(id)) state.map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
  }
}

// ------------------------------------------------------------------ start

async function start() {
  const [collections, landUse, parcelTitles, zoneTitles] = await Promise.all([
    loadCollections(ROOT), loadLandUse(ROOT), fieldTitles('parcels'), fieldTitles('planning-zones'),
  ]);
  state.collections = collections;
  state.landUse = landUse;
  state.titles = { parcels: parcelTitles, zones: zoneTitles, summary: {} };
  state.available = { zones: collections.has('planning-zones'),
    price: collections.has('parcel-values') };
  const tileset = await getJSON(api('collections/parcels/tiles/WebMercatorQuad')).catch(() => null);
  for (const [name, schema] of Object.entries(tileset?.layers?.[0]?.propertiesSchema?.properties || {})) {
    state.titles.summary[name] = schema.title;
  }
  state.districts = [...collections.values()]
    // districts only: parcels-p<code> are the 2025 provinces (not a unit this map shows)
    .map((c) => ({ match: /^parcels-(\d{3})$/.exec(c.id), c }))
    .filter(({ match }) => match)
    .map(({ match, c }) => ({ code: match[1], bbox: c.extent?.spatial?.bbox?.[0],
      count: /(\d+) parcels/.exec(c.description || '')?.[1],
      title: `${match[1]} – ${(c.title || '').replace(/^Cadastral parcels,\s*/, '')}` }))
    .sort((a, b) => a.code.localeCompare(b.code));

  const map = new maplibregl.Map({
    container: 'map', style: buildStyle(ROOT.toString(), landUse, new Set(collections.keys())),
    attributionControl: false, hash: false, maxZoom: 21,
  });
  state.map = map;
  state.tileErrors = [];
  map.on('error', (e) => { // a tile that failed: shown in the status, kept for tests
    const message = e.error?.message || String(e.error || e);
    state.tileErrors.push(message);
    console.error('map:', message, e.error?.url || '');
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-left');
  map.addControl(new maplibregl.ScaleControl({ unit: 'metric' }), 'bottom-left');
  map.addControl(new maplibregl.AttributionControl({ compact: true }), 'bottom-right');
  await map.once('load');
  state.patterns = addHatches(map, landUse);
  for (const [name, ok] of Object.entries({ zones: state.available.zones,
    price: state.available.price })) {
    const box = document.querySelector(`[data-layer=${name}]`);
    box.disabled = !ok;
    box.closest('label').classList.toggle('off', !ok);
  }
  for (const box of document.querySelectorAll('[data-layer]')) {
    box.addEventListener('change', () => {
      setGroup(box.dataset.layer, box.checked);
      map.once('idle', renderLegend);
    });
  }
  map.on('moveend', () => map.once('idle', renderLegend));
  map.on('click', (e) => {
    const hit = map.queryRenderedFeatures(e.point, { layers: ['parcels-fill', 'summary-fill'] })[0];
    if (!hit) return;
    if (hit.properties.parcel_ref) selectParcel(hit.id).catch(fail);
    else showSummary(hit);
  });
  for (const id of ['parcels-fill', 'summary-fill']) {
    map.on('mouseenter', id, () => { map.getCanvas().style.cursor = 'pointer'; });
    map.on('mouseleave', id, () => { map.getCanvas().style.cursor = ''; });
  }
  $('panel-close').addEventListener('click', hidePanel);
  let timer = null;
  $('search').addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => runSearch($('search').value).catch(fail), 250);
  });
  $('search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    runSearch($('search').value).catch(fail);
  });

  const select = $('district');
  select.replaceChildren(...state.districts.map((d) => el('option',
    { value: d.code, textContent: d.title })));
  if (!state.districts.length) {
    select.append(el('option', { value: '', textContent: 'Chưa có dữ liệu (no districts)' }));
    await map.once('idle');
    renderLegend();
    setStatus('empty', 'Chưa có thửa đất nào được công bố (no parcels published).');
    return;
  }
  select.disabled = false;
  select.addEventListener('change', () => showDistrict(select.value).catch(fail));
  const wanted = new URL(window.location.href).searchParams.get('district');
  const first = state.districts.some((d) => d.code === wanted) ? wanted : state.districts[0].code;
  select.value = first;
  await showDistrict(first);
}

function fail(error) {
  state.error = String(error?.message || error);
  setStatus('error', `Lỗi (error): ${state.error}`);
  console.error(error);
}

start().catch(fail);
