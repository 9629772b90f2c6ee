"""Map the field names of a delivered file to the platform's canonical names.

The aliases live in each domain's ``mappings/*.yaml`` (the domain hands its folder in) so
a land office's new spelling is a data change, not a code change.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from etl.report import LoadError

DBF_NAME_LIMIT = 10


def normalise_name(name: str) -> str:
    """Fold case, Vietnamese diacritics (đ included), spaces, '_' and '-' away."""
    text = unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return re.sub(r"[\s_\-.]+", "", text).lower()


@dataclass(frozen=True)
class FieldSpec:
    name: str
    required: bool
    restricted: bool
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class FieldMapping:
    """A mapping file: canonical field specs, looked up by normalised alias."""

    specs: tuple[FieldSpec, ...]

    @classmethod
    def load(cls, name_or_path: str | Path, folder: Path | None = None) -> FieldMapping:
        """A mapping file by path, or by name (``<folder>/<name>.yaml``)."""
        path = Path(name_or_path)
        if not path.suffix:
            if folder is None:
                raise ValueError(f"mapping {name_or_path!r}: name a file, or the folder "
                                 "of the domain's mappings")
            path = folder / f"{name_or_path}.yaml"
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        specs = tuple(
            FieldSpec(name, bool(spec.get("required")), bool(spec.get("restricted")),
                      tuple(str(a) for a in spec.get("aliases", [])) + (name,))
            for name, spec in doc["fields"].items()
        )
        return cls(specs)

    def resolve(self, columns: list[str]) -> tuple[dict[str, str], list[str]]:
        """Return ({source column: canonical name}, [missing required canonical names]).

        The first alias (in mapping order) present in the file wins for each field.
        """
        by_norm: dict[str, str] = {}
        for col in columns:
            by_norm.setdefault(normalise_name(col), col)
        # DBF field names stop at 10 characters: SoHieuToBanDo arrives as SoHieuToBa.
        truncated = {col.lower(): col for col in columns if len(col) == DBF_NAME_LIMIT}
        found: dict[str, str] = {}
        missing: list[str] = []
        for spec in self.specs:
            src = next((by_norm[n] for n in map(normalise_name, spec.aliases) if n in by_norm),
                       None)
            if src is None:
                src = next((truncated[a[:DBF_NAME_LIMIT].lower()] for a in spec.aliases
                            if a[:DBF_NAME_LIMIT].lower() in truncated), None)
            if src is not None and src not in found:
                found[src] = spec.name
            elif spec.required:
                missing.append(spec.name)
        return found, missing

    def select(self, frame: pd.DataFrame, file: str) -> pd.DataFrame:
        """The frame's attribute columns under canonical names; LoadError when a required
        field is missing (a whole-file problem: nothing can be loaded)."""
        columns = [c for c in frame.columns if c != "geometry"]
        renames, missing = self.resolve(columns)
        if missing:
            wanted = "; ".join(f"{m} (one of: {', '.join(self.aliases_of(m)[:4])})"
                               for m in missing)
            raise LoadError(file, f"required field(s) missing: {wanted}. "
                                  f"The file has: {', '.join(columns) or 'no fields'}")
        return frame[list(renames)].rename(columns=renames)

    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    def extended(self, extra: dict[str, tuple[str, ...]],
                 replace: frozenset[str] = frozenset()) -> FieldMapping:
        """The mapping with a delivery's own headings (its sidecar's), tried before the
        mapping's own aliases, or instead of them for the names in ``replace``: a land
        office teaches the loader a heading without editing the installed package."""
        specs = []
        for spec in self.specs:
            mine = tuple(extra.get(spec.name, ()))
            rest = () if spec.name in replace else spec.aliases
            specs.append(FieldSpec(spec.name, spec.required, spec.restricted,
                                   mine + tuple(a for a in rest if a not in mine)))
        return FieldMapping(tuple(specs))

    def aliases_of(self, canonical: str) -> tuple[str, ...]:
        return next(s.aliases for s in self.specs if s.name == canonical)
