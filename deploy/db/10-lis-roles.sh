#!/bin/sh
# First start of the database volume (the postgis image runs /docker-entrypoint-initdb.d/*
# once, as the superuser, on an empty volume): the platform's three roles and the database
# handed to the schema owner, by the same SQL the embedded cluster and `lis db roles` run
# (landplatform/sql/roles.sql). An existing volume is set up with `lis db roles` instead
# (docs/SECURITY.md, "Database roles").
set -eu
: "${LIS_DB_OWNER_PASSWORD:?set LIS_DB_OWNER_PASSWORD}"
: "${LIS_DB_APP_PASSWORD:?set LIS_DB_APP_PASSWORD}"
: "${LIS_DB_PUBLIC_PASSWORD:?set LIS_DB_PUBLIC_PASSWORD}"

# The passwords go from the environment into session settings (psql 15's \getenv): never
# on a command line (ps), never echoed (\o /dev/null around set_config, which returns them).
psql -v ON_ERROR_STOP=1 -X -q --username "${POSTGRES_USER:-postgres}" \
     --dbname "${POSTGRES_DB:-lis}" -v roles_sql="${LIS_ROLES_SQL:-/lis/roles.sql}" <<'EOSQL'
\getenv owner_pw LIS_DB_OWNER_PASSWORD
\getenv app_pw LIS_DB_APP_PASSWORD
\getenv public_pw LIS_DB_PUBLIC_PASSWORD
\o /dev/null
SELECT set_config('lis.owner_password', :'owner_pw', false);
SELECT set_config('lis.app_password', :'app_pw', false);
SELECT set_config('lis.public_password', :'public_pw', false);
\o
\i :roles_sql
EOSQL
