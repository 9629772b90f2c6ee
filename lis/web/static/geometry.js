// Tiny planar geometry on GeoJSON coordinates ([lon, lat]) for the planner's map.
//
// Just enough to answer "which zones lie over this parcel, and over how much of it" in the
// browser without a geometry library: the zones of a district are already loaded, parcels
// and zones are small, and lon/lat is planar enough at parcel scale for a share estimate.

const EPS = 1e-12;

/** The polygons (arrays of rings) of a Polygon or MultiPolygon geometry. */
export function polygons(geometry) {
  if (!geometry) return [];
  if (geometry.type === 'Polygon') return [geometry.coordinates];
  if (geometry.type === 'MultiPolygon') return geometry.coordinates;
  return [];
}

/** [minx, miny, maxx, maxy] of a geometry. */
export function bbox(geometry) {
  const b = [Infinity, Infinity, -Infinity, -Infinity];
  for (const poly of polygons(geometry)) {
    for (const [x, y] of poly[0]) {
      if (x < b[0]) b[0] = x;
      if (y < b[1]) b[1] = y;
      if (x > b[2]) b[2] = x;
      if (y > b[3]) b[3] = y;
    }
  }
  return b;
}

export function bboxesIntersect(a, b) {
  return a[0] <= b[2] && b[0] <= a[2] && a[1] <= b[3] && b[1] <= a[3];
}

function distanceToSegment(px, py, [ax, ay], [bx, by]) {
  const dx = bx - ax;
  const dy = by - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 > 0 ? Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / len2)) : 0;
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

/** Distance from a point to the nearest edge of any ring of the geometry. */
export function distanceToBoundary([px, py], geometry) {
  let best = Infinity;
  for (const poly of polygons(geometry)) {
    for (const ring of poly) {
      for (let i = 1; i < ring.length; i += 1) {
        best = Math.min(best, distanceToSegment(px, py, ring[i - 1], ring[i]));
      }
    }
  }
  return best;
}

function ringContains(ring, px, py) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i, i += 1) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if ((yi > py) !== (yj > py) && px < ((xj - xi) * (py - yi)) / (yj - yi) + xi) {
      inside = !inside;
    }
  }
  return inside;
}

/** True when the point is inside the geometry (holes excluded) and not on its boundary. */
export function containsStrictly(geometry, point) {
  const [px, py] = point;
  const inside = polygons(geometry).some(
    (poly) => ringContains(poly[0], px, py) && !poly.slice(1).some((h) => ringContains(h, px, py)),
  );
  return inside && distanceToBoundary(point, geometry) > EPS;
}

/**
 * Points of an n x n grid over the geometry's bbox that fall strictly inside it: an even
 * sample of its area (cell centres), used to estimate overlap shares and to pick a click point.
 */
export function samplePoints(geometry, n = 16) {
  const [minx, miny, maxx, maxy] = bbox(geometry);
  const sx = (maxx - minx) / n;
  const sy = (maxy - miny) / n;
  const points = [];
  for (let i = 0; i < n; i += 1) {
    for (let j = 0; j < n; j += 1) {
      const p = [minx + (i + 0.5) * sx, miny + (j + 0.5) * sy];
      if (containsStrictly(geometry, p)) points.push(p);
    }
  }
  return points;
}

/** A point well inside the geometry: the sample point farthest from its boundary. */
export function interiorPoint(geometry) {
  let best = null;
  let bestDistance = -1;
  for (const n of [16, 48]) { // a finer grid only when a thin shape has no coarse sample
    for (const p of samplePoints(geometry, n)) {
      const d = distanceToBoundary(p, geometry);
      if (d > bestDistance) {
        best = p;
        bestDistance = d;
      }
    }
    if (best) break;
  }
  return best;
}

/**
 * The candidates lying over the geometry, with the share of its area each covers (estimated
 * from an even sample of points; overlaps below about one grid cell count as touching).
 * candidates: [{geometry, bbox, ...}] -> [{candidate, share}] by share, largest first.
 */
export function overlapping(geometry, candidates) {
  const box = bbox(geometry);
  const near = candidates.filter((c) => bboxesIntersect(box, c.bbox));
  if (!near.length) return [];
  const sample = samplePoints(geometry);
  if (!sample.length) sample.push(interiorPoint(geometry));
  return near
    .map((candidate) => ({
      candidate,
      share: sample.filter((p) => p && containsStrictly(candidate.geometry, p)).length
        / sample.length,
    }))
    .filter((o) => o.share > 0)
    .sort((a, b) => b.share - a.share);
}
