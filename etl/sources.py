"""Open a delivered vector file: find its parts, hash it, pick the layer, read it.

A Shapefile is several files; its identity (for idempotency and the load record) is the
hash of all of them, so a changed .prj or .dbf is a different delivery.

Opening is also where a delivery is refused before any row is looked at (see "Bad input"
in docs/ARCHITECTURE.md): deliveries over ``LIS_MAX_DELIVERY_BYTES``, archives other than
.zip, a .zip that expands beyond that limit, more than ``MAX_ZIP_RATIO`` times its size or
beyond what its directory states (a zip bomb), a Shapefile whose .shp/.shx/.dbf are cut
short or disagree on the feature count (GDAL would read half of it without complaint), and
text that is not Unicode Vietnamese: a .dbf without .cpg whose text is not UTF-8, or text
that decodes into characters no Vietnamese text has (TCVN3/ABC or VNI font text, a wrong
code page). Text is stored in Unicode NFC (cp1258 writes tone marks as combining marks).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import geopandas as gpd
import pyogrio
from pyproj import CRS

from etl.report import Issue, LoadError
from landplatform.settings import get_settings

SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


def dataset_files(path: Path) -> list[Path]:
    """The files that make up the dataset at ``path`` (all Shapefile parts present)."""
    if path.suffix.lower() != ".shp":
        return [path]
    parts = []
    for ext in SHAPEFILE_PARTS:
        for candidate in (path.with_suffix(ext), path.with_suffix(ext.upper())):
            if candidate.exists():
                parts.append(candidate)
                break
    return parts


def file_sha256(path: Path, extra: Sequence[Path] = ()) -> str:
    """Hash of the dataset's files, plus ``extra`` files that belong to the delivery (a
    plan's ``.plan.yaml`` sidecar: changed metadata is a different delivery)."""
    digest = hashlib.sha256()
    for part in [*dataset_files(path), *extra]:
        digest.update(part.suffix.lower().encode())
        with part.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Source:
    path: Path
    layer: str | None
    frame: gpd.GeoDataFrame
    crs: CRS | None
    sha256: str
    issues: list[Issue] = field(default_factory=list)  # whole-file repairs (feature 0)


def _choose_layer(path: Path, layer: str | None, preferred_layers: Sequence[str]
                  ) -> str | None:
    layers = pyogrio.list_layers(path)
    names = [str(row[0]) for row in layers]
    if layer is not None:
        if layer not in names:
            raise LoadError(path, f"no layer {layer!r}; layers are: {', '.join(names)}")
        return layer
    if len(names) <= 1:
        return names[0] if names else None
    polygonal = [str(n) for n, g in layers if g and "Polygon" in str(g)]
    for preferred in preferred_layers:
        if preferred in names:
            return preferred
    if len(polygonal) == 1:
        return polygonal[0]
    raise LoadError(path, f"several layers ({', '.join(names)}); choose one with --layer")


def _prelude(path: Path, encoding: str | None) -> tuple[str | None, list[Issue]]:
    """Every whole-file check made before a feature is read: (encoding to read the text
    with, whole-file repairs). Raises LoadError for anything that makes the file unusable."""
    if not path.exists():
        raise LoadError(path, "file not found")
    suffix = path.suffix.lower()
    if suffix in UNSUPPORTED_ARCHIVES or path.name.lower().endswith(".tar.gz"):
        raise LoadError(path, f"unsupported archive ({suffix}): deliver the Shapefile, "
                              "GeoPackage or GeoJSON itself, or a .zip of it")
    if suffix == ".shp":
        have = {p.suffix.lower() for p in dataset_files(path)}
        missing = [ext for ext in (".shx", ".dbf") if ext not in have]
        if missing:
            raise LoadError(path, f"Shapefile incomplete: {' and '.join(missing)} missing "
                                  "next to the .shp")
    limit = check_size(path, dataset_files(path))
    issues: list[Issue] = []
    if suffix == ".zip":
        members = check_zip(path, limit)
        for stem, parts in _zip_shapefiles(path, members).items():
            encoding = check_shapefile(path, stem, parts, encoding, issues)
    elif suffix == ".shp":
        parts = {p.suffix.lower(): _file_part(p) for p in dataset_files(path)}
        encoding = check_shapefile(path, path.stem, parts, encoding, issues)
    return encoding, issues


