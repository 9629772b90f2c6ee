"""What a load says about itself: rejected rows, repairs, counts, and how to print them.

Every rejected row names the file, the feature number (1-based, in file order), the field
and the reason, so a land officer can find and fix it in the source.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path


class LoadError(Exception):
    """A whole-file problem (unreadable, no CRS, missing required column): nothing loaded."""

    def __init__(self, file: Path | str, message: str) -> None:
        super().__init__(f"{Path(file).name}: {message}")
        self.file = str(file)
        self.reason = message


@dataclass(frozen=True)
class Issue:
    """One finding about one feature. ``severity`` is 'reject', 'repair' (loaded, noted) or
    'note' (loaded as it is, but worth knowing)."""

    feature_no: int
    field: str
    reason: str
    value: str | None = None
    severity: str = "reject"

    def line(self, file_name: str) -> str:
        value = f" (value: {self.value!r})" if self.value not in (None, "") else ""
        if self.feature_no == 0:
            return f"{file_name} (whole file) field {self.field}: {self.reason}{value}"
        return f"{file_name} feature {self.feature_no} field {self.field}: {self.reason}{value}"


@dataclass
class LoadResult:
    """Outcome of loading one file."""

    file: Path
    mode: str
    status: str = "loaded"  # loaded | rejected | failed
    run_id: int | None = None
    features_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejects: list[Issue] = field(default_factory=list)
    repairs: list[Issue] = field(default_factory=list)
    notes: list[Issue] = field(default_factory=list)
    districts: list[str] = field(default_factory=list)
    source_srid: int | None = None
    message: str | None = None
    # the delivery's name as its sender gave it (an upload's file name): recorded in the
    # ledger instead of where the server happened to keep the file
    name: str | None = None

    @property
    def rejected(self) -> int:
        return len({i.feature_no for i in self.rejects})

    def summary(self) -> str:
        name = self.file.name
        if self.status == "failed":
            return f"{name}: FAILED, nothing was loaded: {self.message}"
        if self.status == "rejected":
            return (f"{name}: REJECTED, {self.rejected} of {self.features_read} features "
                    f"failed validation; nothing was loaded (fix them, or load the rest "
                    f"with --quarantine)")
        text = (f"{name}: loaded as run {self.run_id}: {self.features_read} features, "
                f"{self.inserted} inserted, {self.updated} updated, "
                f"{self.unchanged} unchanged")
        if self.rejects:
            text += f", {self.rejected} QUARANTINED (not loaded, listed above)"
        if self.repairs:
            text += f", {len(self.repairs)} repaired"
        return text

    def detail_lines(self, limit: int = 50, repair_limit: int = 5) -> list[str]:
        """Rejects first (they block the load), then a few repairs; the rest counted."""
        lines = [i.line(self.file.name) for i in self.rejects[:limit]]
        if len(self.rejects) > limit:
            lines.append(f"... and {len(self.rejects) - limit} more rejected "
                         "(write them all with --report)")
        lines += [i.line(self.file.name) + " [repaired]" for i in self.repairs[:repair_limit]]
        if len(self.repairs) > repair_limit:
            lines.append(f"... and {len(self.repairs) - repair_limit} more repairs "
                         "(write them all with --report)")
        return lines

    def write_csv(self, path: Path) -> None:
        with path.open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(["file", "feature_no", "field", "severity", "reason", "value"])
            for i in self.rejects + self.repairs + self.notes:
                out.writerow([self.file.name, i.feature_no, i.field, i.severity, i.reason,
                              i.value or ""])
