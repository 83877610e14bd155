#!/usr/bin/env bash
# npm run test:bare: the suite as a user meets it on a machine with nothing but Node: a fresh clone
# of this checkout's HEAD, `npm ci`, `npm test`, with Debian's Chromium, the libraries it brings
# (NSS, NSPR), the system fonts and the Debian tools some tests drive (redis-server, wrk, PostgreSQL's
# psql and pgbench: those tests skip) out of reach, and an empty temp folder (so the bundled browser is
# unpacked from scratch). They are hidden inside a private mount namespace only, so nothing changes
# for the rest of the machine: an overlay on /usr/bin and on /usr/lib/x86_64-linux-gnu with those
# files removed, empty folders over /usr/lib/chromium, /usr/lib/postgresql, /etc/fonts and /usr/share/fonts.
#
#   scripts/test-bare-machine.sh [vitest arguments]     the whole suite by default
#   scripts/test-bare-machine.sh test/e2e               only the browser test of /docs
#
# Uncommitted changes are not in the clone: commit first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

if [ "${1:-}" = --inside-namespace ]; then
  shift
  work=$1
  shift

  hide_in_overlay() { # DIR FILE...: DIR stays as it is, less FILE...
    local dir=$1 layer
    shift
    layer=$work/overlay$(tr / - <<<"$dir")
    mkdir -p "$layer/upper" "$layer/work"
    mount -t overlay overlay -o "lowerdir=$dir,upperdir=$layer/upper,workdir=$layer/work" "$dir"
    (cd "$dir" && rm -f -- "$@")
  }
  hide_in_overlay /usr/bin chromium chromium-browser redis-server wrk psql pgbench
  libraries=()
  for file in $(dpkg -L libnss3 libnspr4 2>/dev/null | grep '^/usr/lib/x86_64-linux-gnu/[^/]*\.so' || true); do
    libraries+=("$(basename "$file")")
  done
  [ ${#libraries[@]} -eq 0 ] || hide_in_overlay /usr/lib/x86_64-linux-gnu "${libraries[@]}"
  for dir in /usr/lib/chromium /usr/lib/postgresql /etc/fonts /usr/share/fonts; do
    [ ! -d "$dir" ] || mount -t tmpfs -o size=1m,mode=755 bare "$dir"
  done

  unset REQUIRE_SYSTEM_TOOLS
  log "chromium on PATH: $(command -v chromium || echo none); redis-server, wrk, psql: $(command -v redis-server wrk psql | wc -l) found; $(ls /usr/lib/x86_64-linux-gnu/libnss3.so 2>&1 || true); font files: $(find /usr/share/fonts /etc/fonts -mindepth 1 | wc -l)"
  export TMPDIR=$work/tmp
  mkdir -m 1777 "$TMPDIR"
  cd "$work/clone"
  unset CHROMIUM_PATH
  start=$SECONDS
  npm ci --no-audit --no-fund
  log "npm ci: $((SECONDS - start)) s, node_modules $(du -sh node_modules | cut -f1)"
  start=$SECONDS
  npm test -- "$@"
  log "npm test: $((SECONDS - start)) s"
  exit 0
fi

[ "$(id -u)" = 0 ] || fail "a mount namespace with overlays needs root"
make_temp_dir bare-machine
work=$REPLY
git clone --quiet --no-hardlinks "$(pwd)" "$work/clone"
log "fresh clone of $(git -C "$work/clone" log -1 --format='%h %s') in $work/clone"
unshare --mount --propagation private "$(pwd)/scripts/test-bare-machine.sh" --inside-namespace "$work" "$@"
log "PASS test:bare: npm ci and npm test in a fresh clone, without the system's Chromium, NSS or fonts"
