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


def column_headings(value: object, known: tuple[str, ...], where: str, problems: list[str]
                    ) -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    """A sidecar's ``columns:`` section: canonical name -> the headings a delivery uses.

    ``{name: [heading, ...]}`` adds headings (tried first); ``{name: {only: [...]}}`` uses
    those instead of the mapping's. Returns (headings by name, names replaced); every
    problem (an unknown name, a heading that is not text) is appended to ``problems`` with
    the known names, so a typo is an error instead of a column silently not found.
    """
    if value is None:
        return {}, frozenset()
    if not isinstance(value, dict):
        problems.append(f"{where}: a mapping of column name -> list of headings")
        return {}, frozenset()
    extra: dict[str, tuple[str, ...]] = {}
    replace: set[str] = set()
    for name, headings in value.items():
        if name not in known:
            problems.append(f"{where}: unknown column {name!r} (known: {', '.join(known)})")
            continue
        if isinstance(headings, dict):
            unknown = sorted(set(headings) - {"only"})
            if unknown or "only" not in headings:
                problems.append(f"{where}.{name}: a list of headings, or {{only: [...]}} "
                                "to replace the built-in ones")
                continue
            headings = headings["only"]
            replace.add(name)
        if isinstance(headings, str):
            headings = [headings]
        if (not isinstance(headings, list) or not headings
                or not all(isinstance(h, str) and h.strip() for h in headings)):
            problems.append(f"{where}.{name}: headings must be a non-empty list of text")
            replace.discard(name)
            continue
        extra[name] = tuple(h.strip() for h in headings)
    return extra, frozenset(replace)
