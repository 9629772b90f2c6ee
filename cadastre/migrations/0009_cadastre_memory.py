"""The cadastre's memory: lineage with its kind and shared area, the cadastre at any
instant, and the changes feed.

- ``parcel_lineage`` gains what a land officer asks of a parent -> child link: the kind
  of change (split, merge, renumber, resurvey), the area the two share and the load or
  write that made it. It was never written before this revision, so no row needs them.
- ``parcel_event`` kinds gain ``renumber`` and ``resurvey``.
- ``district_summary.first_valid_from``: the earliest version a district's cadastre has,
  kept by the loader, so a collection's temporal extent costs no scan.
- ``publish.parcel_versions``: every version of every parcel (current, superseded and
  retired) with its validity, for OGC API ``datetime`` queries; ``publish.parcel_lineage``
  and ``publish.parcel_changes``: the links and the events, with the delivery's file name
  but no person (no ``run_by``, no owner).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

DELIVERY = """CASE WHEN r.kind = 'api' THEN 'api'
                   ELSE regexp_replace(r.file_name, '^.*[/\\\\]', '') END"""


def upgrade() -> None:
    op.execute("ALTER TABLE cadastre.parcel_event DROP CONSTRAINT ck_kind")
    op.execute("""
        ALTER TABLE cadastre.parcel_event ADD CONSTRAINT ck_kind CHECK (kind IN (
            'create', 'update', 'split', 'merge', 'renumber', 'resurvey', 'transfer',
            'change_of_purpose', 'retire'))
    """)
    op.execute("""
        ALTER TABLE cadastre.parcel_lineage
            ADD COLUMN kind text NOT NULL
                CHECK (kind IN ('split', 'merge', 'renumber', 'resurvey')),
            ADD COLUMN shared_area_m2 numeric(14, 1),
            ADD COLUMN load_run_id bigint
    """)
    op.execute("CREATE INDEX parcel_lineage_child_idx ON cadastre.parcel_lineage "
               "(child_district_code, child_uid)")
    op.execute("CREATE INDEX parcel_lineage_parent_idx ON cadastre.parcel_lineage "
               "(parent_district_code, parent_uid)")
    op.execute("ALTER TABLE cadastre.district_summary ADD COLUMN first_valid_from "
               "timestamptz")
    op.execute("""
        UPDATE cadastre.district_summary d SET first_valid_from = (
            SELECT least(min(p.valid_from),
                         (SELECT min(h.valid_from) FROM cadastre.parcel_history h
                           WHERE h.district_code = d.district_code))
              FROM cadastre.parcel p WHERE p.district_code = d.district_code)
    """)
    # publish.parcels gains valid_to (empty for a current parcel): the same columns as
    # a version of publish.parcel_versions, so ?datetime= answers in the same shape.
    op.execute("""
        CREATE OR REPLACE VIEW publish.parcels AS
        SELECT p.uid AS id,
               p.province_code, p.district_code, p.commune_code,
               p.sheet_no, p.parcel_no,
               p.commune_code || '.' || p.sheet_no || '.' || p.parcel_no AS parcel_ref,
               p.area_m2, p.legal_area_m2, p.land_use,
               split_part(p.land_use, '+', 1) AS primary_land_use,
               p.address, p.status,
               p.current_province_code, p.current_commune_code,
               p.valid_from, p.geom, p.valid_to
          FROM cadastre.parcel p
         WHERE p.status = 'current'
    """)
    op.execute("""
        CREATE OR REPLACE VIEW publish.districts AS
        SELECT s.district_code, d.name AS district_name, d.parent_code AS province_code,
               p.name AS province_name, c.epsg AS tm3_epsg, s.parcel_count,
               s.min_lon, s.min_lat, s.max_lon, s.max_lat, s.first_valid_from
          FROM cadastre.district_summary s
          JOIN admin.admin_unit d ON d.level = 'district' AND d.code = s.district_code
                                 AND d.valid_to = DATE '2025-06-30'
          JOIN admin.admin_unit p ON p.level = 'province' AND p.code = d.parent_code
                                 AND p.valid_to = DATE '2025-06-30'
          LEFT JOIN admin.province_crs c ON c.province_code = d.parent_code
         WHERE s.parcel_count > 0
    """)
    # Every version: the parcel row as it is (current, or retired: status historic) and
    # each superseded version (valid until it was superseded). Same columns as
    # publish.parcels, plus valid_to and the run that made the version.
    columns = """{a}.province_code, {a}.district_code, {a}.commune_code, {a}.sheet_no,
                 {a}.parcel_no,
                 {a}.commune_code || '.' || {a}.sheet_no || '.' || {a}.parcel_no AS parcel_ref,
                 {a}.area_m2, {a}.legal_area_m2, {a}.land_use,
                 split_part({a}.land_use, '+', 1) AS primary_land_use, {a}.address,"""
    # A retired parcel's last version is kept twice: the parcel row (status historic,
    # load_run_id = the run that retired it) and the history row its retirement wrote
    # (load_run_id = the run that made the version, superseded_by_run = the one that
    # ended it); the history row stands for it, as 'retired'.
    op.execute(f"""
        CREATE VIEW publish.parcel_versions AS
        SELECT v.*, r.kind AS run_kind, {DELIVERY} AS delivery
          FROM (
            SELECT p.uid AS id, {columns.format(a="p")}
                   p.status, p.current_province_code, p.current_commune_code,
                   p.valid_from, p.valid_to, p.load_run_id, NULL::bigint AS ended_by_run,
                   p.geom
              FROM cadastre.parcel p
             WHERE p.status = 'current'
                OR (p.status = 'historic' AND NOT EXISTS (
                    SELECT 1 FROM cadastre.parcel_history h
                     WHERE h.district_code = p.district_code AND h.uid = p.uid
                       AND h.valid_from = p.valid_from))
            UNION ALL
            SELECT h.uid AS id, {columns.format(a="h")}
                   CASE WHEN p.status = 'historic' AND p.valid_from = h.valid_from
                        THEN 'retired' ELSE 'superseded' END AS status,
                   h.current_province_code, h.current_commune_code,
                   h.valid_from, h.superseded_at AS valid_to, h.load_run_id,
                   h.superseded_by_run AS ended_by_run, h.geom
              FROM cadastre.parcel_history h
              JOIN cadastre.parcel p ON p.district_code = h.district_code AND p.uid = h.uid
          ) v
          LEFT JOIN etl.load_run r ON r.run_id = v.load_run_id
    """)
    op.execute(f"""
        CREATE VIEW publish.parcel_lineage AS
        SELECT l.event_id, l.kind, l.shared_area_m2, e.occurred_at,
               l.parent_district_code, l.parent_uid,
               pp.commune_code || '.' || pp.sheet_no || '.' || pp.parcel_no AS parent_ref,
               l.child_district_code, l.child_uid,
               cp.commune_code || '.' || cp.sheet_no || '.' || cp.parcel_no AS child_ref,
               l.load_run_id, r.kind AS run_kind, {DELIVERY} AS delivery
          FROM cadastre.parcel_lineage l
          JOIN cadastre.parcel_event e ON e.event_id = l.event_id
          JOIN cadastre.parcel pp ON pp.district_code = l.parent_district_code
                                 AND pp.uid = l.parent_uid
          JOIN cadastre.parcel cp ON cp.district_code = l.child_district_code
                                 AND cp.uid = l.child_uid
          LEFT JOIN etl.load_run r ON r.run_id = l.load_run_id
    """)
    op.execute(f"""
        CREATE VIEW publish.parcel_changes AS
        SELECT e.event_id AS id, e.kind, e.occurred_at, e.district_code, p.commune_code,
               p.sheet_no, p.parcel_no,
               p.commune_code || '.' || p.sheet_no || '.' || p.parcel_no AS parcel_ref,
               e.parcel_uid, e.load_run_id, r.kind AS run_kind, {DELIVERY} AS delivery,
               p.geom
          FROM cadastre.parcel_event e
          JOIN cadastre.parcel p ON p.district_code = e.district_code
                                AND p.uid = e.parcel_uid
          LEFT JOIN etl.load_run r ON r.run_id = e.load_run_id
         WHERE e.kind <> 'transfer'  -- a change of owner is restricted information
    """)
    op.execute("GRANT SELECT ON publish.parcel_versions, publish.parcel_lineage, "
               "publish.parcel_changes TO lis_public")


def downgrade() -> None:
    op.execute("DROP VIEW publish.parcel_changes, publish.parcel_lineage, "
               "publish.parcel_versions")
    op.execute("DROP VIEW publish.parcels")
    op.execute("""
        CREATE VIEW publish.parcels AS
        SELECT p.uid AS id,
               p.province_code, p.district_code, p.commune_code,
               p.sheet_no, p.parcel_no,
               p.commune_code || '.' || p.sheet_no || '.' || p.parcel_no AS parcel_ref,
               p.area_m2, p.legal_area_m2, p.land_use,
               split_part(p.land_use, '+', 1) AS primary_land_use,
               p.address, p.status,
               p.current_province_code, p.current_commune_code,
               p.valid_from, p.geom
          FROM cadastre.parcel p
         WHERE p.status = 'current'
    """)
    op.execute("GRANT SELECT ON publish.parcels TO lis_public")
    op.execute("DROP VIEW publish.districts")
    op.execute("""
        CREATE VIEW publish.districts AS
        SELECT s.district_code, d.name AS district_name, d.parent_code AS province_code,
               p.name AS province_name, c.epsg AS tm3_epsg, s.parcel_count,
               s.min_lon, s.min_lat, s.max_lon, s.max_lat
          FROM cadastre.district_summary s
          JOIN admin.admin_unit d ON d.level = 'district' AND d.code = s.district_code
                                 AND d.valid_to = DATE '2025-06-30'
          JOIN admin.admin_unit p ON p.level = 'province' AND p.code = d.parent_code
                                 AND p.valid_to = DATE '2025-06-30'
          LEFT JOIN admin.province_crs c ON c.province_code = d.parent_code
         WHERE s.parcel_count > 0
    """)
    op.execute("GRANT SELECT ON publish.districts TO lis_public")
    op.execute("ALTER TABLE cadastre.district_summary DROP COLUMN first_valid_from")
    op.execute("DROP INDEX cadastre.parcel_lineage_child_idx, "
               "cadastre.parcel_lineage_parent_idx")
    op.execute("ALTER TABLE cadastre.parcel_lineage DROP COLUMN kind, "
               "DROP COLUMN shared_area_m2, DROP COLUMN load_run_id")
