package slacksocket

import (
	"net"
	"testing"
	"time"
)

// TestCorkHoldsAtMostMaxHold: while the reader handles what one Read brought in, acks are held
// (one write for many) — but none waits longer than maxHold: the write that finds the oldest held
// ack maxHold old sends everything held, still corked, without waiting for the next Read.
func TestCorkHoldsAtMostMaxHold(t *testing.T) {
	bot, slack := net.Pipe()
	defer bot.Close()
	defer slack.Close()
	clock := time.Unix(1_700_000_000, 0)
	c := &corkConn{Conn: bot, now: func() time.Time { return clock }}
	c.arm()

	// Slack sends one frame; the reader's Read returns it and corks the connection.
	go func() { _, _ = slack.Write([]byte("envelope")) }()
	buf := make([]byte, 64)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "envelope" {
		t.Fatalf("read = %q, %v", buf[:n], err)
	}

	got := make(chan string, 4)
	go func() {
		b := make([]byte, 64)
		for {
			n, err := slack.Read(b)
			if err != nil {
				close(got)
				return
			}
			got <- string(b[:n])
		}
	}()

	write := func(s string) {
		t.Helper()
		if n, err := c.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("write %q = %d, %v", s, n, err)
		}
	}
	write("ack1")
	clock = clock.Add(maxHold - time.Microsecond)
	write("ack2")
	if len(got) != 0 {
		t.Fatalf("acks sent before maxHold: %q", <-got)
	}
	if held := string(c.held); held != "ack1ack2" {
		t.Fatalf("held = %q, want both acks", held)
	}
	clock = clock.Add(time.Microsecond) // ack1 is now maxHold old
	write("ack3")
	// net.Pipe's Write returns once the peer has read it all, so the flush is done here.
	if s := recv(t, got); s != "ack1ack2ack3" {
		t.Fatalf("flushed %q, want the three held acks in one write", s)
	}
	if len(c.held) != 0 {
		t.Fatalf("still held after the flush: %q", c.held)
	}

	// The next ack starts a new hold: held again, and sent by the reader's next Read.
	write("ack4")
	if string(c.held) != "ack4" {
		t.Fatalf("held = %q, want ack4", c.held)
	}
	go func() { _, _ = slack.Write([]byte("x")) }()
	_, _ = c.Read(buf)
	if s := recv(t, got); s != "ack4" {
		t.Fatalf("the next Read sent %q, want ack4", s)
	}
}

// recv is what Slack read next; a write that never comes fails the test instead of hanging it.
func recv(t *testing.T, got <-chan string) string {
	t.Helper()
	select {
	case s := <-got:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("nothing was sent to Slack")
		return ""
	}
}

// deadlineConn records the write deadlines set on a connection.
type deadlineConn struct {
	net.Conn
	set []time.Time
}

func (d *deadlineConn) SetWriteDeadline(t time.Time) error {
	d.set = append(d.set, t)
	return d.Conn.SetWriteDeadline(t)
}

// TestCorkWriteDeadline: once armed, the deadline asked before each write reaches the socket
// only when the write needs it: not while the socket's own is no later and at least
// writeWait/2 away, but at once for an earlier one (a close frame's) or none. Before arm (the
// HTTP upgrade) every deadline is set as asked.
func TestCorkWriteDeadline(t *testing.T) {
	bot, slack := net.Pipe()
	defer bot.Close()
	defer slack.Close()
	go func() { // Slack reads everything
		b := make([]byte, 64)
		for {
			if _, err := slack.Read(b); err != nil {
				return
			}
		}
	}()
	d := &deadlineConn{Conn: bot}
	c := &corkConn{Conn: d}
	write := func(deadline time.Time) {
		t.Helper()
		if err := c.SetWriteDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("ack")); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	upgrade := time.Now().Add(time.Minute)
	if err := c.SetWriteDeadline(upgrade); err != nil || len(d.set) != 1 || !d.set[0].Equal(upgrade) {
		t.Fatalf("before arm: deadlines set %v (%v), want the one asked", d.set, err)
	}
	c.arm()
	d.set = nil
	first := time.Now().Add(writeWait)
	write(first)
	for range 100 {
		write(time.Now().Add(writeWait))
	}
	if len(d.set) != 1 || !d.set[0].Equal(first) {
		t.Fatalf("101 writes set %d deadlines (%v), want the first one only", len(d.set), d.set)
	}
	closing := time.Now().Add(time.Second)
	write(closing)
	next := time.Now().Add(writeWait)
	write(next) // the one set is a second away: moved
	write(time.Time{})
	if want := []time.Time{first, closing, next, {}}; len(d.set) != len(want) ||
		!d.set[1].Equal(closing) || !d.set[2].Equal(next) || !d.set[3].IsZero() {
		t.Fatalf("deadlines set %v, want %v", d.set, want)
	}
}
