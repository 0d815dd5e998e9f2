package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Cluster is a private three-primary Redis Cluster on loopback (no replicas), each node in its
// own directory with its AOF (appendfsync always) and nodes.conf, so that the whole cluster can be
// SIGKILLed and started again from its files (Kill, Start).
type Cluster struct {
	Nodes []*Server
	tb    TB
}

// StartCluster launches three cluster-enabled redis-servers, joins them with
// `redis-cli --cluster create` and waits until every node reports cluster_state:ok; they are
// killed when the test ends. It skips the test (fails it under CI) when redis-server or
// redis-cli is missing.
func StartCluster(tb TB) *Cluster {
	tb.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		skipOrFail(tb, "redis-cli is not installed: cannot create a Redis Cluster")
	}
	c := &Cluster{tb: tb}
	dir := tb.TempDir()
	for i := range 3 {
		d := filepath.Join(dir, fmt.Sprintf("node%d", i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatalf("%v", err)
		}
		// Launch probes port+0 only; the cluster bus (port+10000) is rarely taken on loopback, and
		// a node that cannot bind it exits at once, which Launch reports.
		srv, err := Launch(context.Background(), d, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "5000")
		if errors.Is(err, ErrNoRedisServer) {
			skipOrFail(tb, "redis-server is not installed")
		}
		if err != nil {
			tb.Fatalf("%v", err)
		}
		tb.Cleanup(srv.Kill)
		c.Nodes = append(c.Nodes, srv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitOK(ctx, cli)
	return c
}

func (c *Cluster) addrs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr)
	}
	return out
}

// waitOK waits until every node answers CLUSTER INFO with cluster_state:ok (all slots served).
func (c *Cluster) waitOK(ctx context.Context, cli string) {
	c.tb.Helper()
	for _, n := range c.Nodes {
		host, port := splitAddr(n.Addr)
		for {
			out, err := exec.CommandContext(ctx, cli, "-h", host, "-p", port, "cluster", "info").Output()
			if err == nil && strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if ctx.Err() != nil {
				c.tb.Fatalf("cluster node %s not ok: %v %s", n.Addr, err, out)
			}
			time.Sleep(50 * time.Millisecond) // test setup: waiting for the cluster to converge
		}
	}
}

// URL is a REDIS_URL naming every node (a Cluster URL).
func (c *Cluster) URL() string {
	a := c.addrs()
	return "redis://" + a[0] + "?addr=" + strings.Join(a[1:], "&addr=")
}

// Redis returns a cluster client with a fresh key prefix, like NewRedis; the keys go with the
// test's servers.
func (c *Cluster) Redis() *Redis {
	c.tb.Helper()
	return newRedis(c.tb, c.URL(), false)
}

// Kill SIGKILLs every node.
func (c *Cluster) Kill() {
	for _, n := range c.Nodes {
		n.Kill()
	}
}

// Start starts every node again from its directory (AOF and nodes.conf) and waits, at most 30 s,
// until the cluster is ok again.
func (c *Cluster) Start() {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range c.Nodes {
		if err := n.Start(ctx); err != nil {
			c.tb.Fatalf("%v", err)
		}
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		c.tb.Fatalf("redis-cli: %v", err)
	}
	c.waitOK(ctx, cli)
}
