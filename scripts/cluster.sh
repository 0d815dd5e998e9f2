#!/usr/bin/env bash
# scripts/cluster.sh: run the tests against a throw-away three-primary Redis Cluster on loopback
# (make test-cluster). The tests keep every key under a prefix of their own and one user's keys
# under one hash tag, so they must pass on a Cluster as on one redis-server; this proves it. With
# TEST_REDIS_URL naming a Cluster, cmd/bot's TestClusterRestart also runs: it SIGKILLs and restarts a
# private cluster of its own mid-incident (killing this shared one would break the other packages' tests).
# Usage: scripts/cluster.sh [extra go test args…]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# A port is free when nothing answers on it; a Cluster node also needs port+10000 (its bus).
free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=()
for _ in $(seq 1 200); do
  [ "${#ports[@]}" -eq 3 ] && break
  p=$(( 20000 + RANDOM % 20000 ))
  if free "$p" && free $(( p + 10000 )) && [[ " ${ports[*]} " != *" $p "* ]]; then ports+=("$p"); fi
done
if [ "${#ports[@]}" -ne 3 ]; then echo "cluster.sh: no free ports" >&2; exit 1; fi

for p in "${ports[@]}"; do
  mkdir -p "$tmp/$p"
  redis-server --bind 127.0.0.1 --port "$p" --dir "$tmp/$p" --save '' --appendonly yes --appendfsync always \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
    --daemonize no --logfile "$tmp/$p/redis.log" &
  pids+=($!)
done
for p in "${ports[@]}"; do
  for _ in $(seq 1 100); do
    if redis-cli -h 127.0.0.1 -p "$p" ping >/dev/null 2>&1; then continue 2; fi
    sleep 0.05
  done
  echo "cluster.sh: redis-server on $p did not start" >&2; cat "$tmp/$p/redis.log" >&2; exit 1
done
redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >"$tmp/create.log" 2>&1 ||
  { cat "$tmp/create.log" >&2; exit 1; }
# Every node must see all slots served before the tests start.
for p in "${ports[@]}"; do
  for _ in $(seq 1 200); do
    if redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; then continue 2; fi
    sleep 0.05
  done
  echo "cluster.sh: the cluster did not converge" >&2; exit 1
done

export TEST_REDIS_URL="redis://127.0.0.1:${ports[0]}?addr=127.0.0.1:${ports[1]}&addr=127.0.0.1:${ports[2]}"
echo "cluster.sh: Redis Cluster of 3 primaries on 127.0.0.1:${ports[0]},${ports[1]},${ports[2]}"
# Without -race: make test runs the same tests with it; what this run adds is the Cluster's rules
# (every multi-key command on one slot, MOVED redirects, no SELECT), and it stays quick enough for CI.
go test -count=1 -timeout 20m "$@" ./...
