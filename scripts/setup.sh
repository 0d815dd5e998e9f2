#!/usr/bin/env bash
# scripts/setup.sh: install what the README's commands need on a Debian/Ubuntu machine, once:
# redis-server (apt-get, as root or with sudo) and a check for Go. `make run` and `make test`
# (scripts/test.sh) both call it, so a fresh machine needs nothing done by hand.
set -euo pipefail

need_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup.sh: redis-server is missing and there is no apt-get: install Redis 7+ by hand, or set REDIS_URL" >&2
    exit 1
  fi
  echo "setup.sh: installing redis-server (apt-get)…" >&2
  need_root apt-get update -qq
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  # Debian's package may also start a system-wide redis-server on :6379; the drill and the tests do not
  # use it (each starts its own throw-away one on a free loopback port).
fi
if ! command -v go >/dev/null 2>&1; then
  echo "setup.sh: Go is not on PATH (need Go 1.26+: https://go.dev/dl/)" >&2
  exit 1
fi