def _read(path: Path, layer: str | None, encoding: str | None, **window: int
          ) -> tuple[gpd.GeoDataFrame, bool]:
    """(features of ``layer`` in ``window`` (skip_features/max_features), whether GDAL
    dropped M values); text decoded as ``encoding`` (cp1258 by Python, see _from_latin1)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if encoding == CP1258:  # bytes through GDAL unchanged, decoded by Python
            frame = _from_latin1(pyogrio.read_dataframe(path, layer=layer,
                                                        encoding="ISO-8859-1", **window))
        else:
            frame = pyogrio.read_dataframe(path, layer=layer, encoding=encoding, **window)
    return frame, any("Measured (M)" in str(w.message) for w in caught)


M_DROPPED = Issue(0, "geometry", "M (measure) values dropped: a parcel, zone or road has no "
                                 "use for them", severity="repair")


def open_source(path: Path, *, layer: str | None = None, encoding: str | None = None,
                preferred_layers: Sequence[str] = ()) -> Source:
    """Read the whole layer (``layer``, else the only one, else the first of
    ``preferred_layers`` present, else the only polygon layer). Raises LoadError for
    anything that makes the file unusable. For deliveries too large to hold, see
    ``open_stream``."""
    encoding, issues = _prelude(path, encoding)
    sha = file_sha256(path)
    try:
        chosen = _choose_layer(path, layer, preferred_layers)
        frame, dropped_m = _read(path, chosen, encoding)
    except LoadError:
        raise
    except Exception as exc:  # pyogrio/GDAL errors: the file itself is broken
        raise LoadError(path, f"cannot be read: {exc}") from exc
    if dropped_m:  # pyogrio drops M itself
        issues.append(M_DROPPED)
    issues += check_text(frame, path.name)
    return Source(path, chosen, frame, frame.crs, sha, issues)


# Features per batch of a streamed read: large enough that per-batch costs (a GDAL read
# call, a COPY statement, the rules' set-up) vanish, small enough that a batch in flight
# (read, validated, formatted) stays a few tens of MB whatever the file's size.
BATCH_FEATURES = 50_000


@dataclass
class Stream:
    """A delivery opened for reading batch by batch: everything known before its features
    are read (layer, CRS, field names, count, identity, whole-file repairs), and
    ``batches()``. Memory is bounded by the batch, not by the file."""

    path: Path
    layer: str | None
    crs: CRS | None
    sha256: str
    features: int
    fields: list[str]
    encoding: str | None
    issues: list[Issue] = field(default_factory=list)  # whole-file repairs (feature 0)
    batch_features: int = BATCH_FEATURES

    def batches(self) -> Iterator[tuple[int, gpd.GeoDataFrame, list[Issue]]]:
        """(number of features before this batch, the batch, its whole-file repairs not
        reported by an earlier batch): text NFC-normalised and checked as ``open_source``
        does, feature numbers in LoadError messages counted from the file's start.
        A file read as empty yields one empty batch (its columns still say what it has)."""
        reported: set[tuple[str, str]] = set()
        done = 0
        while done < self.features or (done == 0 and self.features == 0):
            window = {"skip_features": done, "max_features": self.batch_features} \
                if self.features else {}
            try:
                frame, dropped_m = _read(self.path, self.layer, self.encoding, **window)
            except Exception as exc:  # pyogrio/GDAL errors: the file itself is broken
                raise LoadError(self.path, f"cannot be read (features {done + 1:,} on): "
                                           f"{exc}") from exc
            if len(frame) == 0 and self.features:
                raise LoadError(self.path, f"states {self.features:,} features but ends "
                                           f"after {done:,}: damaged")
            fresh = ([M_DROPPED] if dropped_m else []) + check_text(frame, self.path.name,
                                                                   first_no=done + 1)
            fresh = [i for i in fresh if (i.field, i.reason) not in reported]
            reported |= {(i.field, i.reason) for i in fresh}
            yield done, frame, fresh
            done += len(frame)
            if not self.features:
                break


def open_stream(path: Path, *, layer: str | None = None, encoding: str | None = None,
                preferred_layers: Sequence[str] = (),
                batch_features: int = BATCH_FEATURES) -> Stream:
    """Open a delivery to be read in batches (``Stream.batches``), with the same checks,
    layer choice and text handling as ``open_source``; the features are not read here."""
    encoding, issues = _prelude(path, encoding)
    sha = file_sha256(path)
    try:
        chosen = _choose_layer(path, layer, preferred_layers)
        info = pyogrio.read_info(path, layer=chosen, encoding=(
            "ISO-8859-1" if encoding == CP1258 else encoding), force_feature_count=True)
    except LoadError:
        raise
    except Exception as exc:  # pyogrio/GDAL errors: the file itself is broken
        raise LoadError(path, f"cannot be read: {exc}") from exc
    fields = [str(f) for f in info["fields"]]
    if encoding == CP1258:
        fields = [f.encode("latin-1").decode(CP1258) for f in fields]
    crs = CRS.from_user_input(info["crs"]) if info.get("crs") else None
    return Stream(path, chosen, crs, sha, max(int(info["features"]), 0), fields, encoding,
                  issues, batch_features)


# --- size limits and archives ----------------------------------------------------------
UNSUPPORTED_ARCHIVES = {".rar", ".7z", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".kmz"}
# Real deliveries deflate 2-20x; a zip bomb hundreds or millions of times.
MAX_ZIP_RATIO = 200
# Below this an entry may compress as well as it likes (headers, empty files).
ZIP_RATIO_FLOOR = 1 << 20


def check_size(path: Path, files: Sequence[Path] = ()) -> int:
    """Refuse a delivery over ``LIS_MAX_DELIVERY_BYTES`` before reading it; return the
    limit (a .zip's expanded size is held to it too)."""
    limit = get_settings().max_delivery_bytes
    size = sum(p.stat().st_size for p in (files or [path]))
    if size > limit:
        raise LoadError(path, f"delivery is {size:,} bytes, over the limit of {limit:,} "
                              "(LIS_MAX_DELIVERY_BYTES); split it, e.g. per commune")
    return limit


def zip_bomb(info: zipfile.ZipInfo) -> bool:
    """A member that states it expands more than ``MAX_ZIP_RATIO`` times (past a floor of
    ``ZIP_RATIO_FLOOR`` bytes): no real delivery compresses like that."""
    ratio = info.file_size / max(info.compress_size, 1)
    return info.file_size > ZIP_RATIO_FLOOR and ratio > MAX_ZIP_RATIO


class ZipTooLarge(Exception):
    """An archive's members expand beyond the bytes allowed."""


def expand_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, total: int, limit: int,
                  out: BinaryIO | None = None) -> int:
    """Decompress one member (into ``out``, or only counting) and return ``total`` plus its
    real size; ``ZipTooLarge`` as soon as that passes ``limit``. The count is of bytes
    actually produced, so a directory that understates a member's size cannot hide a
    bomb (zipfile stops at the stated size and checks the CRC)."""
    with archive.open(info) as member:
        while chunk := member.read(1 << 20):
            total += len(chunk)
            if total > limit:
                raise ZipTooLarge
            if out is not None:
                out.write(chunk)
    return total


