# The platform's API image: `lis up` against the PostGIS named by DATABASE_URL (see
# docker-compose.yml). No system GDAL/GEOS/PROJ: the pyogrio, rasterio, shapely and pyproj
# wheels bundle their own, and psycopg[binary] bundles libpq.
#
#   docker build -t landplatform .
#   docker run -e DATABASE_URL=postgresql+psycopg://user:pw@host:5432/lis -p 8000:8000 landplatform

# ---------------------------------------------------------------- build: the project's wheel
# Built in its own stage so the runtime image holds the installed package only (no second,
# unused copy of the sources next to site-packages) and no setuptools build leftovers.
FROM python:3.12-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY landplatform/ landplatform/
COPY boundaries/ boundaries/
COPY cadastre/ cadastre/
COPY etl/ etl/
COPY planning/ planning/
COPY valuation/ valuation/
COPY lis/ lis/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---------------------------------------------------------------- runtime
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# The dependencies first, from pyproject.toml alone: this (large) layer is rebuilt only when
# the dependency list changes, not on every code change.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; d = tomllib.load(open('/tmp/pyproject.toml', 'rb')); \
print(*d['project']['dependencies'], sep=chr(10))" > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt /tmp/pyproject.toml

# The project itself (non-editable: alembic.ini, the migrations, reference CSVs and the
# domains' field mappings travel as package data). Its requirements are already satisfied above.
COPY --from=build /wheels/ /tmp/wheels/
RUN pip install --no-cache-dir /tmp/wheels/*.whl && rm -rf /tmp/wheels

# Unprivileged user; LIS_VAR_DIR (generated pygeoapi config, OpenAPI document, price
# surfaces, the local token secret) must be
# writable by it. Created here so a named volume mounted on it starts with this owner.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/lis \
        --shell /usr/sbin/nologin lis \
 && mkdir -p /var/lib/lis \
 && chown lis:lis /var/lib/lis

WORKDIR /app
# Sample data `lis up` loads on start (read-only; files already loaded are skipped).
COPY data/samples/ /app/data/samples/

# HOST=0.0.0.0: reachable through the published port (the default 127.0.0.1 is not).
# LIS_SAMPLES_DIR: named explicitly; its default is derived from where the package is
# installed (site-packages here, not a checkout), so it is not left to that derivation.
ENV HOST=0.0.0.0 \
    PORT=8000 \
    LIS_VAR_DIR=/var/lib/lis \
    LIS_SAMPLES_DIR=/app/data/samples

USER lis
EXPOSE 8000

# /health answers 200 only when the database answers and the schema is at the latest
# migration; urlopen raises on 503 or no answer, so the check fails. No curl in slim.
# start-period: the first start migrates and loads the samples before it serves.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${PORT}/health', timeout=4)" || exit 1

# With DATABASE_URL set, `lis up` starts no embedded cluster: it migrates, loads the samples
# (`lis up --no-samples` to skip) and serves. Without DATABASE_URL it would try to run
# PostgreSQL inside this image, which has none: always set DATABASE_URL.
CMD ["lis", "up"]
