#!/usr/bin/env bash
# npm run test:pgbouncer: the app's integration tests (items, http) through Debian's PgBouncer in
# transaction pooling mode, on the run's own PostgreSQL and free ports (test/deploy/pgbouncer-setup.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

need_commands pgbouncer:pgbouncer
version=$(pgbouncer --version | awk 'NR == 1 { print $2 }')
# Protocol-level prepared statements survive transaction pooling only from 1.21 on (max_prepared_statements).
if [ "$(printf '%s\n' 1.21 "$version" | sort -V | head -1)" = 1.21 ]; then
  log "PgBouncer $version supports prepared statements in transaction mode (max_prepared_statements); the tests still run with DB_PREPARE=false"
else
  log "PgBouncer $version (< 1.21): no prepared statements in transaction mode, so the app runs with DB_PREPARE=false"
fi
make_temp_dir pgbouncer-run
npx vitest run --config test/deploy/pgbouncer.config.ts | tee "$REPLY/vitest.log"
# The tests pass on a direct connection too: make sure they went through PgBouncer.
grep -Eq 'PgBouncer served [1-9][0-9]* client connections' "$REPLY/vitest.log" || fail "the tests did not connect through PgBouncer"
log "PASS test:pgbouncer: items and http integration tests through PgBouncer $version (transaction pooling, DB_PREPARE=false)"
