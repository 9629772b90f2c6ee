"""Registered land changes: dossiers, encumbrances, the national party kinds, the
minimum split areas.

- ``cadastre.dossier``: one row per dossier (hồ sơ) an officer files: kind, receipt
  number (unique per district), procedure, received date, the officer (token subject),
  document references, the request as filed (without the parties it names:
  ``restricted.dossier_party``), its state (``filed`` -> ``registered``, or
  ``refused`` / ``withdrawn``) and what registering did. No personal data: the holders a
  rights dossier names are in ``restricted``; ``request`` keeps their party ids only.
- ``cadastre.parcel.dossier_id``: the dossier whose pending parcels these are (pending
  parcels are not published: ``publish.parcels`` shows status ``current`` only).
- ``cadastre.parcel_event`` kinds gain the dossier kinds.
- ``restricted.encumbrance``: mortgages (with the lender) and freezes (with the
  authority), registered and released/lifted by dossiers; ``restricted.party`` gains the
  national party kinds (married couple, community, group of users).
- ``cadastre.min_split_area``: the province's minimum area of a parcel made by a split,
  per land-use code and kind of commune, loaded as data (``lis load split-rules``).

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-02
"""

from alembic import op

revision = "0012"
down_revision = "0009"
branch_labels = None
depends_on = None

KINDS = ("split", "merge", "change_of_use", "correction", "recovery", "transfer",
         "inheritance", "gift", "mortgage", "mortgage_release", "freeze", "freeze_lift")
EVENTS = ("create", "update", "split", "merge", "renumber", "resurvey", "transfer",
          "change_of_purpose", "retire", "correction", "recovery", "inheritance", "gift",
          "mortgage", "mortgage_release", "freeze", "freeze_lift")


