"""Metadata sidecars: the small YAML file an office puts beside a delivery (a plan's
decision, a price table's identity) when the data file cannot carry it."""

from __future__ import annotations

from pathlib import Path

import yaml

from etl.report import LoadError


def find_sidecar(path: Path, suffix: str) -> Path | None:
    """``<file name><suffix>`` (the more specific, e.g. ``x.gpkg.plan.yaml``), else
    ``<stem><suffix>`` (``x.plan.yaml``) beside ``path``."""
    for candidate in (path.with_name(path.name + suffix), path.with_suffix(suffix)):
        if candidate.exists():
            return candidate
    return None


def read_sidecar(path: Path | None, file: str, known: set[str], what: str) -> dict:
    """The sidecar's mapping ({} when there is none); a located LoadError for a file that
    cannot be read, is not a mapping, or has keys outside ``known`` (a typo must not be
    silently ignored: it would load a plan or table without the field the office meant)."""
    if path is None:
        return {}
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LoadError(file, f"{path.name} cannot be read: {exc}") from exc
    if not isinstance(doc, dict):
        raise LoadError(file, f"{path.name} must be a mapping of {what} fields")
    unknown = sorted(set(doc) - known)
    if unknown:
        raise LoadError(file, f"{path.name}: unknown key(s) {', '.join(unknown)}; known: "
                              f"{', '.join(sorted(known))}")
    return doc
