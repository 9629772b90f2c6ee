"""Cadastre domain: parcels, their land-use parts, history and look-ups."""
