"""Planning domain: land-use plans and zones, overlays on parcels (see issue #3)."""
