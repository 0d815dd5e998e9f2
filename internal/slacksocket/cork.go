package slacksocket

import (
	"net"
	"sync"
	"time"
)

// corkConn is the TCP connection under the WebSocket. It coalesces the acks the reading
// goroutine writes while it works through frames that arrived together: from the moment a Read
// returns until the next Read (the reader wants more bytes: everything it had is handled),
// writes collect in a buffer, and that Read first sends them in one syscall. A burst of N
// envelopes read in one Read is then answered by one write instead of N (one syscall per ack
// was 17 % of the bot's CPU under BenchmarkBurstHelp). While the reader waits in Read, writes
// (an ack from another goroutine, a close frame) go straight out.
//
// A held ack waits at most maxHold: a Read can bring in a hundred envelopes, and their first ack
// should not wait for the last one's handling (under a 200-command burst the first acks of a
// 64 KiB read waited ≈ 3 ms for the rest of it). At most maxHeld bytes are held.
//
// The reader must therefore not block between two Reads with acks held: a handler that may
// wait calls Client.Flush first. A write error is kept and returned by every later Write and
// by Read: the connection is then dead, and Slack delivers again what it did not see acked.
type corkConn struct {
	net.Conn

	mu     sync.Mutex
	corked bool             // the reader is handling what it read; writes wait in held
	armed  bool             // corking on (after the handshake: its own writes go straight out)
	held   []byte           // frames waiting for the next Read
	since  time.Time        // when the oldest frame in held was written
	now    func() time.Time // the clock; nil is time.Now (a test's clock otherwise)
	err    error            // the first write error: the connection is dead
	read   time.Time        // when the last Read returned bytes (the reader's own: only it reads)

	// Write deadlines once armed (see SetWriteDeadline): asked is the latest asked for, set the
	// socket's own.
	asked, set time.Time
}

// maxHold bounds how long a held ack waits for the reader's next Read: well under a
// millisecond, and still a few dozen acks to one write under a burst.
const maxHold = 250 * time.Microsecond

// maxHeld bounds the bytes held: the write that brings them to it sends everything held, still
// corked (one syscall per 32 KiB of acks is still one for dozens of them). Without it a burst's
// buffer grew past what is worth keeping and was dropped after its flush, so every burst grew a
// new one from nothing: help's acks carry their answer (≈ 1.4 KB each), and regrowing that
// buffer was 58 % of the bot's allocations under BenchmarkBurstHelp, and with them its GC runs
// in the middle of a burst. Now the buffer reaches about maxHeld once and is kept.
const maxHeld = 32 << 10

// writeWait bounds one write on the socket (as slack-go's 10 s, shorter: an ack is late after 3 s).
const writeWait = 5 * time.Second

// arm turns corking on; before it every write goes straight out (the HTTP upgrade), and every
// deadline is set as asked.
func (c *corkConn) arm() {
	c.mu.Lock()
	c.armed = true
	c.mu.Unlock()
}

// Read sends what is held, then reads.
func (c *corkConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	c.corked = false
	err := c.flushLocked()
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.read = c.clock()
	}
	c.mu.Lock()
	c.corked = c.armed && n > 0
	c.mu.Unlock()
	return n, err
}

// lastRead is when the frame whose header the reader has just read came off the socket: the
// reader's buffer is filled by one Read at a time, in order, so the last one brought in (the end
// of) that header, however many frames of the same Read were handled before it. Called by the
// reader, after its NextReader; without a socket of its own (a proxy dialled) it is now.
func (c *corkConn) lastRead() time.Time {
	if c.Conn == nil || c.read.IsZero() {
		return c.clock()
	}
	return c.read
}

// Write holds p while the reader is corked, else writes it (after what is held).
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.corked {
		at := c.clock()
		if len(c.held) == 0 {
			c.since = at
		}
		c.held = append(c.held, p...)
		if at.Sub(c.since) >= maxHold || len(c.held) >= maxHeld {
			if err := c.flushLocked(); err != nil {
				return 0, err
			}
		}
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	if c.armed {
		if err := c.deadlineLocked(c.asked); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// SetWriteDeadline keeps t for the next write that reaches the socket. gorilla sets a deadline
// before every frame it writes, and this client another before each flush: two runtime timer
// changes per ack under a burst, for frames most of which are only held. Once armed, the socket's
// deadline is moved only when the write needs it (deadlineLocked).
func (c *corkConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.armed {
		return c.Conn.SetWriteDeadline(t)
	}
	c.asked = t
	return nil
}

// SetDeadline sets both deadlines on the socket (the HTTP upgrade uses it), as asked.
func (c *corkConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked, c.set = t, t
	return c.Conn.SetDeadline(t)
}

// deadlineLocked gives the socket the write deadline t for a write about to be made. The one it
// has is kept when it is no later than t and still at least writeWait/2 away: a write then
// times out after 2.5 to 5 s instead of exactly 5 (Slack redelivers an envelope not acked
// within 3 s anyway), and under a burst the deadline moves once every 2.5 s, not twice per ack.
// A deadline asked earlier than the one set (a close frame's second), or none, is set as asked.
func (c *corkConn) deadlineLocked(t time.Time) error {
	if t.Equal(c.set) {
		return nil
	}
	if !t.IsZero() && !c.set.IsZero() && !c.set.After(t) && time.Until(c.set) >= writeWait/2 {
		return nil
	}
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		c.err = err
		return err
	}
	c.set = t
	return nil
}

// clock is the hold's clock (deadlines are the socket's, on time.Now).
func (c *corkConn) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// Flush sends what is held now.
func (c *corkConn) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

// Close sends what is held (a close frame, the last acks), then closes.
func (c *corkConn) Close() error {
	c.mu.Lock()
	c.corked = false
	_ = c.flushLocked()
	c.mu.Unlock()
	return c.Conn.Close()
}

func (c *corkConn) flushLocked() error {
	if c.err != nil {
		return c.err
	}
	if len(c.held) == 0 {
		return nil
	}
	if err := c.deadlineLocked(time.Now().Add(writeWait)); err != nil {
		return err
	}
	_, err := c.Conn.Write(c.held)
	if cap(c.held) > 4*maxHeld {
		c.held = nil // held past maxHeld by one large frame: not kept for ever
	} else {
		c.held = c.held[:0]
	}
	if err != nil {
		c.err = err
	}
	return err
}
