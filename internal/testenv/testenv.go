// Package testenv gives tests the real parts they run against: the redis-server that
// scripts/test.sh started (one isolated logical database per test), or a private
// redis-server of their own for tests that kill or reconfigure it.
//
// Outside CI a test that needs Redis is skipped when none is available; with CI=true
// a missing Redis is a failure, so a green CI run always means the real thing was tested.
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisURL is the URL of the shared test Redis (TEST_REDIS_URL), or skips/fails the test.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("TEST_REDIS_URL")
	if u == "" {
		if os.Getenv("CI") != "" {
			tb.Fatal("TEST_REDIS_URL is not set: run the tests with scripts/test.sh (make test)")
		}
		tb.Skip("TEST_REDIS_URL is not set: run `make test` to test against a real redis-server")
	}
	return u
}

// Redis returns a client on a logical database of the shared test Redis that no other
// test (in this or another package's test binary) uses at the same time, flushed first.
// The database number is handed out by INCR on database 0, so parallel test binaries
// never collide. DB is the number, for code that builds its own client from a URL.
func Redis(tb testing.TB) (client *redis.Client, url string) {
	tb.Helper()
	base := RedisURL(tb)
	opt, err := redis.ParseURL(base)
	if err != nil {
		tb.Fatalf("parse TEST_REDIS_URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin := redis.NewClient(opt)
	n, err := admin.Incr(ctx, "testenv:next-db").Result()
	_ = admin.Close()
	if err != nil {
		tb.Fatalf("allocate a test database: %v", err)
	}
	db := 1 + int(n%255)
	opt.DB = db
	c := redis.NewClient(opt)
	if err := c.FlushDB(ctx).Err(); err != nil {
		tb.Fatalf("flush test database %d: %v", db, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c, fmt.Sprintf("redis://%s/%d", opt.Addr, db)
}

// Server is a private redis-server started by StartRedis.
type Server struct {
	Addr string // 127.0.0.1:port
	Dir  string // its working directory (AOF, RDB, nodes.conf)
	args []string
	cmd  *exec.Cmd
	tb   testing.TB
}

// URL is redis://Addr/0.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// StartRedis starts a private redis-server on a free loopback port with AOF and
// appendfsync always, plus any extra arguments (e.g. "--cluster-enabled", "yes").
// It is killed when the test ends.
func StartRedis(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatal("redis-server is not installed: run the tests with scripts/test.sh (make test)")
		}
		tb.Skip("redis-server is not installed")
	}
	port := FreePort(tb)
	dir := tb.TempDir()
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir, tb: tb}
	s.args = append([]string{bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log")}, extra...)
	s.Start()
	tb.Cleanup(func() { s.Kill() })
	return s
}

// Start (re)starts the server with the same port, directory and arguments, and waits until it answers PING.
func (s *Server) Start() {
	s.tb.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	if err := s.cmd.Start(); err != nil {
		s.tb.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
			s.tb.Fatalf("redis-server on %s did not answer: %v\n%s", s.Addr, err, log)
		}
		time.Sleep(20 * time.Millisecond) // test setup only: waiting for a child process to listen
	}
}

// Kill stops the server with SIGKILL (a SHUTDOWN would save first and prove nothing).
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_, _ = s.cmd.Process.Wait()
	s.cmd = nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
