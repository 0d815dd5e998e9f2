#!/usr/bin/env bash
# scripts/test.sh: install what the tests need (scripts/setup.sh), start a throw-away redis-server on a free
# loopback port, run gofmt/vet/race tests against it, and stop it whatever happens.
# Usage: scripts/test.sh [extra go test args…]   (make test runs it)
#        scripts/test.sh bench [extra go test args…]   (make bench: benchmarks against the same Redis, then the
#          table of issue 9's and 13's targets met or missed in that run; e.g. -skip /rate-limited leaves out the slow one)
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

tmp=$(mktemp -d)
redis_pid=""
cleanup() {
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# A free loopback port: nothing answers on it, and redis-server then binds it (retry on a race).
for _ in $(seq 1 50); do
  port=$(( 20000 + RANDOM % 30000 ))
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
  redis-server --bind 127.0.0.1 --port "$port" --dir "$tmp" --save '' --appendonly yes \
    --appendfsync always --daemonize no --logfile "$tmp/redis.log" &
  redis_pid=$!
  for _ in $(seq 1 100); do
    if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then break 2; fi
    if ! kill -0 "$redis_pid" 2>/dev/null; then break; fi
    sleep 0.05
  done
  kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; redis_pid=""
done
if [ -z "$redis_pid" ]; then echo "test.sh: could not start redis-server" >&2; cat "$tmp/redis.log" >&2 || true; exit 1; fi
export TEST_REDIS_URL="redis://127.0.0.1:$port/0"
echo "test.sh: redis-server $(redis-server --version | awk '{print $3}' | sed 's/^v=//') on 127.0.0.1:$port"

if [ "${1:-}" = "bench" ]; then
  shift
  # The run's output as it comes, then the table of issue 9's and 13's targets from that same run
  # (scripts/benchtable). A failed run stops here (pipefail), with no table. -p 1: one package's
  # test binary at a time, built and run; by default go test builds and runs as many as there are
  # cores at once, so the other packages' builds and benchmarks shared the two cores with cmd/bot's
  # bursts, and every ratio of a burst measured them too.
  go test -p 1 -run '^$' -bench . -benchmem "$@" ./... | tee "$tmp/bench.txt"
  echo
  go run ./scripts/benchtable < "$tmp/bench.txt"
  exit
fi

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "test.sh: gofmt would change:"; echo "$unformatted"; exit 1; fi
go vet ./...
go test -race -count=1 -timeout 20m "$@" ./...
