package slacksocket

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// conn is one Socket Mode WebSocket.
type conn struct {
	id   int // for the logs: 1, 2, … in the order dialled
	ws   *websocket.Conn
	tcp  *corkConn
	wmu  sync.Mutex    // gorilla allows one writer of data frames at a time
	done chan struct{} // closed by the goodbye: no more writes
	bye  sync.Once     // goodbye
	once sync.Once     // close
	quit sync.Once     // quiesce
	caps quiesceCaps

	// For a shutdown's reading (quiesce): whether the reader is on a frame, and, once the
	// shutdown began, when it last finished one (Unix ns; the shutdown's start before).
	busy      atomic.Bool
	quiescing atomic.Bool
	last      atomic.Int64
}

const (
	// readBufferSize is gorilla's read buffer: one Read takes in up to this much of a burst,
	// which is then handled, and acked in one write, before the next Read.
	readBufferSize = 64 << 10
	// writeBufferSize holds a whole ack in one frame (Slack does not reassemble fragments).
	writeBufferSize = 32 << 10
	// readLimit bounds one incoming frame (an interactive payload carries the whole message;
	// Slack keeps them far below this).
	readLimit = 16 << 20
	// handshakeTimeout bounds the WebSocket upgrade (slack-go's 45 s is longer than Slack's
	// ack deadline; a link that slow is better retried).
	handshakeTimeout = 15 * time.Second
)

// dial opens a WebSocket to url (from apps.connections.open); tlsConfig nil = the system's roots,
// now nil = time.Now (the cork's clock: its hold, and when a frame came off the socket).
func dial(ctx context.Context, url string, id int, tlsConfig *tls.Config, now func() time.Time, caps quiesceCaps) (*conn, error) {
	var tcp *corkConn
	d := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		TLSClientConfig:  tlsConfig,
		HandshakeTimeout: handshakeTimeout,
		ReadBufferSize:   readBufferSize,
		WriteBufferSize:  writeBufferSize,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			c, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tcp = &corkConn{Conn: c, now: now}
			return tcp, nil
		},
	}
	h := http.Header{}
	h.Set("Origin", "https://api.slack.com")
	ws, resp, err := d.DialContext(ctx, url, h)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial socket mode URL: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, fmt.Errorf("dial socket mode URL: %w", err)
	}
	if tcp == nil { // a proxy dialled: no corking, every ack is its own write
		tcp = &corkConn{now: now}
	} else {
		tcp.arm()
	}
	ws.SetReadLimit(readLimit)
	return &conn{id: id, ws: ws, tcp: tcp, done: make(chan struct{}), caps: caps}, nil
}

// write sends one text frame (or holds it, corked, for the reader's next Read). data is copied
// before write returns.
func (c *conn) write(data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.done:
		return errConnClosed
	default:
	}
	if err := c.ws.SetWriteDeadline(time.Now().Add(writeWait)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// flush sends what the reader holds back (see corkConn).
func (c *conn) flush() error {
	if c.tcp.Conn == nil {
		return nil
	}
	return c.tcp.Flush()
}

var errConnClosed = errors.New("socket mode connection closed")

// goodbye sends a normal close frame (after the acks held back): no data frame may follow it,
// so from now the connection takes no writes (its acks go to another live connection). The
// reader goes on: what Slack sent before it had the close frame still arrives, then Slack's own
// close frame ends the reading.
func (c *conn) goodbye() {
	c.bye.Do(func() {
		c.wmu.Lock()
		close(c.done)
		c.wmu.Unlock()
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	})
}

// close says goodbye and closes.
func (c *conn) close() {
	c.once.Do(func() {
		c.goodbye()
		_ = c.ws.Close()
	})
}

// A shutdown reads on until no envelope has come for shutdownQuiet (at most shutdownRead), and
// only then says goodbye, and then reads on until Slack's own close frame (at most goodbyeRead).
// Slack delivers on a connection until it has the close frame, and never delivers a slash
// command or a click again: closing at once lost, unacked and never run, every envelope on its
// way or waiting unread in this end's buffers (its sender saw an error). What is read before the
// goodbye is acked and handed on as any envelope; what Slack sent in the instant the goodbye
// was on its way is still handed on (the app runs it), its ack going on another live
// connection, or failing. Slack's pings do not count as envelopes.
const (
	shutdownQuiet = 100 * time.Millisecond
	shutdownRead  = 2 * time.Second
	goodbyeRead   = time.Second
)

// quiesceCaps are a shutdown's waits, shutdownQuiet, shutdownRead and goodbyeRead but in tests
// (which shorten them: a test of the caps then takes a fraction of a second, not 3).
type quiesceCaps struct{ quiet, read, goodbye time.Duration }

var defaultCaps = quiesceCaps{quiet: shutdownQuiet, read: shutdownRead, goodbye: goodbyeRead}

// quiesce begins leaving the connection without losing what is on its way (see shutdownQuiet),
// at a shutdown or when Slack asks this connection to go (disconnect); once is enough, later
// calls do nothing. It says goodbye once the reader has been waiting for a frame for
// shutdownQuiet, or after shutdownRead, and closes goodbyeRead later when Slack has not closed
// by then (c.caps: these in production).
func (c *conn) quiesce() { c.quit.Do(c.leave) }

func (c *conn) leave() {
	c.last.Store(time.Now().UnixNano())
	c.quiescing.Store(true)
	until := time.Now().Add(c.caps.read)
	var check func()
	check = func() {
		busy := c.busy.Load() // before last: a frame just finished shows its time
		wait := c.caps.quiet - time.Since(time.Unix(0, c.last.Load()))
		if busy {
			wait = c.caps.quiet
		}
		if left := time.Until(until); wait > 0 && left > 0 {
			time.AfterFunc(min(wait, left), check)
			return
		}
		c.goodbye()
		time.AfterFunc(c.caps.goodbye, c.close)
	}
	check()
}

// reading records whether the reader is on a frame and, during a shutdown, when it finished
// one: two atomic stores per frame otherwise.
func (c *conn) reading(busy bool) {
	if !busy && c.quiescing.Load() {
		c.last.Store(time.Now().UnixNano())
	}
	c.busy.Store(busy)
}

// isOpen: the connection may still take writes.
func (c *conn) isOpen() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// frames reads frames until the connection fails or fn says stop, handing each text frame's
// bytes to fn (valid until fn returns: the buffer is reused) with when it came off the socket.
func (c *conn) frames(fn func(data []byte, read time.Time) (stop bool)) error {
	var buf bytes.Buffer
	for {
		typ, r, err := c.ws.NextReader()
		if err != nil {
			return err
		}
		c.reading(true) // a frame Slack sent: a shutdown waits for it
		read := c.tcp.lastRead()
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return fmt.Errorf("read frame: %w", err)
		}
		if typ != websocket.TextMessage {
			c.reading(false)
			continue // Slack sends JSON text frames only
		}
		stop := fn(buf.Bytes(), read)
		c.reading(false)
		if stop {
			return nil
		}
		if buf.Cap() > 1<<20 {
			buf = bytes.Buffer{} // one huge frame's buffer is not kept
		}
	}
}
