#!/usr/bin/env bash
# scripts/setup.sh: install what the README's commands need on a Debian/Ubuntu machine, once:
# redis-server and redis-sentinel (apt-get, as root or with sudo) and a check for Go. `make run` and
# `make test` (scripts/test.sh) both call it, so a fresh machine needs nothing done by hand. The
# Sentinel failover test (cmd/bot TestSentinelFailover) needs redis-sentinel, and CI must run it.
set -euo pipefail

need_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then missing+=(redis-server); fi
if ! command -v redis-sentinel >/dev/null 2>&1; then missing+=(redis-sentinel); fi
if [ "${#missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup.sh: ${missing[*]} missing and there is no apt-get: install Redis 7+ (with redis-sentinel) by hand, or set REDIS_URL" >&2
    exit 1
  fi
  echo "setup.sh: installing ${missing[*]} (apt-get)…" >&2
  need_root apt-get update -qq
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  # Debian's packages may also start a system-wide redis-server on :6379 and a sentinel on :26379; the
  # drill and the tests do not use them (each starts its own throw-away ones on free loopback ports).
fi
if ! command -v go >/dev/null 2>&1; then
  echo "setup.sh: Go is not on PATH (need Go 1.26+: https://go.dev/dl/)" >&2
  exit 1
fi
