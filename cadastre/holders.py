"""Who holds a parcel: the kinds of land user, and the holders file beside a delivery.

A parcel file names one owner per parcel (``TenChu``, ``SoCCCD``, ``LoaiChu``), but a
parcel may have several holders: a married couple holds jointly, heirs or partners hold
shares. Deliveries carry them in a file beside the parcel file,
``<parcel file stem>.chu_su_dung.csv`` (``MaXa, SoHieuToBanDo, SoThuTuThua, LoaiChu,
TenChu, SoGiayTo, TyLe``; aliases in ``mappings/holders.yaml``): every holder of the
parcels it names, one row per holder. A parcel it names has exactly those holders; the
parcel file's owner fields repeat the first one.

Why it is checked where it is: a row alone can be judged when it is read (its number, its
kind, its document number, its share), so that happens in Python a chunk at a time, as
the parcel file is read; what needs the whole file (does the parcel file carry that
parcel? does a parcel name the same holder twice? do its shares add up to 100?) is one
query each over the staged rows, as the parcel file's own duplicate keys are. A holder row
that fails refuses the parcel it names (its feature number, the holders file's line in the
reason), so a parcel is never loaded with part of its holders; a row naming a parcel the
parcel file does not carry is a reject of the delivery. Names and document numbers are
personal data: no reason or reported value quotes them.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd
import yaml
from sqlalchemy import text
from sqlalchemy.engine import Connection

from cadastre import MAPPINGS
from etl.fieldmap import FieldMapping, normalise_name
from etl.report import Issue, LoadError
from etl.rowcheck import RowChecker
from etl.sidecar import find_sidecar
from etl.sources import check_size, suspect_text
from etl.staging import copy_rows
from etl.values import is_blank, parse_code, parse_number, parse_positive_int

SUFFIX = ".chu_su_dung.csv"
CHUNK_ROWS = 50_000  # holder rows read, checked and staged at a time
MAX_NAME = 200  # as a parcel file's owner name
MAX_DOCUMENT = 20
INT_MAX = 2**31 - 1
# A person's document: the citizen identity card (CCCD, 12 digits) or the older identity
# card (CMND, 9 digits) real registers still carry; an organisation's: its tax code (mã số
# thuế, 10 digits; a branch's with a 3-digit suffix).
PERSON_DOCUMENT = re.compile(r"^(\d{12}|\d{9})$")
TAX_CODE = re.compile(r"^\d{10}(-\d{3})?$")
PERSONS = ("individual", "household", "married_couple")
SHARE_TOLERANCE = 0.05  # shares are stated to 0.1 %: their sum is 100 to that rounding
KNOWN_KINDS = "Cá nhân, Hộ gia đình, Tổ chức"

STAGE_DDL = """
CREATE TEMP TABLE stage_holder (
    line_no int, commune_code text, sheet_no int, parcel_no int, kind text, name text,
    id_number text, share numeric(4,1),
    bad boolean NOT NULL DEFAULT false  -- refused by a rule of its own row
) ON COMMIT DROP
"""
COLUMNS = "line_no, commune_code, sheet_no, parcel_no, kind, name, id_number, share, bad"
KEY = ("h.commune_code = s.commune_code AND h.sheet_no = s.sheet_no "
       "AND h.parcel_no = s.parcel_no")


@lru_cache(maxsize=1)
def kind_aliases() -> dict[str, str]:
    """Normalised alias -> national kind, from ``mappings/party_kinds.yaml``."""
    doc = yaml.safe_load((MAPPINGS / "party_kinds.yaml").read_text(encoding="utf-8"))
    return {normalise_name(str(alias)): kind for kind, aliases in doc["kinds"].items()
            for alias in (kind, *aliases)}


def party_kind(value: object) -> str:
    """The national kind a delivery's ``LoaiChu`` names ("Cá nhân", "Ho gia dinh", ...);
    ValueError for one the mapping does not know."""
    kind = kind_aliases().get(normalise_name(str(value).strip()))
    if kind is None:
        raise ValueError(f"unknown kind of land user (known: {KNOWN_KINDS}, and the "
                         "aliases in cadastre/mappings/party_kinds.yaml)")
    return kind


def holders_path(parcel_file: Path) -> Path | None:
    """The holders file beside a parcel file, if there is one."""
    return find_sidecar(parcel_file, SUFFIX)


def _refused(path: Path, message: str) -> LoadError:
    """The delivery fails for its holders file: the reason names that file (a load's
    message is about its parcel file otherwise)."""
    return LoadError(path, f"holders file {path.name}: {message}")


def _whole_number(value: object) -> int:
    number = parse_positive_int(value)
    if number > INT_MAX:
        raise ValueError(f"at most {INT_MAX}")
    return number


def parse_share(value: object) -> float:
    """A share in percent, one decimal at most: 50, "33.3", "50%"."""
    given = str(value).strip()
    number = parse_number(given[:-1] if given.endswith("%") else given)
    if not 0 < number <= 100:
        raise ValueError("a share is a percentage greater than 0 and at most 100")
    if abs(number * 10 - round(number * 10)) > 1e-6:
        raise ValueError("a share is stated in percent with one decimal at most")
    return round(number, 1)


class HolderChecker(RowChecker):
    """One holder row's own rules; issues carry the file's line number (header: line 1)."""

    def document(self, no: int, kind: str | None, value: object) -> str | None:
        """The holder's document number, which keys the party: never quoted back."""
        if is_blank(value):
            self.reject(no, "id_number", "required value is missing (a holder is known by "
                                         "its document number)")
            return None
        number = str(value).strip().replace(" ", "")
        if kind in PERSONS and not PERSON_DOCUMENT.match(number):
            self.reject(no, "id_number", "a person's document number is a CCCD of 12 "
                                         "digits (or an older CMND of 9)")
            return None
        if kind == "organisation" and not TAX_CODE.match(number):
            self.reject(no, "id_number", "an organisation's document number is its tax "
                                         "code (mã số thuế): 10 digits, a branch's with a "
                                         "3-digit suffix (0101234567-001)")
            return None
        if len(number) > MAX_DOCUMENT or not number.isprintable():
            self.reject(no, "id_number", f"a document number is at most {MAX_DOCUMENT} "
                                         "printable characters")
            return None
        return number

    def row(self, no: int, rec: dict) -> dict:
        before = len(self.issues)
        kind = self.required(no, "kind", rec.get("kind"), party_kind)
        name = None if is_blank(rec.get("name")) else str(rec["name"]).strip()
        if name is None:
            self.reject(no, "name", "required value is missing")
        elif len(name) > MAX_NAME:
            self.reject(no, "name", f"longer than {MAX_NAME} characters")
            name = None
        return {
            "line_no": no,
            "commune_code": self.required(no, "commune_code", rec.get("commune_code"),
                                          parse_code, 5),
            "sheet_no": self.required(no, "sheet_no", rec.get("sheet_no"), _whole_number),
            "parcel_no": self.required(no, "parcel_no", rec.get("parcel_no"),
                                       _whole_number),
            "kind": kind, "name": name,
            "id_number": self.document(no, kind, rec.get("id_number")),
            "share": self.optional(no, "share", rec.get("share"), parse_share),
            "bad": len(self.issues) > before,
        }


