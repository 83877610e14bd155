# shellcheck shell=bash disable=SC2034
# Shared by the scripts in this folder (sourced, not run): installing Debian packages, free ports,
# a throwaway PostgreSQL, and cleanup of everything a script started, by pid.
# Every script keeps its state in its own temp dir and on ports the kernel picks, so two runs never collide.

export DEBIAN_FRONTEND=noninteractive
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

# podman's run flags that work on this kind of machine (runc; crun fails on its cgroups).
PODMAN_RUN=(podman --runtime runc run --ulimit nofile=10000:10000 --ulimit nproc=4096:4096)

log() { printf '%s %s\n' "[$(date +%T)]" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

# Installs the Debian packages whose command is missing: need_commands "cmd:package" ...
need_commands() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "${pair%%:*}" ] || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || fail "missing ${missing[*]}: run as root, or install them with apt-get"
  log "installing ${missing[*]} from Debian"
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
}

# A port the kernel just found free on loopback.
free_port() {
  node -e "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })"
}

# Waits until `curl URL` answers 2xx; returns 1 after SECONDS (default 30).
wait_http() {
  local url=$1 deadline=$((SECONDS + ${2:-30}))
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# Stops a process by pid: SIGTERM (or the given signal), then SIGKILL after 10 s.
stop_pid() {
  local pid=$1 signal=${2:-TERM} waited=0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -"$signal" "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && [ $waited -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
  kill -KILL "$pid" 2>/dev/null || true
}

# What to undo on exit, run in reverse order: `on_exit "stop_pid 123"`.
CLEANUP=()
on_exit() { CLEANUP+=("$1"); }

cleanup() {
  local status=$? index
  trap - EXIT INT TERM
  for ((index = ${#CLEANUP[@]} - 1; index >= 0; index--)); do eval "${CLEANUP[index]}" >/dev/null 2>&1 || true; done
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A temp dir of this run in $REPLY, removed on exit. Readable by the postgres user (it may hold a
# cluster). Not a $(function): the cleanup must be registered in this shell, not a subshell.
make_temp_dir() {
  REPLY=$(mktemp -d "${TMPDIR:-/tmp}/fastify-sqlasync-$1-XXXXXX")
  chmod 755 "$REPLY"
  on_exit "rm -rf $REPLY"
}

# Starts a throwaway PostgreSQL 15 in DIR on PORT (loopback, trust auth), with database `items`.
# Sets PG_PID (the postmaster, stopped on exit with SIGINT: a fast shutdown) and PG_URL.
start_postgres() {
  local dir=$1 port=$2
  need_commands "$PGBIN/initdb:postgresql-15"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent postgres
    as_postgres() { runuser -u postgres -- "$@"; }
    chown postgres "$dir"
  else
    as_postgres() { "$@"; }
  fi
  as_postgres "$PGBIN/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C --auth=trust >/dev/null
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/data'
max_connections = 200
fsync = on
synchronous_commit = on
EOF
  as_postgres "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null ||
    fail "PostgreSQL did not start: $(tail -5 "$dir/postgres.log")"
  PG_PID=$(head -1 "$dir/data/postmaster.pid")
  on_exit "stop_pid $PG_PID INT"
  "$PGBIN/psql" -h 127.0.0.1 -p "$port" -U postgres -X -q -v ON_ERROR_STOP=1 -d postgres -c 'CREATE DATABASE items' >/dev/null
  PG_URL="postgres://postgres@127.0.0.1:$port/items"
  log "PostgreSQL 15 up: pid $PG_PID, port $port"
}
