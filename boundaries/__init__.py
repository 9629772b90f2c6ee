"""Boundaries domain: delivered administrative boundaries (địa giới hành chính) of the
versioned units in ``admin.admin_unit``, with their history."""

from pathlib import Path

# The field aliases this domain's loader maps delivered files with (data, not code).
MAPPINGS = Path(__file__).resolve().parent / "mappings"
