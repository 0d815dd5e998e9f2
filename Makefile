# The two commands of the README: `make run` (the main job) and `make test` (install what is missing, run all tests).
# `make run` installs redis-server when it is missing (unless REDIS_URL names a Redis to use), then the drill starts
# a throw-away one; extra drill flags: make run ARGS='-user 1002@acme.example'.
.PHONY: run sim test test-cluster bench chaos

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

# Every benchmark, then the table of issue 9's and 13's targets from the same run (scripts/benchtable); extra go test
# flags: make bench ARGS='-skip /rate-limited' (leaves out the burst under Slack's rate limits, ~3 min).
bench:
	./scripts/test.sh bench $(ARGS)

# Issue 11 item 1 (RELIABILITY.md): N incidents (default 100) and N/40 domain and users lockdowns
# (issue 13 item 1) while the two bot replicas (also mid-lockdown) and redis-server are SIGKILLed
# and restarted and the Socket Mode link drops; prints the figures and
# fails on any violated invariant. SEED=… repeats a run's random choices. Starts its own Redis.
chaos:
	./scripts/setup.sh
	CHAOS_N=$(or $(N),100) CHAOS_SEED=$(SEED) go test -count=1 -run '^TestChaos$$' -v -timeout 60m ./cmd/bot
