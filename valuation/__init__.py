"""Valuation domain: land price tables and per-parcel values (see issue #4)."""
