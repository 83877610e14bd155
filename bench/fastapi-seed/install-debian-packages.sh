#!/usr/bin/env bash
# Installs the Debian packages the FastAPI baseline runs on, when any is missing (no PyPI on the
# bench machine). Quiet when everything is there; as non-root with something missing, it says what
# to run and fails.
set -euo pipefail

packages=(python3-fastapi python3-uvicorn python3-sqlalchemy python3-asyncpg gunicorn python3-alembic
  python3-uvloop python3-httptools)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install-debian-packages.sh: no dpkg-query: this script needs Debian (or Ubuntu); elsewhere use requirements.txt" >&2
  exit 1
fi

missing=()
for package in "${packages[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "install-debian-packages.sh: missing Debian packages: ${missing[*]}" >&2
  echo "Run it as root (sudo $0), or: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "install-debian-packages.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
