# The two commands of the README: `make run` (the main job) and `make test` (install what is missing, run all tests).
# `make run` installs redis-server when it is missing (unless REDIS_URL names a Redis to use), then the drill starts
# a throw-away one; extra drill flags: make run ARGS='-user 1002@acme.example'.
.PHONY: run sim test bench

run:
	@if [ -z "$$REDIS_URL" ]; then ./scripts/setup.sh; fi
	go run ./cmd/bot drill $(ARGS)

sim:
	go run ./cmd/pbxsim

test:
	./scripts/test.sh

bench:
	./scripts/test.sh bench
