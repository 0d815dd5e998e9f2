# The two commands of the README: `make run` (the main job) and `make test` (install what is missing, run all tests).
.PHONY: run test fuzz bench

run:
	go run ./cmd/pbxsim

test:
	./scripts/test.sh

bench:
	go test -run '^$$' -bench . -benchmem ./...
