"""Cadastre domain: parcels, their land-use parts, history and look-ups."""

from pathlib import Path

# The field aliases this domain's loaders map delivered files with (data, not code).
MAPPINGS = Path(__file__).resolve().parent / "mappings"
