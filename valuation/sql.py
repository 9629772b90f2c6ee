"""The valuation, as one set-based SQL statement: every land-use part of every parcel of a
district (or of one parcel) priced in a single query, no Python loop per parcel.

It reads only ``publish.*`` views, so the engine (read/write role, which then stores the
result) and the ``parcel-valuation`` process (read-only ``lis_public``) run the very same
statement. Parameters: ``district``, ``table_id``, ``province`` (the table's, for K),
``epsg`` (the province's TM-3, where every distance and area is measured), ``year`` (of the
table date, for K), ``parcel`` (a parcel uid, or NULL for the whole district) and
``units_2025`` (the table names the communes since 1 July 2025: its commune rows, area
classes and K are matched to the parcel's 2025 commune; otherwise to the commune it was
surveyed under; a code of one period may name another unit in the other).

The rules (all parameters are the table's ``valuation.adjustment_rule`` rows):

1. Land type: the part's land-use code maps to a valuation land type
   (``valuation.land_type_map``); unmapped codes (roads, rivers, schools...) are not priced.
2. Basis, first that applies:
   a. value zone: the parcel's point-on-surface lies in a zone of the table for the land
      type: the zone's (standard parcel's) price, no position;
   b. road segment: among the priced segments within reach (the last ``position_band``
      ``segment`` band, metres from the parcel to the segment line), each gives a position
      and a rate for (land type, segment, position); the highest rate wins (a parcel on
      several roads takes the dearest, ties to the nearer segment). The position: 1 within
      the frontage (the first ``position_band`` band); otherwise by the alley width
      recorded for the parcel (``position_width.alley``: the widest band whose
      ``min_width_m`` it reaches), and then the road is the nearest priced segment (the
      one the alley leads to), not the dearest; with no width recorded, the province's
      ``fallback``: the distance bands, or none (the part is unpriced:
      ``position_unknown``);
   c. a row no geometry draws, for the parcel's commune (pre-2025 or 2025 code) or its
      district: unnamed roads by cross-section (the recorded access width within
      [width_min_m, width_max_m): VT1 of that row), else "the remaining roads" (position by
      the alley width, else the rule's ``undrawn_position``);
   d. area class, for land that is not urban: the commune's area class (``price_area_class``)
      and a position from the distance to the nearest priced segment (``position_band``
      ``area`` bands), rate for the land type or its ``area_fallback``. Urban land (ODT, and
      commercial or production land in a ward or town) is never priced by the rural
      matrix: with no row of a-c it is unpriced, with a reason code.
3. Adjustments, multiplied (all exact numeric):
   - depth layers (segment basis, positions listed in the rule): the parcel is cut into
     layers by distance from the segment line (0-20 m, 20-40 m, ...); factor =
     sum(layer area share x layer pct) / 100, rounded to 6 decimals;
   - two frontages (segment basis, position 1): the parcel lies within the frontage band of
     ``min_roads`` or more distinct priced roads: x pct / 100;
   - height difference (segment basis): the parcel's recorded height difference to the road
     (``valuation.parcel_site``) >= min_m: x pct / 100;
   - coefficient K for (year, province, rate land type), the most specific first: the
     commune's (pre-2025 or 2025 code) before the district's before the province's, and
     at each the position's own before the one for every position.
4. Part area: the recorded area of the part; when a parcel records no part areas, its
   primary part takes the parcel's stated area and the others are counted in it.
   value = round(area x unit price x factor) in whole VND.
5. Unpriced parts carry a ``reason_code`` (``land_use_not_priced``, ``position_unknown``,
   ``urban_no_row``, ``no_area_class``, ``no_rate``) and a sentence saying why.
"""

from __future__ import annotations

