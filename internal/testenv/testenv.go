// Package testenv gives tests the real parts they run against, and the few helpers every
// package's tests share:
//
//   - NewRedis: one test's share of the test Redis (TEST_REDIS_URL, set by scripts/test.sh): a
//     client and a fresh key prefix, whose keys are deleted when the test ends. Tests isolate by
//     key prefix, not by logical database, so the suite runs against a redis-server with its
//     default configuration and against a Redis Cluster (which has only database 0).
//   - Launch and StartRedis: a private redis-server on a free loopback port, for tests that kill
//     or reconfigure it, and for `bot drill`'s throw-away Redis (the one launcher of the project).
//   - StartSentinel and StartCluster: a private Sentinel set-up (primary, replicas, three
//     sentinels) and a private three-primary Cluster, built on Launch, for tests that fail them
//     over or restart them whole.
//   - Clock, SyncBuffer and WaitFor: a settable clock, a log sink for many goroutines, a bounded poll.
//
// The package does not import "testing", so that the drill can link the launcher into the
// production binary: helpers take TB, which *testing.T and *testing.B satisfy.
//
// Outside CI a test that needs Redis is skipped when none is available; with CI=true a missing
// Redis is a failure, so a green CI run always means the real thing was tested.
package testenv

import "os"

// TB is the part of testing.TB the helpers use.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
	Skip(args ...any)
	TempDir() string
}

// skipOrFail skips the test, or fails it when CI is set (where every part must be present).
func skipOrFail(tb TB, why string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s: run the tests with scripts/test.sh (make test)", why)
	}
	tb.Skip(why + ": run `make test` to test against a real redis-server")
}