RIGHTS_EVENTS = ("transfer", "inheritance", "gift", "mortgage", "mortgage_release", "freeze",
                 "freeze_lift")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.execute(f"""
        CREATE TABLE cadastre.dossier (
            dossier_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            district_code text NOT NULL,
            kind text NOT NULL CHECK (kind IN ({_in(KINDS)})),
            receipt_no text NOT NULL,
            procedure text,
            received_date date NOT NULL,
            officer_sub text NOT NULL,
            officer_role text NOT NULL,
            documents jsonb NOT NULL DEFAULT '[]',
            request jsonb NOT NULL,
            state text NOT NULL DEFAULT 'filed'
                CHECK (state IN ('filed', 'registered', 'refused', 'withdrawn')),
            parcels bigint[] NOT NULL DEFAULT '{{}}',
            result jsonb,
            reasons jsonb,
            filed_at timestamptz NOT NULL DEFAULT now(),
            registered_at timestamptz,
            registered_by text,
            UNIQUE (district_code, receipt_no)
        )
    """)
    op.execute("CREATE INDEX dossier_open_parcels_idx ON cadastre.dossier USING gin "
               "(parcels) WHERE state = 'filed'")
    op.execute("ALTER TABLE cadastre.parcel ADD COLUMN dossier_id bigint "
               "REFERENCES cadastre.dossier (dossier_id)")
    op.execute("ALTER TABLE cadastre.parcel_history ADD COLUMN dossier_id bigint")
    op.execute("ALTER TABLE cadastre.parcel_event ADD COLUMN dossier_id bigint")
    op.execute("ALTER TABLE cadastre.parcel_event DROP CONSTRAINT ck_kind")
    op.execute(f"ALTER TABLE cadastre.parcel_event ADD CONSTRAINT ck_kind CHECK "
               f"(kind IN ({_in(EVENTS)}))")
    op.execute("ALTER TABLE cadastre.parcel_lineage DROP CONSTRAINT "
               "parcel_lineage_kind_check")
    op.execute("ALTER TABLE cadastre.parcel_lineage ADD CONSTRAINT parcel_lineage_kind_check "
               "CHECK (kind IN ('split', 'merge', 'renumber', 'resurvey', 'recovery'))")
    op.execute("ALTER TABLE restricted.party DROP CONSTRAINT ck_kind")
    op.execute("ALTER TABLE restricted.party ADD CONSTRAINT ck_kind CHECK (kind IN "
               "('individual', 'married_couple', 'household', 'organisation', "
               "'community', 'user_group'))")
    op.execute("ALTER TABLE restricted.land_right ADD COLUMN dossier_id bigint, "
               "ADD COLUMN share text")
    op.execute("""
        CREATE TABLE restricted.encumbrance (
            encumbrance_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            district_code text NOT NULL,
            parcel_uid bigint NOT NULL,
            kind text NOT NULL CHECK (kind IN ('mortgage', 'freeze')),
            holder_party_id bigint REFERENCES restricted.party (party_id),
            authority text,
            contract_no text,
            document_ref text,
            valid_from timestamptz NOT NULL DEFAULT now(),
            valid_to timestamptz,
            dossier_id bigint NOT NULL,
            ended_by_dossier bigint,
            FOREIGN KEY (district_code, parcel_uid)
                REFERENCES cadastre.parcel (district_code, uid) ON DELETE CASCADE,
            CHECK (kind <> 'mortgage' OR holder_party_id IS NOT NULL),
            CHECK (kind <> 'freeze' OR authority IS NOT NULL)
        )
    """)
    # The parties a rights dossier names (new holders, a lender), between filing and
    # registering: personal data, so here and not on the dossier.
    op.execute("""
        CREATE TABLE restricted.dossier_party (
            dossier_id bigint NOT NULL REFERENCES cadastre.dossier (dossier_id)
                ON DELETE CASCADE,
            role text NOT NULL CHECK (role IN ('to', 'lender')),
            ord integer NOT NULL,
            party jsonb NOT NULL,
            PRIMARY KEY (dossier_id, role, ord)
        )
    """)
    op.execute("CREATE INDEX encumbrance_parcel_idx ON restricted.encumbrance "
               "(district_code, parcel_uid) WHERE valid_to IS NULL")
    op.execute("""
        CREATE TABLE cadastre.min_split_area (
            province_code text NOT NULL,
            land_use text NOT NULL REFERENCES cadastre.land_use_type (code),
            commune_kind text NOT NULL CHECK (commune_kind IN ('ward', 'town', 'commune')),
            min_area_m2 numeric(10, 1) NOT NULL CHECK (min_area_m2 > 0),
            min_width_m numeric(6, 1),
            source text NOT NULL,
            load_run_id bigint,
            PRIMARY KEY (province_code, land_use, commune_kind)
        )
    """)


    op.execute(f"""
        CREATE OR REPLACE VIEW publish.parcel_changes AS
        SELECT e.event_id AS id, e.kind, e.occurred_at, e.district_code, p.commune_code,
               p.sheet_no, p.parcel_no,
               p.commune_code || '.' || p.sheet_no || '.' || p.parcel_no AS parcel_ref,
               e.parcel_uid, e.load_run_id, r.kind AS run_kind,
               CASE WHEN r.kind = 'api' THEN 'api'
                    ELSE regexp_replace(r.file_name, '^.*[/\\\\]', '') END AS delivery,
               p.geom
          FROM cadastre.parcel_event e
          JOIN cadastre.parcel p ON p.district_code = e.district_code
                                AND p.uid = e.parcel_uid
          LEFT JOIN etl.load_run r ON r.run_id = e.load_run_id
         -- who holds, mortgages or froze a parcel is restricted information
         WHERE e.kind NOT IN ({_in(RIGHTS_EVENTS)})
    """)


def downgrade() -> None:
    op.execute("DROP TABLE cadastre.min_split_area")
    op.execute("DROP TABLE restricted.dossier_party")
    op.execute("DROP TABLE restricted.encumbrance")
    op.execute("ALTER TABLE restricted.land_right DROP COLUMN dossier_id, DROP COLUMN share")
    op.execute("ALTER TABLE restricted.party DROP CONSTRAINT ck_kind")
    op.execute("ALTER TABLE restricted.party ADD CONSTRAINT ck_kind CHECK (kind IN "
               "('individual', 'household', 'organisation'))")
    op.execute("ALTER TABLE cadastre.parcel_lineage DROP CONSTRAINT "
               "parcel_lineage_kind_check")
    op.execute("ALTER TABLE cadastre.parcel_lineage ADD CONSTRAINT parcel_lineage_kind_check "
               "CHECK (kind IN ('split', 'merge', 'renumber', 'resurvey'))")
    op.execute("ALTER TABLE cadastre.parcel_event DROP CONSTRAINT ck_kind")
    op.execute("ALTER TABLE cadastre.parcel_event ADD CONSTRAINT ck_kind CHECK (kind IN ("
               "'create', 'update', 'split', 'merge', 'renumber', 'resurvey', 'transfer', "
               "'change_of_purpose', 'retire'))")
    op.execute("ALTER TABLE cadastre.parcel_event DROP COLUMN dossier_id")
    op.execute("ALTER TABLE cadastre.parcel_history DROP COLUMN dossier_id")
    op.execute("ALTER TABLE cadastre.parcel DROP COLUMN dossier_id")
    op.execute("DROP TABLE cadastre.dossier")
