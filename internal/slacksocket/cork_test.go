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

// TestCorkHoldsAtMostMaxHeld: the write that brings the held acks to maxHeld bytes sends them all
// in one write, still corked, however young they are; and the buffer is kept, so the next burst's
// acks are held without allocating (it was dropped after each flush and grown again from nothing).
func TestCorkHoldsAtMostMaxHeld(t *testing.T) {
	bot, slack := net.Pipe()
	defer bot.Close()
	defer slack.Close()
	clock := time.Unix(1_700_000_000, 0) // never moves: only the size can flush
	c := &corkConn{Conn: bot, now: func() time.Time { return clock }}
	c.arm()
	go func() { _, _ = slack.Write([]byte("envelope")) }()
	buf := make([]byte, 64)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 8)
	go func() {
		b := make([]byte, 4*maxHeld)
		for {
			n, err := slack.Read(b)
			if err != nil {
				close(got)
				return
			}
			got <- n
		}
	}()

	ack := make([]byte, 1000)
	timeout := time.NewTimer(10 * time.Second) // one for the whole test: a timer per wait allocates
	defer timeout.Stop()
	const below = maxHeld / 1000 // acks that stay under maxHeld
	burst := func() {
		for range below {
			if _, err := c.Write(ack); err != nil {
				t.Fatal(err)
			}
		}
		if len(got) != 0 || len(c.held) != below*len(ack) {
			t.Fatalf("%d bytes held, %d writes sent: want all %d held", len(c.held), len(got), below*len(ack))
		}
		if _, err := c.Write(ack); err != nil { // reaches maxHeld
			t.Fatal(err)
		}
		select {
		case n := <-got:
			if n != (below+1)*len(ack) {
				t.Fatalf("sent %d bytes in one write, want all %d held", n, (below+1)*len(ack))
			}
		case <-timeout.C:
			t.Fatal("the write that reached maxHeld sent nothing")
		}
		if len(c.held) != 0 {
			t.Fatalf("%d bytes still held after the flush", len(c.held))
		}
	}
	burst()
	if allocs := testing.AllocsPerRun(3, burst); allocs != 0 {
		t.Fatalf("a burst after the first allocated %.0f times: the buffer was not kept", allocs)
	}
}
