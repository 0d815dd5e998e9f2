# The two commands of the README: `make run` (the main job) and `make test` (install what is missing, run all tests).
# `make run` installs redis-server when it is missing (unless REDIS_URL names a Redis to use), then the drill starts
# a throw-away one; extra drill flags: make run ARGS='-user 1002@acme.example'.
.PHONY: run sim test test-cluster bench

run:
	@if [ -z "$$REDIS_URL" ]; then ./scripts/setup.sh; fi
	go run ./cmd/bot drill $(ARGS)

sim:
	go run ./cmd/pbxsim

test:
	./scripts/test.sh

# The same tests against a throw-away three-primary Redis Cluster on loopback.
test-cluster:
	./scripts/cluster.sh

bench:
	./scripts/test.sh bench
