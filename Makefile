# The two commands of the README: `make run` (the main job) and `make test` (install what is missing, run all tests).
.PHONY: run sim test bench

run:
	go run ./cmd/bot drill

sim:
	go run ./cmd/pbxsim

test:
	./scripts/test.sh

bench:
	./scripts/test.sh bench
