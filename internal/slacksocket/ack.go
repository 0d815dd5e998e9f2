package slacksocket

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// An envelope's ack: on the connection it came on, or, once that one said goodbye, on another
// live one (waitLive).

// Ack acknowledges the envelope with payload (nil: a bare ack; a json.RawMessage is sent as
// is). The ack goes on the connection the envelope came on, or, when that one has closed, on
// the live one (waiting for it until ctx ends). Errors: ErrAckTooBig (nothing sent), a payload
// that does not marshal, ctx's error (wrapped) when no connection took it in time.
func (e *Envelope) Ack(ctx context.Context, payload any) error { return e.AckWithin(ctx, payload, 0) }

// AckWithin is Ack waiting at most wait (0: until ctx ends) for a live connection when the
// envelope's own has closed. The bound costs nothing while the envelope's connection is open:
// its timer is only made when there is a wait (a context.WithTimeout around every ack was
// ≈ 7 % of the bot's CPU per command under a burst of `/compromised help`).
func (e *Envelope) AckWithin(ctx context.Context, payload any, wait time.Duration) error {
	err := e.ack(ctx, payload, wait)
	if c := e.client; c != nil && c.opts.Metrics.AckLatency != nil {
		c.opts.Metrics.AckLatency.Observe(c.clock().Sub(e.Received).Seconds())
	}
	return err
}

// ack is AckWithin but for the latency it reports.
func (e *Envelope) ack(ctx context.Context, payload any, wait time.Duration) error {
	body, err := ackBody(payload)
	if err != nil {
		return err
	}
	buf := ackBufs.Get().(*[]byte)
	defer ackBufs.Put(buf)
	data, err := appendAck((*buf)[:0], e.ID, body)
	*buf = data[:0]
	if err != nil {
		return err
	}
	cn, bounded := e.conn, false
	for {
		if cn != nil && cn.isOpen() {
			if err := cn.write(data); err == nil {
				return nil
			} else if cn.isOpen() {
				cn.close() // a write error: the connection is dead, its reader ends
			}
		}
		if wait > 0 && !bounded {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, wait)
			defer cancel()
			bounded = true
		}
		if cn, err = e.client.waitLive(ctx, cn); err != nil {
			return fmt.Errorf("ack %s: %w", e.ID, err)
		}
	}
}

// ackBufs holds the buffers acks are built in: a frame is copied into gorilla's write buffer
// before the write returns, so its buffer is free again once the ack is written, and a burst of
// acks costs no allocation of a frame each.
var ackBufs = sync.Pool{New: func() any { return new([]byte) }}

// Flush sends the acks the envelope's connection holds back for one write (see Handler).
func (e *Envelope) Flush() {
	if e.conn != nil {
		_ = e.conn.flush() // an error shows on the reader's next Read
	}
}

// waitLive returns a live connection other than failed (the oldest), waiting for one until ctx
// ends.
func (c *Client) waitLive(ctx context.Context, failed *conn) (*conn, error) {
	for {
		c.mu.Lock()
		var live *conn
		for _, l := range c.live {
			if l != failed && l.isOpen() {
				live = l
				break
			}
		}
		ch := c.changed
		c.mu.Unlock()
		if live != nil {
			return live, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("no live socket mode connection: %w", ctx.Err())
		}
	}
}
