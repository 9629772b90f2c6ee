"""Coverages as GDAL and QGIS read them: HTTP Range on the GeoTIFF answers (206, 416, HEAD,
If-Range), the media type GDAL's OGC API driver looks for, and the real GDAL CLI streaming
the COG through ``/vsicurl/`` and reading the coverage through its ``OGCAPI:`` driver."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest

from landplatform.publish.coverage_guard import byte_range
from support import sample_window

CID = "price-surface-003"
GEOTIFF = "image/tiff; application=geotiff"
WINDOW = sample_window("003")  # about 500 m square in the middle of Tây Hồ's sample town
needs_gdal = pytest.mark.skipif(shutil.which("gdalinfo") is None,
                                reason="GDAL's CLI (Debian gdal-bin) is not installed")


def _gdal(*args: str, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """A GDAL command; its WMS block cache (the OGCAPI driver's) goes to ``cwd``, not into
    the working tree."""
    env = {**os.environ, "CPL_DEBUG": "ON", "GDAL_HTTP_TIMEOUT": "60", **(env or {})}
    if cwd is not None:
        env["GDAL_DEFAULT_WMS_CACHE_PATH"] = str(cwd / "gdalwmscache")
    return subprocess.run(list(args), capture_output=True, text=True, timeout=180, env=env,
                          cwd=cwd)


@pytest.fixture(scope="module")
def cog(api_var_dir: Path) -> bytes:
    return (api_var_dir / "coverages" / f"{CID}.tif").read_bytes()


def test_byte_range_parsing() -> None:
    assert byte_range(None, 10) is None and byte_range("bytes=0-1,4-5", 10) is None
    assert byte_range("bytes=0-3", 10) == (0, 4)
    assert byte_range("bytes=4-", 10) == (4, 10)
    assert byte_range("bytes=-3", 10) == (7, 10)
    assert byte_range("bytes=-30", 10) == (0, 10)
    assert byte_range("bytes=5-100", 10) == (5, 10)
    assert byte_range("items=0-3", 10) is None  # not understood: ignored (RFC 9110)
    for bad in ("bytes=10-", "bytes=12-15", "bytes=-0"):
        with pytest.raises(ValueError):
            byte_range(bad, 10)


def test_whole_coverage_takes_ranges_and_head(api: str, cog: bytes) -> None:
    url = f"{api}/collections/{CID}/coverage?f=GTiff"
    head = httpx.head(url, timeout=60)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == GEOTIFF
    assert head.headers["accept-ranges"] == "bytes"
    assert int(head.headers["content-length"]) == len(cog)
    for header, expected in (("bytes=0-99", cog[:100]), ("bytes=100-", cog[100:]),
                             ("bytes=-50", cog[-50:])):
        r = httpx.get(url, headers={"Range": header}, timeout=60)
        assert r.status_code == 206 and r.content == expected, header
        start = len(cog) - len(expected) if header.startswith("bytes=-") \
            else int(header[6:].split("-")[0])
        assert r.headers["content-range"] == f"bytes {start}-{start + len(expected) - 1}/" \
                                             f"{len(cog)}"
    beyond = httpx.get(url, headers={"Range": f"bytes={len(cog)}-"}, timeout=60)
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(cog)}"
    full = httpx.get(url, timeout=60)
    assert full.status_code == 200 and full.content == cog
    stale = httpx.get(url, timeout=60, headers={"Range": "bytes=0-9",
                                               "If-Range": '"not-this-version"'})
    assert stale.status_code == 200 and stale.content == cog


def test_a_window_takes_ranges_too(api: str) -> None:
    url = f"{api}/collections/{CID}/coverage"
    params = {"f": "GTiff", "bbox": WINDOW}
    full = httpx.get(url, params=params, timeout=60)
    assert full.status_code == 200 and full.headers["content-type"] == GEOTIFF
    assert full.headers["accept-ranges"] == "bytes" and full.content[:4] in (b"II*\x00",
                                                                            b"MM\x00*")
    part = httpx.get(url, params=params, headers={"Range": "bytes=10-19"}, timeout=60)
    assert part.status_code == 206 and part.content == full.content[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(full.content)}"
    same = httpx.get(url, params=params, timeout=60, headers={
        "Range": "bytes=0-9", "If-Range": full.headers["etag"]})
    assert same.status_code == 206
    past = httpx.get(url, params=params, headers={"Range": "bytes=999999999-"}, timeout=60)
    assert past.status_code == 416
    head = httpx.head(url, params=params, timeout=60)
    assert head.status_code == 200 and head.content == b""


def test_collection_offers_the_geotiff_gdal_looks_for(api: str) -> None:
    doc = httpx.get(f"{api}/collections/{CID}", params={"f": "json"}, timeout=60).json()
    types = {link["type"] for link in doc["links"] if link["rel"].endswith("/coverage")}
    assert GEOTIFF in types


@pytest.mark.parametrize("scale", ["Lat(0),Long(5)", "Lat(5)", "Foo(3),Long(3)",
                                   "Lat(99999),Long(2)", "nonsense"])
def test_bad_scale_sizes_are_400s(api: str, scale: str) -> None:
    r = httpx.get(f"{api}/collections/{CID}/coverage", timeout=60,
                  params={"f": "GTiff", "scaleSize": scale})
    assert r.status_code == 400 and "scaleSize" in r.json()["description"]


@needs_gdal
def test_gdal_streams_the_cog_through_vsicurl(api: str, cog: bytes, tmp_path: Path,
                                              api_var_dir: Path) -> None:
    url = f"/vsicurl/{api}/collections/{CID}/coverage?f=GTiff"
    info = _gdal("gdalinfo", url)
    assert info.returncode == 0, info.stderr[-2000:]
    assert "Driver: GTiff/GeoTIFF" in info.stdout and "LAYOUT=COG" in info.stdout
    local = _gdal("gdalinfo", str(api_var_dir / "coverages" / f"{CID}.tif")).stdout
    size = re.search(r"Size is (\d+), (\d+)", local)
    assert size.group(0) in info.stdout
    # a small window (in the middle of the surface) reads a few ranges of the file
    x, y = (str(min(int(v) // 2, 256) - 72) for v in size.groups())  # inside one block
    out = tmp_path / "win.tif"
    # small reads, as for a large COG (a district's surface is a few kB)
    win = _gdal("gdal_translate", "-q", "-srcwin", x, y, "64", "64", url, str(out),
                env={"GDAL_INGESTED_BYTES_AT_OPEN": "1024", "CPL_VSIL_CURL_CHUNK_SIZE": "1024"})
    assert win.returncode == 0, win.stderr[-2000:]
    ranges = [tuple(map(int, m)) for m in
              re.findall(r"VSICURL: Downloading (\d+)-(\d+)", win.stderr)]
    assert ranges, win.stderr[-2000:]
    # ranges, not the file: a server that ignored Range would send all of it (a sample
    # district's surface is a few kB, so the header and one block are about half of it)
    assert sum(b - a + 1 for a, b in ranges) <= len(cog) * 0.6, (ranges, len(cog))
    ref = tmp_path / "ref.tif"
    _gdal("gdal_translate", "-q", "-srcwin", x, y, "64", "64",
          str(api_var_dir / "coverages" / f"{CID}.tif"), str(ref))
    checksum = re.compile(r"Checksum=(\d+)")
    assert checksum.findall(_gdal("gdalinfo", "-checksum", str(out)).stdout) == \
        checksum.findall(_gdal("gdalinfo", "-checksum", str(ref)).stdout)
    window = _gdal("gdalinfo", f"/vsicurl/{api}/collections/{CID}/coverage?f=GTiff"
                               f"&bbox={WINDOW}")
    assert window.returncode == 0 and "Driver: GTiff/GeoTIFF" in window.stdout


@needs_gdal
def test_gdal_ogcapi_driver_reads_the_coverage(api: str, tmp_path: Path,
                                               api_var_dir: Path) -> None:
    import rasterio

    source = f"OGCAPI:{api}/collections/{CID}"
    info = _gdal("gdalinfo", source, cwd=tmp_path)
    assert info.returncode == 0, info.stderr[-2000:]
    assert "Driver: OGCAPI" in info.stdout
    out = tmp_path / "ogcapi.tif"
    read = _gdal("gdal_translate", "-q", "-outsize", "160", "160", source, str(out),
                 cwd=tmp_path)
    assert read.returncode == 0, read.stderr[-2000:]
    assert "scaleSize=" in read.stderr  # it asked for a scaled window, as expected
    with rasterio.open(out) as got, \
            rasterio.open(api_var_dir / "coverages" / f"{CID}.tif") as src:
        values = got.read(1)
        held = set(np.unique(src.read(1)).tolist())
        assert values.shape == (160, 160)
        assert set(np.unique(values).tolist()) <= held  # nearest: only values it holds
        priced = np.count_nonzero(values) / values.size
        expected = np.count_nonzero(src.read(1)) / src.width / src.height
        assert abs(priced - expected) < 0.05
