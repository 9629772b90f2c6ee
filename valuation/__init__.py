"""Valuation domain: land price tables and per-parcel values (see issue #4)."""

from pathlib import Path

# The field aliases this domain's loaders map delivered files with (data, not code).
MAPPINGS = Path(__file__).resolve().parent / "mappings"
