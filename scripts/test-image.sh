#!/usr/bin/env bash
# npm run test:image: builds the Dockerfile and runs the image as an orchestrator would, on this
# machine (no Docker engine, no registry): a locally built base image, buildah, podman with runc,
# and a throwaway PostgreSQL 15. Also validates compose.yaml. Cleans up all it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
started=$SECONDS

need_commands buildah:buildah podman:podman runc:runc curl:curl
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
log "built $image ($(podman image inspect "$image" --format '{{.Size}}' | numfmt --to=si)B) in $((SECONDS - started)) s so far"

# ---- what the image declares ----
expect_equal() { [ "$2" = "$3" ] || fail "$1: expected '$3', got '$2'"; }
inspect() { podman image inspect "$image" --format "$1"; }
expect_equal "image user" "$(inspect '{{.Config.User}}')" "1000:1000"
expect_equal "image command" "$(inspect '{{json .Config.Cmd}}')" '["node","dist/server.js"]'
expect_equal "exposed port" "$(inspect '{{range $port, $_ := .Config.ExposedPorts}}{{$port}}{{end}}')" "8000/tcp"
inspect '{{json .Config.Env}}' | grep -q '"WEB_CONCURRENCY=1"' || fail "the image does not default WEB_CONCURRENCY to 1"
inspect '{{json .Config.Healthcheck}}' | grep -q '/healthz' || fail "the image has no HEALTHCHECK on /healthz"

# ---- what the image holds: production dependencies, the build, migrations; nothing else ----
"${PODMAN_RUN[@]}" --rm --no-healthcheck --network none "$image" node -e '
  const { existsSync } = require("node:fs");
  const must = ["dist/server.js", "dist/db/cli.js", "migrations/meta/_journal.json", "node_modules/fastify"];
  const mustNot = ["src", "node_modules/typescript", "node_modules/vitest", "node_modules/drizzle-kit", "/run/host-ca.crt", ".env"];
  const wrong = [...must.filter((path) => !existsSync(path)).map((path) => `missing ${path}`),
                 ...mustNot.filter((path) => existsSync(path)).map((path) => `unexpected ${path}`)];
  if (wrong.length > 0) { console.error(wrong.join("\n")); process.exit(1); }
' || fail "the image's contents are wrong"

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
wait_http "$base_url/healthz" 60 || fail "no answer from /healthz in 60 s: $(podman logs "$container" 2>&1 | tail -20)"
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
expect_equal "PID 1 (uid command)" "$pid1" "1000 node dist/server.js"
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

log "PASS test:image: built on $base; compose valid; migrate step; /healthz, /readyz, POST, GET, HEALTHCHECK;" \
  "PID 1 node as uid 1000 on a read-only root; SIGTERM → exit 0 in $stop_ms ms; wall time $((SECONDS - started)) s"