COMPUTE = """
WITH
rules AS MATERIALIZED (
    SELECT kind, parameters FROM publish.valuation_rules WHERE table_id = :table_id),
seg_bands AS MATERIALIZED (
    SELECT position, coalesce(lag(max_m) OVER (ORDER BY position), -1) AS min_m, max_m
      FROM (SELECT (b->>'position')::int AS position, (b->>'max_m')::float8 AS max_m
              FROM rules, jsonb_array_elements(parameters->'segment') b
             WHERE kind = 'position_band') x),
area_bands AS MATERIALIZED (
    SELECT position, coalesce(lag(max_m) OVER (ORDER BY position), -1) AS min_m,
           coalesce(max_m, 'Infinity') AS max_m
      FROM (SELECT (b->>'position')::int AS position, (b->>'max_m')::float8 AS max_m
              FROM rules, jsonb_array_elements(parameters->'area') b
             WHERE kind = 'position_band') x),
limits AS MATERIALIZED (
    SELECT (SELECT max(max_m) FROM seg_bands) AS reach,
           (SELECT max_m FROM seg_bands WHERE position = 1) AS frontage_m,
           -- how far (degrees, conservatively) to look for segments around the parcels
           greatest((SELECT max(max_m) FROM seg_bands),
                    (SELECT max(max_m) FROM area_bands WHERE max_m < 'Infinity'),
                    0) / 90000.0 AS look_deg),
layers AS MATERIALIZED (
    SELECT (l->>'from_m')::float8 AS from_m, (l->>'to_m')::float8 AS to_m,
           (l->>'pct')::numeric AS pct
      FROM rules, jsonb_array_elements(parameters->'layers') l WHERE kind = 'depth_layer'),
depth_positions AS MATERIALIZED (
    SELECT p::int AS position
      FROM rules, jsonb_array_elements_text(coalesce(parameters->'positions', '[1]')) p
     WHERE kind = 'depth_layer'),
frontage AS (
    SELECT (parameters->>'pct')::numeric AS pct,
           coalesce((parameters->>'min_roads')::int, 2) AS min_roads
      FROM rules WHERE kind = 'two_frontages'),
height AS (
    SELECT (parameters->>'min_m')::numeric AS min_m, (parameters->>'pct')::numeric AS pct
      FROM rules WHERE kind = 'height_difference'),
width_conf AS MATERIALIZED (
    SELECT coalesce(p->'alley', '[]') AS alley, coalesce(p->>'fallback', 'distance') AS fallback,
           (p->>'undrawn_position')::int AS undrawn
      FROM (SELECT (SELECT parameters FROM rules WHERE kind = 'position_width') AS p) x),
width_bands AS MATERIALIZED (
    SELECT (b->>'position')::int AS position, (b->>'min_width_m')::numeric AS min_width_m
      FROM width_conf, jsonb_array_elements(alley) b),
parcels AS MATERIALIZED (
    SELECT p.id AS parcel_uid, p.commune_code, p.current_commune_code, p.area_m2, p.geom,
           ST_Transform(p.geom, :epsg) AS g, st.alley_width_m,
           CASE WHEN CAST(:units_2025 AS boolean) THEN p.current_commune_code
                ELSE p.commune_code END AS table_commune,
           (SELECT wb.position FROM width_bands wb WHERE st.alley_width_m >= wb.min_width_m
             ORDER BY wb.min_width_m DESC LIMIT 1) AS width_position,
           coalesce(cu.urban, false) OR coalesce(cc.urban, false) AS urban_commune
      FROM publish.parcels p
      LEFT JOIN publish.valuation_sites st
        ON st.district_code = p.district_code AND st.parcel_uid = p.id
      LEFT JOIN publish.valuation_communes cu ON cu.commune_code = p.commune_code
      LEFT JOIN publish.valuation_communes cc ON cc.commune_code = p.current_commune_code
     WHERE p.district_code = :district
       AND (CAST(:parcel AS bigint) IS NULL OR p.id = CAST(:parcel AS bigint))),
parts AS MATERIALIZED (
    SELECT u.parcel_uid, u.seq, u.land_use_code, u.is_primary, t.land_type, t.area_fallback,
           coalesce(t.land_type = 'ODT' OR (t.category IN ('commercial', 'production')
                                           AND pc.urban_commune), false) AS urban,
           CASE WHEN u.area_m2 IS NOT NULL THEN u.area_m2
                WHEN u.is_primary AND NOT bool_or(u.area_m2 IS NOT NULL) OVER w
                THEN pc.area_m2 END AS area_m2,
           CASE WHEN u.area_m2 IS NOT NULL THEN NULL
                WHEN bool_or(u.area_m2 IS NOT NULL) OVER w THEN 'missing'
                WHEN u.is_primary THEN 'parcel'
                ELSE 'in_primary' END AS area_note
      FROM publish.valuation_parcel_parts u
      JOIN parcels pc USING (parcel_uid)
      LEFT JOIN publish.valuation_land_types t ON t.land_use_code = u.land_use_code
     WHERE u.district_code = :district
    WINDOW w AS (PARTITION BY u.parcel_uid)),
segs AS MATERIALIZED (
    SELECT s.segment_id, s.road_name, s.from_desc, s.to_desc, s.road_class,
           split_part(s.segment_key, '|', 1) AS road_key, ST_Transform(s.geom, :epsg) AS g
      FROM publish.valuation_segments s
     WHERE s.table_id = :table_id AND s.geom IS NOT NULL AND s.kind = 'road'
       AND (s.district_code = :district OR s.district_code IS NULL)
       AND s.geom && (SELECT ST_Expand(ST_Extent(geom), (SELECT look_deg FROM limits))
                        FROM parcels)),
near AS MATERIALIZED (
    SELECT pc.parcel_uid, s.segment_id, s.road_key, ST_Distance(pc.g, s.g) AS dist
      FROM parcels pc
      JOIN segs s ON ST_DWithin(pc.g, s.g, (SELECT reach FROM limits))),
near_pos AS MATERIALIZED (
    SELECT n.parcel_uid, n.segment_id, n.dist, x.position, x.position_by,
           pc.width_position IS NOT NULL AS by_width
      FROM near n JOIN parcels pc USING (parcel_uid)
      CROSS JOIN limits l CROSS JOIN width_conf w
      CROSS JOIN LATERAL (
            SELECT CASE WHEN n.dist <= l.frontage_m THEN 1
                        WHEN pc.width_position IS NOT NULL THEN pc.width_position
                        WHEN w.fallback = 'distance' THEN (
                             SELECT b.position FROM seg_bands b
                              WHERE n.dist > b.min_m AND n.dist <= b.max_m) END AS position,
                   CASE WHEN n.dist <= l.frontage_m THEN 'frontage'
                        WHEN pc.width_position IS NOT NULL THEN 'alley_width'
                        WHEN w.fallback = 'distance' THEN 'distance' END AS position_by) x),
frontage_roads AS MATERIALIZED (
    SELECT n.parcel_uid, count(DISTINCT n.road_key) AS roads,
           array_agg(DISTINCT s.road_name ORDER BY s.road_name) AS names
      FROM near n JOIN segs s USING (segment_id)
     WHERE n.dist <= (SELECT frontage_m FROM limits)
     GROUP BY n.parcel_uid),
zone_best AS MATERIALIZED (
    SELECT DISTINCT ON (pt.parcel_uid, pt.seq) pt.parcel_uid, pt.seq, z.zone_id, z.zone_code,
           z.standard_parcel_ref, z.land_type, z.vnd_per_m2
      FROM parts pt JOIN parcels pc USING (parcel_uid)
      JOIN publish.valuation_zones z
        ON z.table_id = :table_id AND z.land_type = pt.land_type
       AND (z.district_code = :district OR z.district_code IS NULL)
       AND ST_Intersects(z.geom, ST_PointOnSurface(pc.geom))
     ORDER BY pt.parcel_uid, pt.seq, z.vnd_per_m2 DESC, z.zone_id),
seg_best AS MATERIALIZED (
    SELECT DISTINCT ON (pt.parcel_uid, pt.seq) pt.parcel_uid, pt.seq, n.segment_id, n.dist,
           n.position, n.position_by, r.land_type, r.vnd_per_m2
      FROM parts pt
      JOIN near_pos n USING (parcel_uid)
      JOIN publish.valuation_rates r
        ON r.table_id = :table_id AND r.segment_id = n.segment_id
       AND r.land_type = pt.land_type AND r.position = n.position
     ORDER BY pt.parcel_uid, pt.seq, CASE WHEN n.by_width THEN n.dist END,
              r.vnd_per_m2 DESC, n.dist, n.segment_id),
unknown_position AS MATERIALIZED (
    SELECT DISTINCT parcel_uid FROM near_pos WHERE position IS NULL),
undrawn AS MATERIALIZED (
    SELECT s.segment_id, s.kind, s.commune_code, s.width_min_m, s.width_max_m
      FROM publish.valuation_segments s
     WHERE s.table_id = :table_id AND s.kind <> 'road'
       AND (s.commune_code IS NOT NULL OR s.district_code = :district)),
undrawn_best AS MATERIALIZED (
    SELECT DISTINCT ON (pt.parcel_uid, pt.seq) pt.parcel_uid, pt.seq, u.segment_id,
           x.position, x.position_by, r.land_type, r.vnd_per_m2
      FROM parts pt JOIN parcels pc USING (parcel_uid)
      JOIN undrawn u
        ON (u.commune_code = pc.table_commune OR u.commune_code IS NULL)
       AND (u.kind = 'remaining'
            OR (pc.alley_width_m >= coalesce(u.width_min_m, 0)
                AND (u.width_max_m IS NULL OR pc.alley_width_m < u.width_max_m)))
      CROSS JOIN width_conf w
      CROSS JOIN LATERAL (
            SELECT CASE WHEN u.kind = 'cross_section' THEN 1
                        ELSE coalesce(pc.width_position, w.undrawn) END AS position,
                   CASE WHEN u.kind = 'cross_section' THEN 'road_width'
                        WHEN pc.width_position IS NOT NULL THEN 'alley_width'
                        ELSE 'undrawn_position' END AS position_by) x
      JOIN publish.valuation_rates r
        ON r.table_id = :table_id AND r.segment_id = u.segment_id
       AND r.land_type = pt.land_type AND r.position = x.position
     WHERE NOT EXISTS (SELECT 1 FROM seg_best b WHERE b.parcel_uid = pt.parcel_uid
                                                  AND b.seq = pt.seq)
       -- behind a named road with no position known: that road's, not the remaining ones
       AND NOT EXISTS (SELECT 1 FROM unknown_position x WHERE x.parcel_uid = pt.parcel_uid)
     ORDER BY pt.parcel_uid, pt.seq, (u.kind = 'cross_section') DESC,
              (u.commune_code IS NOT NULL) DESC, r.vnd_per_m2 DESC, u.segment_id),
area_need AS MATERIALIZED (
    SELECT DISTINCT pt.parcel_uid FROM parts pt
     WHERE pt.land_type IS NOT NULL AND NOT pt.urban
       AND NOT EXISTS (SELECT 1 FROM seg_best b WHERE b.parcel_uid = pt.parcel_uid
                                                   AND b.seq = pt.seq)
       AND NOT EXISTS (SELECT 1 FROM zone_best z WHERE z.parcel_uid = pt.parcel_uid
                                                    AND z.seq = pt.seq)),
nearest AS MATERIALIZED (
    SELECT a.parcel_uid, (SELECT min(ST_Distance(pc.g, s.g)) FROM segs s) AS dist
      FROM area_need a JOIN parcels pc USING (parcel_uid)),
classes AS MATERIALIZED (
    SELECT pc.parcel_uid, ac.commune_code, ac.area_class
      FROM parcels pc
      JOIN publish.valuation_area_classes ac
        ON ac.table_id = :table_id AND ac.commune_code = pc.table_commune),
area_best AS MATERIALIZED (
    SELECT DISTINCT ON (pt.parcel_uid, pt.seq) pt.parcel_uid, pt.seq, c.area_class,
           ab.position, nn.dist, r.land_type, r.vnd_per_m2
      FROM parts pt
      JOIN nearest nn USING (parcel_uid)
      JOIN classes c USING (parcel_uid)
      JOIN area_bands ab ON coalesce(nn.dist, 'Infinity') > ab.min_m
                        AND coalesce(nn.dist, 'Infinity') <= ab.max_m
      JOIN publish.valuation_rates r
        ON r.table_id = :table_id AND r.area_class = c.area_class
       AND r.position = ab.position AND r.land_type IN (pt.land_type, pt.area_fallback)
     WHERE NOT pt.urban
     ORDER BY pt.parcel_uid, pt.seq, (r.land_type = pt.land_type) DESC),
chosen AS MATERIALIZED (
    SELECT pt.parcel_uid, pt.seq, pt.land_use_code, pt.is_primary, pt.land_type AS use_type,
           pt.area_m2, pt.area_note, pc.commune_code, pc.current_commune_code, pt.urban,
           pc.table_commune,
           pc.alley_width_m,
           CASE WHEN zb.zone_id IS NOT NULL THEN 'zone'
                WHEN sb.segment_id IS NOT NULL OR ub.segment_id IS NOT NULL THEN 'segment'
                WHEN ab.area_class IS NOT NULL THEN 'area' END AS basis,
           zb.zone_id IS NULL AND sb.segment_id IS NOT NULL AS drawn,
           coalesce(zb.land_type, sb.land_type, ub.land_type, ab.land_type) AS land_type,
           coalesce(zb.vnd_per_m2, sb.vnd_per_m2, ub.vnd_per_m2, ab.vnd_per_m2) AS unit_price,
           CASE WHEN zb.zone_id IS NULL THEN coalesce(sb.segment_id, ub.segment_id)
                END AS segment_id,
           CASE WHEN zb.zone_id IS NULL THEN coalesce(sb.position, ub.position, ab.position)
                END AS position,
           CASE WHEN zb.zone_id IS NULL THEN coalesce(sb.position_by, ub.position_by,
                                                      CASE WHEN ab.area_class IS NOT NULL
                                                           THEN 'distance' END)
                END AS position_by,
           CASE WHEN zb.zone_id IS NULL AND sb.segment_id IS NULL AND ub.segment_id IS NULL
                THEN ab.area_class END AS area_class,
           zb.zone_id, zb.zone_code, zb.standard_parcel_ref,
           CASE WHEN zb.zone_id IS NULL THEN coalesce(sb.dist, ab.dist) END AS dist,
           cl.area_class IS NOT NULL AS has_class,
           up.parcel_uid IS NOT NULL AS position_unknown
      FROM parts pt
      JOIN parcels pc USING (parcel_uid)
      LEFT JOIN zone_best zb USING (parcel_uid, seq)
      LEFT JOIN seg_best sb USING (parcel_uid, seq)
      LEFT JOIN undrawn_best ub USING (parcel_uid, seq)
      LEFT JOIN area_best ab USING (parcel_uid, seq)
      LEFT JOIN classes cl USING (parcel_uid)
      LEFT JOIN unknown_position up USING (parcel_uid)),
depth_pairs AS (
    SELECT DISTINCT parcel_uid, segment_id FROM chosen
     WHERE drawn AND position IN (SELECT position FROM depth_positions)),
depth_areas AS (
    SELECT dp.parcel_uid, dp.segment_id, l.from_m, l.to_m, l.pct,
           greatest(0, ST_Area(CASE WHEN l.to_m IS NULL THEN pc.g
                                    ELSE ST_Intersection(pc.g, ST_Buffer(s.g, l.to_m)) END)
                       - CASE WHEN l.from_m > 0
                              THEN ST_Area(ST_Intersection(pc.g, ST_Buffer(s.g, l.from_m)))
                              ELSE 0 END) AS area
      FROM depth_pairs dp
      JOIN parcels pc USING (parcel_uid)
      JOIN segs s USING (segment_id)
      CROSS JOIN layers l),
depth AS MATERIALIZED (
    SELECT parcel_uid, segment_id,
           round((sum(area * pct::float8) / 100 / nullif(sum(area), 0))::numeric, 6) AS factor,
           jsonb_agg(jsonb_build_object(
               'from_m', from_m, 'to_m', to_m, 'pct', pct,
               'area_m2', round(area::numeric, 2)) ORDER BY from_m) AS layers
      FROM depth_areas GROUP BY parcel_uid, segment_id),
adjusted AS (
    SELECT c.*, d.factor AS depth_factor, d.layers,
           fr.roads AS frontage_roads, fr.names AS frontage_names,
           CASE WHEN c.drawn AND c.position = 1 AND fr.roads >= f.min_roads
                THEN trim_scale(f.pct / 100) END AS frontage_factor,
           st.height_diff_m,
           CASE WHEN c.basis = 'segment' AND st.height_diff_m >= h.min_m
                THEN trim_scale(h.pct / 100) END AS height_factor,
           trim_scale(k.k) AS k, k.k_commune, k.k_district, k.k_position
      FROM chosen c
      LEFT JOIN depth d ON c.basis = 'segment' AND d.parcel_uid = c.parcel_uid
                       AND d.segment_id = c.segment_id
      LEFT JOIN frontage_roads fr ON fr.parcel_uid = c.parcel_uid
      LEFT JOIN frontage f ON true
      LEFT JOIN height h ON true
      LEFT JOIN publish.valuation_sites st
        ON st.district_code = :district AND st.parcel_uid = c.parcel_uid
      LEFT JOIN LATERAL (
            SELECT x.k, x.commune_code AS k_commune, x.district_code AS k_district,
                   x.position AS k_position
              FROM publish.valuation_coefficients x
             WHERE x.year = :year AND x.province_code = :province
               AND x.land_type = c.land_type
               AND (x.district_code = :district OR x.district_code IS NULL)
               AND (x.commune_code IS NULL OR x.commune_code = c.table_commune)
               AND (x.position IS NULL OR x.position = c.position)
             ORDER BY x.commune_code IS NOT NULL DESC, x.district_code IS NOT NULL DESC,
                      x.position IS NOT NULL DESC LIMIT 1) k ON c.basis IS NOT NULL),
final AS (
    SELECT a.*, s.road_name, s.from_desc, s.to_desc, s.road_class, s.kind AS segment_kind,
           s.commune_code AS segment_commune, s.width_min_m, s.width_max_m,
           trim_scale(coalesce(a.depth_factor, 1) * coalesce(a.frontage_factor, 1)
                      * coalesce(a.height_factor, 1) * coalesce(a.k, 1)) AS factor,
           CASE WHEN a.use_type IS NULL THEN 'land_use_not_priced'
                WHEN a.basis IS NOT NULL THEN NULL
                WHEN a.position_unknown THEN 'position_unknown'
                WHEN a.urban THEN 'urban_no_row'
                WHEN NOT a.has_class THEN 'no_area_class'
                ELSE 'no_rate' END AS reason_code
      FROM adjusted a
      LEFT JOIN publish.valuation_segments s
        ON s.table_id = :table_id AND s.segment_id = a.segment_id)
SELECT f.parcel_uid, f.seq, f.land_use_code, f.is_primary, f.land_type, f.basis,
       f.segment_id, f.road_name, f.position, f.area_class, f.zone_id,
       round(f.dist::numeric, 2) AS distance_m, f.unit_price,
       CASE WHEN f.basis IS NOT NULL THEN f.area_m2 END AS area_m2,
       CASE WHEN f.basis IS NOT NULL THEN f.factor END AS factor,
       adj.adjustments,
       round(f.area_m2 * f.unit_price * f.factor) AS value, f.reason_code,
       jsonb_strip_nulls(jsonb_build_object(
           'seq', f.seq, 'land_use', f.land_use_code, 'land_type', f.land_type,
           'basis', f.basis, 'urban', f.urban,
           'segment', CASE WHEN f.basis = 'segment' THEN jsonb_build_object(
               'id', f.segment_id, 'road', f.road_name, 'from', f.from_desc, 'to', f.to_desc,
               'road_class', f.road_class, 'kind', f.segment_kind,
               'commune', f.segment_commune, 'width_min_m', f.width_min_m,
               'width_max_m', f.width_max_m) END,
           'zone', CASE WHEN f.basis = 'zone' THEN jsonb_build_object(
               'id', f.zone_id, 'code', f.zone_code,
               'standard_parcel', f.standard_parcel_ref) END,
           'distance_m', round(f.dist::numeric, 2), 'position', f.position,
           'position_by', f.position_by, 'alley_width_m', f.alley_width_m,
           'area_class', f.area_class, 'unit_price', f.unit_price,
           'area_m2', CASE WHEN f.basis IS NOT NULL THEN f.area_m2 END,
           'area_source', CASE f.area_note
               WHEN 'parcel' THEN 'part areas not recorded: the parcel''s stated area' END,
           'rules', adj.adjustments, 'factor', CASE WHEN f.basis IS NOT NULL THEN f.factor END,
           'value', round(f.area_m2 * f.unit_price * f.factor),
           'reason_code', f.reason_code,
           'reason', CASE
               WHEN f.use_type IS NULL THEN format(
                   'land-use code %s is not priced by the land price table', f.land_use_code)
               WHEN f.basis IS NULL AND f.position_unknown THEN format(
                   'position unknown: within reach of a priced road but no alley width is '
                   'recorded for the parcel and the table''s position rule states no '
                   'fallback for land type %s', f.use_type)
               WHEN f.basis IS NULL AND f.urban THEN format(
                   'urban land (%s): no road segment within %s m has a %s rate, and the '
                   'table has no %s row for the remaining or unnamed roads of %s; urban '
                   'land is not priced by the rural area-class matrix', f.use_type,
                   (SELECT reach FROM limits), f.use_type, f.use_type,
                   CASE WHEN f.table_commune IS NOT NULL THEN 'commune ' || f.table_commune
                        ELSE 'its 2025 commune (not recorded for the parcel)' END)
               WHEN f.basis IS NULL AND NOT f.has_class THEN format(
                   'no priced road segment within %s m and %s has no area class in '
                   'the table', (SELECT reach FROM limits),
                   CASE WHEN f.table_commune IS NOT NULL THEN 'commune ' || f.table_commune
                        ELSE 'its 2025 commune (not recorded for the parcel)' END)
               WHEN f.basis IS NULL THEN format(
                   'no rate for land type %s: no priced road segment within %s m prices it '
                   'and the area-class matrix has no rate for it', f.use_type,
                   (SELECT reach FROM limits))
               WHEN f.area_note = 'in_primary' THEN
                   'part area not recorded: the parcel''s area is valued with its primary part'
               WHEN f.area_note = 'missing' THEN 'part area not recorded'
           END)) AS explanation
  FROM final f
  CROSS JOIN LATERAL (
        SELECT jsonb_agg(x ORDER BY o) AS adjustments FROM (VALUES
            (1, CASE WHEN f.depth_factor IS NOT NULL THEN jsonb_build_object(
                 'rule', 'depth_layer', 'factor', f.depth_factor, 'layers', f.layers) END),
            (2, CASE WHEN f.frontage_factor IS NOT NULL THEN jsonb_build_object(
                 'rule', 'two_frontages', 'factor', f.frontage_factor,
                 'roads', to_jsonb(f.frontage_names)) END),
            (3, CASE WHEN f.height_factor IS NOT NULL THEN jsonb_build_object(
                 'rule', 'height_difference', 'factor', f.height_factor,
                 'height_diff_m', f.height_diff_m) END),
            (4, CASE WHEN f.k IS NOT NULL THEN jsonb_strip_nulls(jsonb_build_object(
                 'rule', 'coefficient_k', 'factor', f.k, 'commune', f.k_commune,
                 'district', f.k_district, 'position', f.k_position)) END)) v(o, x)
         WHERE x IS NOT NULL) adj
"""

OUTPUT_COLUMNS = ("parcel_uid", "seq", "land_use_code", "land_type", "basis", "segment_id",
                  "position", "area_class", "zone_id", "distance_m", "unit_price", "area_m2",
                  "factor", "adjustments", "value", "reason_code", "explanation")
