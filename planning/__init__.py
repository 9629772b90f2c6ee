"""Planning domain: land-use plans and zones, overlays on parcels (see issue #3)."""

from pathlib import Path

# The field aliases this domain's loaders map delivered files with (data, not code).
MAPPINGS = Path(__file__).resolve().parent / "mappings"