def check_zip(path: Path, limit: int) -> dict[str, zipfile.ZipInfo]:
    """Refuse a zip bomb before GDAL (/vsizip/) sees the archive; return its members.

    Every entry is decompressed once, counting bytes, so a directory that understates an
    entry's size cannot hide it (zipfile stops at the stated size and checks the CRC).
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise LoadError(path, f"not a readable zip archive: {exc}") from exc
    with archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        stated = sum(i.file_size for i in infos)
        if stated > limit:
            raise LoadError(path, f"the .zip expands to {stated:,} bytes, over the limit of "
                                  f"{limit:,} (LIS_MAX_DELIVERY_BYTES)")
        total = 0
        for info in infos:
            name = info.filename
            if name.lower().endswith((".zip", *UNSUPPORTED_ARCHIVES)):
                raise LoadError(path, f"{name}: an archive inside the .zip is not supported")
            if zip_bomb(info):
                raise LoadError(path, f"{name} expands "
                                      f"{info.file_size / max(info.compress_size, 1):,.0f} "
                                      f"times ({info.file_size:,} bytes from "
                                      f"{info.compress_size:,}), more than "
                                      f"{MAX_ZIP_RATIO}: refused as a zip bomb")
            try:
                total = expand_member(archive, info, total, limit)
            except ZipTooLarge:
                raise LoadError(path, f"the .zip expands beyond the limit of {limit:,} bytes "
                                      "(LIS_MAX_DELIVERY_BYTES)") from None
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                raise LoadError(path, f"{name} in the .zip is damaged or does not match its "
                                      f"stated size ({info.file_size:,} bytes): {exc}") from exc
        return {i.filename: i for i in infos}


@dataclass(frozen=True)
class Part:
    """One part of a Shapefile, on disk or in a zip: its size, a reader of its first ``n``
    bytes (-1: all) and a stream of it, so a 1 GB .shp or .dbf is checked without holding
    it in memory."""

    size: int
    open: Callable[[], BinaryIO]

    def read(self, n: int) -> bytes:
        with self.open() as fh:
            return fh.read(n)


def _file_part(path: Path) -> Part:
    return Part(path.stat().st_size, lambda: path.open("rb"))


def _zip_shapefiles(path: Path, members: dict[str, zipfile.ZipInfo]
                    ) -> dict[str, dict[str, Part]]:
    """The Shapefiles in a zip: stem -> {extension: that member}."""
    by_stem: dict[str, dict[str, Part]] = {}
    names = list(members)
    for name in names:
        stem, _, ext = name.rpartition(".")
        if ext.lower() == "shp":
            by_stem[stem] = {}
    for name in names:
        stem, _, ext = name.rpartition(".")
        if stem in by_stem and f".{ext.lower()}" in SHAPEFILE_PARTS:
            by_stem[stem][f".{ext.lower()}"] = Part(members[name].file_size,
                                                    _member_opener(path, name))
    return by_stem


def _member_opener(path: Path, name: str) -> Callable[[], BinaryIO]:
    @contextlib.contextmanager
    def open_member() -> Iterator[BinaryIO]:
        with zipfile.ZipFile(path) as archive, archive.open(name) as member:
            yield member
    return open_member


# --- Shapefile structure and DBF text ----------------------------------------------------
def _shape_length(data: bytes) -> int | None:
    """File length a .shp/.shx header states (16-bit words), None if no valid header."""
    if len(data) < 100 or int.from_bytes(data[0:4], "big") != 9994:
        return None
    return 2 * int.from_bytes(data[24:28], "big")


def _dbf_layout(data: bytes) -> tuple[int, int, int, list[tuple[str, int, int]]]:
    """(records, header bytes, record bytes, [(text field, offset, width)]) of a .dbf."""
    records = int.from_bytes(data[4:8], "little")
    header = int.from_bytes(data[8:10], "little")
    width = int.from_bytes(data[10:12], "little")
    fields: list[tuple[str, int, int]] = []
    offset, pos = 1, 32  # byte 0 of a record is its deletion flag
    while pos + 32 <= min(header, len(data)) and data[pos] != 0x0D:
        name = data[pos:pos + 11].split(b"\0")[0].decode("ascii", "replace")
        length = data[pos + 16]
        if chr(data[pos + 11]) == "C":
            fields.append((name, offset, length))
        offset += length
        pos += 32
    return records, header, width, fields


def check_shapefile(path: Path, stem: str, parts: dict[str, Part],
                    encoding: str | None, issues: list[Issue]) -> str | None:
    """Refuse a cut or mismatched Shapefile; return the encoding to read its text with.

    A .shp cut in half reads in GDAL as the first half of the features plus features with
    no geometry, which would be loaded (quarantine) or misreported as "empty geometry"
    features; a cut .dbf fails with "fread(93) failed". Both are whole-file problems.
    """
    for ext in (".shp", ".shx"):
        if ext not in parts:
            raise LoadError(path, f"Shapefile {stem} incomplete: {ext} missing")
        size = parts[ext].size
        stated = _shape_length(parts[ext].read(100))
        if stated is None:
            raise LoadError(path, f"{stem}{ext} is truncated or damaged: no valid "
                                  "Shapefile header")
        if size < stated:
            raise LoadError(path, f"{stem}{ext} is truncated: its header states "
                                  f"{stated:,} bytes, the file has {size:,}; the "
                                  "delivery was cut short (copy it again)")
        if size > stated:
            raise LoadError(path, f"{stem}{ext} is larger than its header states "
                                  f"({size:,} bytes, header {stated:,}): damaged")
    shapes = (parts[".shx"].size - 100) // 8
    if ".dbf" not in parts:
        raise LoadError(path, f"Shapefile {stem} incomplete: .dbf missing")
    dbf = parts[".dbf"]
    # The header first: what it states is checked against the part's size before a byte
    # of the records is read (a forged header cannot make us read, or hold, more).
    head = dbf.read(32)
    records, header, width, _ = _dbf_layout(head)
    if len(head) < 32 or dbf.size < header + records * width:
        raise LoadError(path, f"{stem}.dbf is truncated: its header states {records:,} "
                              f"records ({header + records * width:,} bytes), the file has "
                              f"{dbf.size:,}; the delivery was cut short (copy it again)")
    if records != shapes:
        raise LoadError(path, f"{stem}.dbf has {records:,} records but {stem}.shp "
                              f"{shapes:,} shapes: the parts do not belong together")
    head = dbf.read(header)
    fields = _dbf_layout(head)[3]
    cpg = parts[".cpg"].read(-1).decode("ascii", "replace").strip() if ".cpg" in parts else None
    declared = encoding or cpg
    ldid = head[29]
    if declared is None and ldid:
        return encoding  # the .dbf names its code page (LDID): GDAL decodes it
    if declared is not None and _is_cp1258(declared):
        return CP1258
    if declared is not None and declared.replace("-", "").lower() != "utf8":
        return encoding  # stated code page; check_text catches a wrong one
    bad, ascii_only = _dbf_utf8(dbf, header, records, width, fields)
    if bad == "cut":  # only characters cut at the end of a field: GDAL copes
        return encoding
    if bad is not None:
        name, feature = bad
        said = (f"its .cpg says {cpg!r}" if encoding is None and cpg
                else f"--encoding {encoding}" if encoding else "there is no .cpg")
        raise LoadError(path, f"{stem}.dbf field {name} (feature {feature}) holds text that "
                              f"is not UTF-8 and {said}: state the code page with "
                              "--encoding (cp1258 for Windows-1258) or in a .cpg. Text "
                              "typed in TCVN3 (ABC) or VNI fonts has no code page: convert "
                              "it to Unicode first (e.g. Unikey's converter)") from None
    if declared is None and not ascii_only:
        issues.append(Issue(0, "encoding", f"{stem}.dbf has no .cpg: its text decodes as "
                                           "UTF-8 and was read as UTF-8", severity="repair"))
        return "UTF-8"
    return encoding


CP1258 = "cp1258"


def _is_cp1258(name: str) -> bool:
    """Whether a .cpg / --encoding value names Windows-1258."""
    return name.strip().lower().replace("-", "").replace("_", "").replace(" ", "") in {
        "1258", "cp1258", "windows1258", "ansi1258", "win1258"}


def _from_latin1(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Decode as Windows-1258 the text GDAL read as ISO-8859-1 (byte for byte).

    GDAL decodes CP1258 through iconv, which holds back the last character of every
    string (CP1258 is stateful: a tone mark may follow) and so drops it: "MaXa" came back
    as "MaX", every value one letter short. Latin-1 maps bytes to code points 1:1, so
    re-encoding it gives the file's bytes for Python's own cp1258 codec.
    """
    def fix(value: object) -> object:
        return value.encode("latin-1").decode(CP1258) if isinstance(value, str) else value

    geometry = frame.geometry.name
    for column in frame.columns:
        if column != geometry and frame[column].dtype in (object, "str", "string"):
            frame[column] = frame[column].map(fix)
    return frame.rename(columns={c: fix(c) for c in frame.columns if c != geometry})


