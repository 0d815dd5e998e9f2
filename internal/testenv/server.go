package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrNoRedisServer: redis-server is not on PATH.
var ErrNoRedisServer = errors.New("redis-server is not installed")

// Server is a redis-server child process on a loopback port.
type Server struct {
	Addr string // 127.0.0.1:port
	Dir  string // its working directory (AOF, RDB, nodes.conf, redis.log)
	args []string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// URL is redis://Addr/0.
func (s *Server) URL() string { return "redis://" + s.Addr + "/0" }

// Launch starts redis-server in dir on a free loopback port with AOF and appendfsync always (an
// acknowledged write survives a SIGKILL), plus any extra arguments (e.g. "--cluster-enabled",
// "yes"), and waits until it answers PING. It tries a few ports: another process may take the
// free port between the probe and redis-server's bind. The caller kills it.
func Launch(ctx context.Context, dir string, extra ...string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoRedisServer
	}
	var errs []error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir}
		s.args = append([]string{bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
			"--save", "", "--appendonly", "yes", "--appendfsync", "always", "--daemonize", "no",
			"--logfile", filepath.Join(dir, "redis.log")}, extra...)
		err = s.Start(ctx)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// Start (re)starts the server with the same port, directory and arguments, and waits (at most
// 10 s) until it answers PING.
func (s *Server) Start(ctx context.Context) error {
	cmd := exec.Command(s.args[0], s.args[1:]...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	exited := s.done
	go func() { _ = cmd.Wait(); close(exited) }()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := ping(pctx, s.Addr)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("redis-server on %s exited: %s", s.Addr, s.logTail())
		case <-ctx.Done():
			s.Kill()
			return fmt.Errorf("redis-server on %s did not answer: %w\n%s", s.Addr, err, s.logTail())
		case <-time.After(20 * time.Millisecond): // waiting for a child process to listen, not a request path
		}
	}
}

// ping sends one RESP PING on a fresh connection and wants +PONG back (a server still loading its
// AOF answers -LOADING). It is written by hand, a few lines, so that testenv needs no Redis client:
// internal/session owns go-redis, and this launcher (also used by the drill) must not depend on it.
func ping(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimSpace(line); line != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Kill stops the server with SIGKILL (a SHUTDOWN would save first and prove nothing).
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// TestServer is a Server started by StartRedis for one test.
type TestServer struct {
	*Server
	tb TB
}

// StartRedis starts a private redis-server (see Launch) in a temporary directory for one test; it
// is killed when the test ends. It skips the test (fails it under CI) when redis-server is missing.
func StartRedis(tb TB, extra ...string) *TestServer {
	tb.Helper()
	s, err := Launch(context.Background(), tb.TempDir(), extra...)
	if errors.Is(err, ErrNoRedisServer) {
		skipOrFail(tb, "redis-server is not installed")
	}
	if err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(s.Kill)
	return &TestServer{Server: s, tb: tb}
}

// Start restarts the server (after Kill) and fails the test if it does not answer.
func (s *TestServer) Start() {
	s.tb.Helper()
	if err := s.Server.Start(context.Background()); err != nil {
		s.tb.Fatalf("%v", err)
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb TB) int {
	tb.Helper()
	p, err := freePort()
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return p
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
