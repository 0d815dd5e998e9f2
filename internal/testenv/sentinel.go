package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrNoSentinel: redis-sentinel is not on PATH (Debian's redis-sentinel package; scripts/setup.sh
// installs it).
var ErrNoSentinel = errors.New("redis-sentinel is not installed (apt-get install redis-sentinel)")

// SentinelMaster is the name the sentinels monitor the primary under (the URL's master_name).
const SentinelMaster = "mymaster"

// Sentinel is a primary, its replicas and three redis-sentinel processes on loopback ports, each
// in its own directory under one parent: what a Sentinel deployment is, small enough for a test.
// The sentinels declare the primary down after 1 s and fail over with a quorum of 2.
type Sentinel struct {
	Primary   *Server   // the primary at launch (after a failover, one of Replicas is the primary)
	Replicas  []*Server // started with --replicaof Primary
	Sentinels []*Server // redis-sentinel processes
	tb        TB
}

// StartSentinel launches a primary with replicas replicas and three sentinels for one test (they
// are killed when it ends). It skips the test (fails it under CI) when redis-server or
// redis-sentinel is missing.
func StartSentinel(tb TB, replicas int) *Sentinel {
	tb.Helper()
	if _, err := exec.LookPath("redis-sentinel"); err != nil {
		skipOrFail(tb, ErrNoSentinel.Error())
	}
	ctx := context.Background()
	dir := tb.TempDir()
	s := &Sentinel{tb: tb}
	launch := func(name string, extra ...string) *Server {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatalf("%v", err)
		}
		srv, err := Launch(ctx, d, extra...)
		if errors.Is(err, ErrNoRedisServer) {
			skipOrFail(tb, "redis-server is not installed")
		}
		if err != nil {
			tb.Fatalf("%v", err)
		}
		tb.Cleanup(srv.Kill)
		return srv
	}
	s.Primary = launch("primary")
	host, port := splitAddr(s.Primary.Addr)
	for i := range replicas {
		s.Replicas = append(s.Replicas, launch(fmt.Sprintf("replica%d", i), "--replicaof", host, port,
			"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"))
	}
	for i := range 3 {
		d := filepath.Join(dir, fmt.Sprintf("sentinel%d", i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatalf("%v", err)
		}
		srv, err := launchSentinel(ctx, d, s.Primary.Addr)
		if err != nil {
			tb.Fatalf("%v", err)
		}
		tb.Cleanup(srv.Kill)
		s.Sentinels = append(s.Sentinels, srv)
	}
	return s
}

// launchSentinel starts redis-sentinel in dir on a free loopback port, monitoring primary. Its
// configuration file is written in dir: Sentinel rewrites it with what it learns.
func launchSentinel(ctx context.Context, dir, primary string) (*Server, error) {
	bin, err := exec.LookPath("redis-sentinel")
	if err != nil {
		return nil, ErrNoSentinel
	}
	host, pport := splitAddr(primary)
	var errs []error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		conf := filepath.Join(dir, "sentinel.conf")
		text := strings.Join([]string{
			"bind 127.0.0.1", "port " + strconv.Itoa(port), "dir " + dir, "daemonize no",
			"logfile " + filepath.Join(dir, "redis.log"),
			"sentinel monitor " + SentinelMaster + " " + host + " " + pport + " 2",
			"sentinel down-after-milliseconds " + SentinelMaster + " 1000",
			"sentinel failover-timeout " + SentinelMaster + " 5000",
			"sentinel parallel-syncs " + SentinelMaster + " 1",
		}, "\n") + "\n"
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			return nil, err
		}
		s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir, args: []string{bin, conf}}
		if err = s.Start(ctx); err == nil {
			return s, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// URL is the bot's REDIS_URL for this set-up: every sentinel, and the master name.
func (s *Sentinel) URL() string {
	u := "redis://" + s.Sentinels[0].Addr + "?master_name=" + SentinelMaster
	for _, x := range s.Sentinels[1:] {
		u += "&addr=" + x.Addr
	}
	return u
}

// Redis returns a client through the sentinels (it follows a failover) with a fresh key prefix,
// like NewRedis; the keys go with the test's servers.
func (s *Sentinel) Redis() *Redis {
	s.tb.Helper()
	return newRedis(s.tb, s.URL(), false)
}

func splitAddr(addr string) (host, port string) {
	i := strings.LastIndex(addr, ":")
	return addr[:i], addr[i+1:]
}