@dataclass
class HoldersFile:
    """A holders file opened for a load: its whole-file checks made, its rows not read."""

    path: Path
    delimiter: str
    renames: dict[str, str]  # source column -> canonical name

    @classmethod
    def open(cls, path: Path) -> HoldersFile:
        """Size, text encoding and header (every required field) checked, before the
        load's transaction; a problem is the delivery's (``LoadError``)."""
        try:
            check_size(path)
        except LoadError as exc:
            raise _refused(path, exc.reason) from None
        try:
            with path.open(encoding="utf-8-sig", newline="") as fh:
                header_line = fh.readline()
        except UnicodeDecodeError:
            raise _refused(path, "not UTF-8 text: save the holders file as UTF-8 "
                                  "(CSV UTF-8)") from None
        except OSError as exc:
            raise _refused(path, f"cannot be read: {exc}") from exc
        if not header_line.strip():
            raise _refused(path, "no header row (MaXa, SoHieuToBanDo, SoThuTuThua, "
                                  "LoaiChu, TenChu, SoGiayTo, TyLe)")
        try:
            delimiter = csv.Sniffer().sniff(header_line, delimiters=",;\t").delimiter
        except csv.Error:
            delimiter = ","
        header = next(csv.reader([header_line], delimiter=delimiter))
        mapping = FieldMapping.load("holders", MAPPINGS)
        try:
            mapping.select(pd.DataFrame(columns=header), path.name)
        except LoadError as exc:  # a required field is missing
            raise _refused(path, exc.reason) from None
        renames, _ = mapping.resolve(header)
        return cls(path, delimiter, renames)

    def chunks(self) -> Iterator[tuple[int, list[dict]]]:
        """(line number of the first row, the rows under canonical names), a chunk at a
        time; blank lines are skipped but counted. LoadError for text that is not UTF-8
        or not Vietnamese (TCVN3/VNI font text), naming the line and field."""
        line = 2
        try:
            reader = pd.read_csv(self.path, sep=self.delimiter, dtype=str,
                                 keep_default_na=False, encoding="utf-8-sig",
                                 skip_blank_lines=False, chunksize=CHUNK_ROWS,
                                 usecols=list(self.renames))
            for chunk in reader:
                frame = chunk.rename(columns=self.renames)
                rows = []
                for i, rec in enumerate(frame.to_dict("records")):
                    if all(is_blank(v) for v in rec.values()):
                        continue
                    for name, value in rec.items():
                        bad = suspect_text(value) if isinstance(value, str) else ""
                        if bad:
                            raise _refused(self.path, f"line {line + i} field {name} has "
                                            "text that is not Unicode Vietnamese "
                                            f"(characters {bad!r}): TCVN3 (ABC) or VNI font "
                                            "text, or a wrong code page; convert it to "
                                            "Unicode and save as UTF-8")
                    rows.append({"no": line + i, **rec})
                yield line, rows
                line += len(frame)
        except UnicodeDecodeError:
            raise _refused(self.path, f"not UTF-8 text (after line {line - 1}): save the "
                                       "holders file as UTF-8 (CSV UTF-8)") from None
        except (pd.errors.ParserError, ValueError) as exc:
            raise _refused(self.path, f"not a CSV table: {exc}") from None