_DBF_CHUNK_BYTES = 8 * 2**20


def _dbf_utf8(dbf: Part, header: int, records: int, width: int,
              fields: list[tuple[str, int, int]]
              ) -> tuple[tuple[str, int] | str | None, bool]:
    """Whether the records' text is UTF-8, read in record-aligned chunks: (None, all
    ASCII?), or ("cut", _) when only characters cut at a field's end fail, or the (field,
    feature number) of the first value that is not UTF-8."""
    per_chunk = max(1, _DBF_CHUNK_BYTES // max(width, 1))
    ascii_only, done = True, 0
    with dbf.open() as fh:
        fh.read(header)
        while done < records:
            n = min(per_chunk, records - done)
            body = fh.read(n * width)
            try:
                body.decode("utf-8")
                ascii_only = ascii_only and body.isascii()
            except UnicodeDecodeError:
                bad = _first_non_utf8(body, width, fields)
                if bad is None:
                    return "cut", False
                return (bad[0], bad[1] + done), False
            done += n
    return None, ascii_only


def _first_non_utf8(body: bytes, width: int, fields: list[tuple[str, int, int]]
                    ) -> tuple[str, int] | None:
    """(field, feature number) of the first text value that is not UTF-8."""
    for no, start in enumerate(range(0, len(body), max(width, 1)), start=1):
        for name, offset, length in fields:
            value = body[start + offset:start + offset + length].rstrip(b" \0")
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as exc:
                if exc.reason != "unexpected end of data":  # not merely cut at the end
                    return name, no
    return None


VIETNAMESE = "àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ"
ALLOWED = set(VIETNAMESE) | set(VIETNAMESE.upper()) | set("\u00a0°²³±×Ð")
# Characters no Unicode Vietnamese text has, but legacy-font (TCVN3/ABC, VNI) text and
# text decoded with the wrong code page are full of: Latin-1 and Latin Extended letters
# and symbols outside Vietnamese, stray combining marks, the replacement character.
_SUSPECT = re.compile("[" + "".join(
    re.escape(chr(c)) for c in (*range(0x80, 0x250), *range(0x300, 0x370),
                                *range(0x1E00, 0x1F00), 0xFFFD)
    if chr(c) not in ALLOWED) + "]")


def suspect_text(value: str) -> str:
    """The characters of ``value`` that are not Vietnamese text ('' if none)."""
    return "".join(dict.fromkeys(_SUSPECT.findall(value)))


def check_text(frame: gpd.GeoDataFrame, file: str, first_no: int = 1) -> list[Issue]:
    """NFC-normalise every text column in place; LoadError when text is mojibake.

    The error names the field, the first feature (``first_no`` is the frame's first: a
    batch of a streamed file counts from the file's start) and the characters at fault,
    not the value itself (it may be an owner's name).
    """
    issues: list[Issue] = []
    for column in frame.columns:
        if column == frame.geometry.name:
            continue
        values = frame[column]
        texts = [v for v in values if isinstance(v, str)]
        if not texts:
            continue
        joined = "\x1f".join(texts)
        if not unicodedata.is_normalized("NFC", joined):
            frame[column] = values.map(lambda v: unicodedata.normalize("NFC", v)
                                       if isinstance(v, str) else v)
            issues.append(Issue(0, str(column), "text normalised to Unicode NFC (tone marks "
                                "written as combining marks, as cp1258 does)",
                                severity="repair"))
            values = frame[column]
            joined = "\x1f".join(v for v in values if isinstance(v, str))
        if _SUSPECT.search(joined) is None:
            continue
        for no, value in enumerate(values, start=first_no):
            bad = suspect_text(value) if isinstance(value, str) else ""
            if bad:
                raise LoadError(file, f"field {column} (feature {no}) has text that is not "
                                      f"Unicode Vietnamese (characters {bad!r}): TCVN3 (ABC) "
                                      "or VNI font text, or a wrong code page. Convert it to "
                                      "Unicode (e.g. Unikey's converter), or state the code "
                                      "page with --encoding / a .cpg")
    return issues
