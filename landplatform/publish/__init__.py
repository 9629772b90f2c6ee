"""Publishing: the layers, the PostGIS feature provider, the generated pygeoapi config."""
