"""Owners, ID numbers and certificates never leave the platform through a public response,
and the API's database role cannot read them at all."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ProgrammingError

from cadastre.layers import PARCELS
from landplatform.db import PUBLIC_ROLE
from support import found_in, restricted_values


@pytest.fixture(scope="module")
def secrets(manifest: list[dict]) -> set[str]:
    values = restricted_values(manifest)
    assert len(values) > 1000
    return values


COORDINATES = re.compile(r'"coordinates":\s*\[[-\d\[\],.\seE+]*\]')


def _responses(api: str) -> list[str]:
    bodies = []
    urls = [f"{api}/", f"{api}/openapi?f=json", f"{api}/collections?f=json",
            f"{api}/collections?f=html"]
    collections = httpx.get(urls[2], timeout=60).json()["collections"]
    for c in collections:
        base = f"{api}/collections/{c['id']}"
        urls += [f"{base}?f=json", f"{base}/schema?f=json"]
        if c.get("itemType") == "feature":  # coverages have no items or queryables
            urls += [f"{base}/queryables?f=json", f"{base}/items?f=json&limit=10000",
                     f"{base}/items?f=html&limit=50"]
    for url in urls:
        r = httpx.get(url, timeout=120)
        assert r.status_code == 200, url
        # coordinates are most of the bytes and cannot hold a name: searching thousands
        # of values in them is what made this crawl slow
        bodies.append(COORDINATES.sub('"coordinates":[]', r.text))
    return bodies


def test_found_in_finds_a_leak() -> None:
    text_all = '{"address": "Nhà ông Nguyễn Văn An, ngõ 5", "id": 1234567890123}'
    assert found_in({"Nguyễn Văn An", "1234567890123", "Trần Thị Bình", "ab-1"},
                    text_all) == ["1234567890123", "Nguyễn Văn An"]
    assert found_in({"Văn An, ngõ"}, text_all) == ["Văn An, ngõ"]


def test_no_restricted_value_in_any_response(api: str, secrets: set[str]) -> None:
    bodies = _responses(api)
    text_all = "\n".join(bodies)
    assert "parcels-001" in text_all  # the crawl did reach the data
    leaked = found_in(secrets, text_all)
    assert not leaked, leaked[:5]
    for name in ("owner_name", "owner_id_number", "certificate_serial", "full_name",
                 "id_number", "source_key", "party_id", "tenchu", "so_cccd", "so_gcn",
                 "owner_kind", "loaichu", "sogiayto"):
        assert name not in text_all.lower(), name


def test_published_properties_are_the_declared_ones(api: str) -> None:
    page = httpx.get(f"{api}/collections/parcels/items?f=json&limit=200", timeout=60).json()
    allowed = {f.name for f in PARCELS.fields}
    assert all(set(f["properties"]) == allowed for f in page["features"])


def test_public_role_cannot_read_restricted_tables(api_db: Engine) -> None:
    for table in ("restricted.party", "restricted.land_right", "restricted.certificate",
                  "cadastre.parcel"):
        with api_db.connect() as conn:
            conn.execute(text(f"SET ROLE {PUBLIC_ROLE}"))
            with pytest.raises(ProgrammingError, match="permission denied"):
                conn.execute(text(f"SELECT * FROM {table} LIMIT 1"))
    with api_db.connect() as conn:
        conn.execute(text(f"SET ROLE {PUBLIC_ROLE}"))
        assert conn.execute(text("SELECT count(*) FROM publish.parcels")).scalar() > 0