def checked_chunks(holders: HoldersFile) -> Iterator[tuple[pd.DataFrame, list[Issue]]]:
    """Each chunk's rows as staged (a ``bad`` flag on those their own rules refuse) and
    its issues, located by line."""
    for _, rows in holders.chunks():
        checker = HolderChecker()
        staged = [checker.row(r.pop("no"), r) for r in rows]
        yield pd.DataFrame(staged, columns=[c.strip() for c in COLUMNS.split(",")]), \
            checker.issues


def stage(conn: Connection, holders: HoldersFile) -> list[Issue]:
    """COPY the holders file into ``stage_holder`` a chunk at a time; the rows' own
    issues, located by line (``feature_no``: the line until ``located`` maps them)."""
    issues: list[Issue] = []
    for frame, found in checked_chunks(holders):
        copy_rows(conn, "stage_holder", COLUMNS, frame)  # NaN and None: NULL
        issues += found
    conn.execute(text("ANALYZE stage_holder"))
    return issues


def whole_file_rules(conn: Connection) -> list[Issue]:
    """The rules that need every staged holder: a parcel the parcel file does not carry,
    the same holder twice for a parcel, shares that are not all given or do not add up to
    100 (issues located by line, as ``stage``'s)."""
    issues = [Issue(line, "parcel_no", f"parcel {ref} is not in the parcel file: a holders "
                    "file names the delivery's own parcels")
              for line, ref in conn.execute(text(f"""
                  SELECT h.line_no, h.commune_code || '.' || h.sheet_no || '.' || h.parcel_no
                    FROM stage_holder h
                   WHERE h.commune_code IS NOT NULL AND h.sheet_no IS NOT NULL
                     AND h.parcel_no IS NOT NULL
                     AND NOT EXISTS (SELECT 1 FROM stage_parcel s WHERE {KEY})
                   ORDER BY h.line_no"""))]
    issues += [Issue(line, "id_number", f"the same holder (document number) is named "
                     f"twice for parcel {ref} (also line "
                     f"{', '.join(str(o) for o in others)})")
               for line, ref, others in conn.execute(text("""
                   WITH d AS (
                       SELECT line_no, commune_code || '.' || sheet_no || '.' || parcel_no
                              AS ref,
                              array_agg(line_no) OVER (PARTITION BY commune_code, sheet_no,
                                                       parcel_no, id_number) AS lines
                         FROM stage_holder
                        WHERE id_number IS NOT NULL AND commune_code IS NOT NULL
                          AND sheet_no IS NOT NULL AND parcel_no IS NOT NULL)
                   SELECT line_no, ref, array_remove(lines, line_no) FROM d
                    WHERE cardinality(lines) > 1 ORDER BY line_no"""))]
    for lines, ref, n, given, total in conn.execute(text("""
            SELECT array_agg(line_no ORDER BY line_no),
                   commune_code || '.' || sheet_no || '.' || parcel_no, count(*),
                   count(share), sum(share)
              FROM stage_holder
             WHERE commune_code IS NOT NULL AND sheet_no IS NOT NULL
               AND parcel_no IS NOT NULL
             GROUP BY commune_code, sheet_no, parcel_no
            HAVING NOT bool_or(bad) AND count(share) > 0
               AND (count(share) < count(*) OR abs(sum(share) - 100) > :tolerance)
             ORDER BY 1"""), {"tolerance": SHARE_TOLERANCE}):
        listed = ", ".join(str(v) for v in lines)
        if given < n:
            why = (f"{given} of the {n} holders of parcel {ref} have a share and "
                   f"{n - given} none: give every holder a share, or none (joint holders) "
                   f"(lines {listed})")
        else:
            why = (f"the shares of parcel {ref} add up to {float(total):g} %, not 100 "
                   f"(lines {listed})")
        issues += [Issue(line, "share", why) for line in lines]
    return issues


def located(conn: Connection, line_issues: list[Issue], file_name: str) -> list[Issue]:
    """Holder issues as the parcel delivery's: each on the feature of the parcel its line
    names (that parcel is refused with it), field ``<holders file>!<field>``, the line in
    the reason; a line naming no parcel of the file is the delivery's (feature 0)."""
    if not line_issues:
        return []
    feature = dict(conn.execute(text(f"""
        SELECT h.line_no, min(s.feature_no) FROM stage_holder h
          JOIN stage_parcel s ON {KEY}
         WHERE h.line_no = ANY(:lines)
         GROUP BY h.line_no"""), {"lines": sorted({i.feature_no for i in line_issues})}).all())
    return [Issue(feature.get(i.feature_no, 0), f"{file_name}!{i.field}",
                  f"line {i.feature_no}: {i.reason}", i.value, i.severity)
            for i in line_issues]
