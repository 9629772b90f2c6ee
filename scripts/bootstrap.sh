#!/usr/bin/env bash
# Make a fresh machine ready to run and test the platform (called by `make up` and `make test`).
#
#   1. find Python >= 3.12 ($PYTHON, python3.13/3.12 on PATH, pyenv versions, python3)
#   2. create .venv with it (recreated if the existing one is older than 3.12)
#   3. pip install -e '.[test]' when pyproject.toml changed since the last successful install
#   4. check PostgreSQL server binaries (initdb), PostGIS for that major version, GDAL
#      (ogrinfo/ogr2ogr), and with --tests Chromium (the planner's map browser test);
#      install them with apt-get when root, else print the command
#   5. print one line naming the versions in use
#
# Idempotent: a second run only prints the closing line. Works from any directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { echo "[bootstrap] $*"; }
die() { echo "[bootstrap] ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- 1. Python >= 3.12
py_ok() {  # runs and is >= 3.12 (pyenv shims exist on PATH but fail when not selected)
  [ -n "$1" ] && "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' \
    >/dev/null 2>&1
}
py_version() { "$1" -c 'import platform; print(platform.python_version())'; }

find_python() {
  local c root
  if [ -n "${PYTHON:-}" ]; then
    py_ok "$PYTHON" || die "PYTHON=$PYTHON is not a working Python >= 3.12"
    echo "$PYTHON"; return
  fi
  for c in python3.13 python3.12; do
    if command -v "$c" >/dev/null 2>&1 && py_ok "$c"; then command -v "$c"; return; fi
  done
  for root in "$(command -v pyenv >/dev/null 2>&1 && pyenv root 2>/dev/null || true)" \
              "${PYENV_ROOT:-}" "$HOME/.pyenv"; do
    [ -n "$root" ] && [ -d "$root/versions" ] || continue
    # newest first: 3.13.x before 3.12.x
    while IFS= read -r c; do
      if py_ok "$c"; then echo "$c"; return; fi
    done < <(ls -d "$root"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV)
  done
  if command -v python3 >/dev/null 2>&1 && py_ok python3; then command -v python3; return; fi
  die "no Python >= 3.12 found. Install Python 3.12 or newer (Debian/Ubuntu: apt-get install \
python3.12 python3.12-venv; or pyenv install 3.12) or set PYTHON=/path/to/python3.12"
}

# ---------------------------------------------------------------- 2. .venv
VENV_PY="$ROOT/.venv/bin/python"
if ! py_ok "$VENV_PY"; then
  PY="$(find_python)"
  if [ -e .venv ]; then
    OLD="$(py_version "$VENV_PY" 2>/dev/null || echo "a missing or broken interpreter")"
    say ".venv uses Python $OLD (need >= 3.12); recreating it"
    rm -rf .venv
  fi
  say "creating .venv with Python $(py_version "$PY") ($PY)"
  "$PY" -m venv .venv || die "'$PY -m venv' failed; on Debian/Ubuntu install the matching \
python3.X-venv package, or use a pyenv Python (PYTHON=/path/to/python3.12)"
fi

# ---------------------------------------------------------------- 3. project install
HASH="$(sha256sum pyproject.toml | cut -d' ' -f1)"
STAMP=".venv/.installed-$HASH"
if [ ! -f "$STAMP" ]; then
  say "installing the project into .venv (pip install -e '.[test]')"
  if ! "$VENV_PY" -m pip install --quiet --disable-pip-version-check -e '.[test]'; then
    die "pip install -e '.[test]' failed (see pip's messages above)"
  fi
  rm -f .venv/.installed-*
  touch "$STAMP"
fi

# ---------------------------------------------------------------- 4. system packages
FOR_TESTS=0
[ "${1:-}" = "--tests" ] && FOR_TESTS=1
has_initdb() { [ -n "$1" ] && [ -x "$1/initdb" ]; }

find_bindir() {  # same order as landplatform.pgcluster.find_pg_bindir
  local d
  if [ -n "${PG_BINDIR:-}" ]; then
    has_initdb "$PG_BINDIR" || die "PG_BINDIR=$PG_BINDIR has no executable initdb"
    echo "$PG_BINDIR"; return
  fi
  if command -v pg_config >/dev/null 2>&1; then
    d="$(pg_config --bindir 2>/dev/null || true)"
    if has_initdb "$d"; then echo "$d"; return; fi
  fi
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if has_initdb "$d"; then echo "$d"; fi
}

pg_major() {  # major version of the server in bindir $1
  local m
  m="$(basename "$(dirname "$1")")"
  if [[ "$m" =~ ^[0-9]+$ ]]; then echo "$m"; return; fi
  "$1/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)?.*/\1/'
}

postgis_control() {  # path of postgis.control for bindir $1, if installed
  local share f
  share="$("$1/pg_config" --sharedir 2>/dev/null || true)"
  for f in "$share/extension/postgis.control" \
           "/usr/share/postgresql/$(pg_major "$1")/extension/postgis.control"; do
    if [ -f "$f" ]; then echo "$f"; return; fi
  done
}

check_system() {
  MISSING=()
  BINDIR="$(find_bindir)"
  if [ -z "$BINDIR" ]; then
    MAJOR=15
    MISSING+=("postgresql-$MAJOR" "postgresql-$MAJOR-postgis-3")
  else
    MAJOR="$(pg_major "$BINDIR")"
    [ -n "$(postgis_control "$BINDIR")" ] || MISSING+=("postgresql-$MAJOR-postgis-3")
  fi
  if ! command -v ogrinfo >/dev/null 2>&1 || ! command -v ogr2ogr >/dev/null 2>&1; then
    MISSING+=("gdal-bin")
  fi
  # headless browser for tests/test_map_browser.py (Playwright drives the system Chromium);
  # only `make test` asks for it (bootstrap.sh --tests), running the platform does not
  if [ "$FOR_TESTS" = 1 ] && [ ! -x /usr/bin/chromium ]; then
    MISSING+=("chromium" "fonts-dejavu-core")
  fi
  # PyQGIS, headless, for tests/test_qgis_client.py (Debian's QGIS runs on the system Python)
  if [ "$FOR_TESTS" = 1 ] && ! /usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1; then
    MISSING+=("python3-qgis" "qgis-providers")
  fi
}

check_system
if [ "${#MISSING[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing missing system packages: ${MISSING[*]}"
    apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${MISSING[@]}" >/dev/null || die "apt-get install ${MISSING[*]} failed"
    check_system
    [ "${#MISSING[@]}" -eq 0 ] || die "still missing after apt-get install: ${MISSING[*]}"
  elif command -v apt-get >/dev/null 2>&1; then
    die "missing system packages. Run: sudo apt-get install -y --no-install-recommends \
${MISSING[*]}"
  else
    die "missing PostgreSQL server/PostGIS/GDAL/Chromium (Debian names: ${MISSING[*]}). \
Install them with your package manager, or set PG_BINDIR to the directory holding initdb"
  fi
fi

# ---------------------------------------------------------------- 5. the OGC checker
# A third-party OGC API - Features checker (ogctests, PyPI) in a venv of its own: it pins
# pytest < 9 and its own geopandas/pyarrow, which must not meet the project's.
if [ "$FOR_TESTS" = 1 ]; then
  OGC_PIN="ogctests==0.1.15"
  if [ ! -f ".venv-ogctests/.installed-$OGC_PIN" ]; then
    say "installing the OGC API checker into .venv-ogctests ($OGC_PIN)"
    rm -rf .venv-ogctests
    # its pins (pyarrow 17) have wheels for Python 3.11 and 3.12 only
    CHECKER_PY=""
    for c in "$("$VENV_PY" -c 'import sys; print(sys._base_executable)')" python3.12 python3.11 \
             $(ls -d "$HOME"/.pyenv/versions/3.1[12]*/bin/python3 2>/dev/null | sort -rV) \
             python3; do
      if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys, venv
sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else 1)' >/dev/null 2>&1; then
        CHECKER_PY="$c"; break
      fi
    done
    [ -n "$CHECKER_PY" ] || die "the OGC checker (ogctests) needs Python 3.11 or 3.12; none found"
    "$CHECKER_PY" -m venv .venv-ogctests || die "could not make .venv-ogctests with $CHECKER_PY"
    .venv-ogctests/bin/python -m pip install --quiet --disable-pip-version-check "$OGC_PIN" \
      || die "pip install $OGC_PIN into .venv-ogctests failed (see pip's messages above)"
    touch ".venv-ogctests/.installed-$OGC_PIN"
  fi
fi

# ---------------------------------------------------------------- 6. summary
PG_VERSION="$("$BINDIR/postgres" --version | sed -E 's/^[^0-9]*([0-9][0-9.]*).*/\1/')"
POSTGIS_VERSION="$(sed -nE "s/^default_version *= *'([^']*)'.*/\1/p" \
  "$(postgis_control "$BINDIR")")"
GDAL_VERSION="$(ogrinfo --version | sed -E 's/^GDAL ([0-9.]+).*/\1/')"
say "ready: Python $(py_version "$VENV_PY") (.venv), PostgreSQL $PG_VERSION ($BINDIR)," \
    "PostGIS $POSTGIS_VERSION, GDAL $GDAL_VERSION"
