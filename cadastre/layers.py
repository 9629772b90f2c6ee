"""The cadastre's published layers: current parcels and the land-use code list.

Declared, not reflected (see ``landplatform.publish.layers``): what the platform must know
about a parcel layer (tiles from z12 and summary shapes below, counts from the district
summary, Part 4 writes) is said here, on the layer.
"""

from __future__ import annotations

from landplatform.publish.layers import Counts, Extents, Field, Generalised, Layer, Temporal

# What the low-zoom tiles of the parcels carry (publish.parcel_summary_*): the unit, its
# count and area, and ``primary_land_use`` named as on a parcel, so one style colours both.
SUMMARY_FIELDS = (
    Field("level", "string", "Level: district or commune (Cấp)"),
    Field("district_code", "string", "District code (Mã quận/huyện, pre-2025 GSO)"),
    Field("commune_code", "string", "Commune code (Mã xã, MaXa)"),
    Field("unit_name", "string", "Unit name (Tên đơn vị)"),
    Field("parcel_count", "integer", "Parcels (Số thửa)"),
    Field("area_m2", "number", "Stated area, m² (Tổng diện tích)"),
    Field("primary_land_use", "string", "Dominant land use (Loại đất chủ yếu)"),
    Field("dominant_share", "number", "Share of the area, 0-1 (Tỷ lệ diện tích)"),
    Field("land_use_mix", "string", "Land-use mix (Cơ cấu loại đất)"),
    Field("shape_source", "string", "Shape from: boundary or parcels (Ranh giới từ)"),
)

PARCELS = Layer(
    key="parcels",
    view="publish.parcels",
    title="Cadastral parcels",
    description="Current cadastral parcels (thửa đất): commune, map sheet and parcel "
                "number, stated area, land-use codes (Thông tư 08/2024). Owners and "
                "certificates are not published.",
    keywords=("cadastre", "parcels", "thửa đất", "địa chính"),
    fields=(
        Field("province_code", "string", "Province code (Mã tỉnh, pre-2025 GSO)"),
        Field("district_code", "string", "District code (Mã quận/huyện, pre-2025 GSO)"),
        Field("commune_code", "string", "Commune code (Mã xã, MaXa)"),
        Field("sheet_no", "integer", "Map sheet number (Số hiệu tờ bản đồ, SoHieuToBanDo)"),
        Field("parcel_no", "integer", "Parcel number (Số thứ tự thửa, SoThuTuThua)"),
        Field("parcel_ref", "string", "Parcel reference, commune.sheet.parcel (Số hiệu thửa)"),
        Field("area_m2", "number", "Stated area, m² (Diện tích, DienTich)"),
        Field("legal_area_m2", "number", "Legal area, m² (Diện tích pháp lý)"),
        Field("land_use", "string", "Land-use codes, '+'-joined (Loại đất)"),
        Field("primary_land_use", "string", "Primary land-use code (Loại đất chính)"),
        Field("address", "string", "Address (Địa chỉ)"),
        Field("status", "string", "Status (Trạng thái)"),
        Field("current_province_code", "string",
              "Province since 1 July 2025 (Tỉnh từ 1/7/2025)"),
        Field("current_commune_code", "string",
              "Commune since 1 July 2025, by its 2025 boundary, else the crosswalk if whole "
              "(Xã từ 1/7/2025)"),
        Field("valid_from", "date-time", "Version valid from (Hiệu lực từ)"),
        Field("valid_to", "date-time", "Version valid until, empty: current (Hiệu lực đến)"),
        Field("current_commune_source", "string",
              "How the 2025 commune was decided: boundary, crosswalk or none "
              "(Căn cứ xác định xã mới)"),
    ),
    title_field="parcel_ref",
    # Below z12 a parcel is a few pixels: the tiles show the summaries (generalised).
    min_zoom=12,
    # Exact counts of a district's (or the nation's) parcels: the loader keeps them.
    counts=Counts("publish.districts", "district_code", "parcel_count"),
    # ... and their extents (every writer keeps them): a bbox or a tile names the districts
    # it can meet, so only their provinces' partitions are planned (migration 0020)
    extents=Extents("publish.districts", "district_code"),
    # Officers write their district's parcels (Part 4, cadastre/writes.py).
    writable=True,
    # ?datetime= reads the cadastre as it was then: every version with its validity.
    temporal=Temporal("publish.parcel_versions", "valid_from", "valid_to"),
    # Below z12 the tiles show districts (z0-z8) and communes (z9-z11) with their parcel
    # counts and dominant land use, kept by the loader (migration 0016).
    generalised=(Generalised("publish.parcel_summary_district", 0, SUMMARY_FIELDS),
                 Generalised("publish.parcel_summary_commune", 9, SUMMARY_FIELDS)),
)

PARCEL_CHANGES = Layer(
    key="parcel-changes",
    view="publish.parcel_changes",
    title="Cadastral changes",
    description="What changed in the cadastre, where and when: every parcel created, "
                "updated, split, merged, renumbered, re-surveyed or retired, with the "
                "delivery (file name) or API write that made it. No owners, no officers.",
    keywords=("cadastre", "changes", "biến động", "lineage"),
    fields=(
        Field("kind", "string", "Change (create, update, split, merge, renumber, "
                                "resurvey, retire)"),
        Field("occurred_at", "date-time", "When"),
        Field("district_code", "string", "District code (pre-2025 GSO)"),
        Field("commune_code", "string", "Commune code (MaXa)"),
        Field("sheet_no", "integer", "Map sheet number"),
        Field("parcel_no", "integer", "Parcel number"),
        Field("parcel_ref", "string", "commune.sheet.parcel"),
        Field("parcel_uid", "integer", "Parcel id (its id in the parcel collections)"),
        Field("load_run_id", "integer", "Load run"),
        Field("run_kind", "string", "Kind of load (parcels, api)"),
        Field("delivery", "string", "Delivered file (or 'api')"),
    ),
    title_field="parcel_ref",
    # ?datetime= selects changes by when they happened
    temporal=Temporal("publish.parcel_changes", "occurred_at", "occurred_at"),
)

LAND_USE_TYPES = Layer(
    key="land-use-types",
    view="publish.land_use_types",
    title="Land-use codes",
    description="Land-use code list of Thông tư 08/2024/TT-BTNMT, with the superseded "
                "Thông tư 27/2018 codes and what replaced them.",
    keywords=("land use", "loại đất", "code list"),
    fields=(
        Field("code", "string"), Field("catalog", "string"), Field("name_vi", "string"),
        Field("name_en", "string"), Field("group_code", "string"),
        Field("parent_code", "string"), Field("color", "string"),
        Field("replaced_by", "string"),
    ),
    id_type="string",
    title_field="code",
)
