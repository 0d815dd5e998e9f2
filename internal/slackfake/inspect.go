package slackfake

// This file holds what a test reads from the fake (the recorded messages, calls, acks and
// sockets) and the faults it sets (rate limits, failing methods, HTTP errors, latency,
// redelivered envelopes, expired response_urls, silent pings). Every reader of messages, calls
// and acks first records the acks read off the sockets so far (recordAcks, socket.go).

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Messages returns every recorded message event in order: chat.postMessage,
// chat.update (the full new version), chat.postEphemeral, chat.delete, response_url
// posts and slash command acks that carried a message.
func (s *Server) Messages() []Message {
	s.recordAcks()
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneMessages(s.events)
}

// MessagesSince returns the message events recorded after the first n (Messages()[n:]),
// copying only those: a watcher that keeps its own cursor sees each event once, in order,
// at a cost that does not grow with the history (benchmarks follow hundreds of cards so).
func (s *Server) MessagesSince(n int) []Message {
	s.recordAcks()
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 0 {
		n = 0
	}
	if n >= len(s.events) {
		return nil
	}
	return cloneMessages(s.events[n:])
}

// Channel returns the current version of every message in a channel, thread replies
// included, in the order they were posted; deleted and ephemeral messages are left out.
func (s *Server) Channel(id string) []Message {
	return s.filter(func(m *stored) bool { return !m.ephemeral && m.Channel == id })
}

// Thread returns the current version of every reply in the thread rooted at ts, oldest
// first; the root itself is not included.
func (s *Server) Thread(channel, ts string) []Message {
	return s.filter(func(m *stored) bool { return !m.ephemeral && m.Channel == channel && m.ThreadTS == ts })
}

// Ephemerals returns the current version of every ephemeral message shown to userID.
func (s *Server) Ephemerals(userID string) []Message {
	return s.filter(func(m *stored) bool { return m.ephemeral && m.User == userID })
}

// Message returns the current version of one message (channel or ephemeral), and false
// when there is none or it was deleted.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.recordAcks()
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.byKey[key(channel, ts)]
	if !ok || m.deleted {
		return Message{}, false
	}
	return cloneMessage(m.Message), true
}

func (s *Server) filter(keep func(*stored) bool) []Message {
	s.recordAcks()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.msgs {
		if !m.deleted && keep(m) {
			out = append(out, cloneMessage(m.Message))
		}
	}
	return out
}

// Calls returns the raw Web API calls of one method ("" for all) in order.
func (s *Server) Calls(method string) []APICall {
	s.recordAcks()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []APICall
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			c.Form = cloneValues(c.Form)
			c.JSON = append(json.RawMessage(nil), c.JSON...)
			out = append(out, c)
		}
	}
	return out
}

// MessageCount is len(Messages()) without the copy.
func (s *Server) MessageCount() int {
	s.recordAcks()
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events)
}

// Acks returns every ack received, in order.
func (s *Server) Acks() []Ack { return s.AcksSince(0) }

// AcksSince returns the acks received after the first n (Acks()[n:]), copying only those: a
// benchmark that reads each burst's acks so pays for that burst, not for every ack before it
// (Acks() after the 100th burst of 200 copied 20 000 acks and their payloads).
func (s *Server) AcksSince(n int) []Ack {
	s.recordAcks()
	s.mu.Lock()
	defer s.mu.Unlock()
	n = max(n, 0)
	if n >= len(s.acks) {
		return nil
	}
	out := make([]Ack, len(s.acks)-n)
	for i, a := range s.acks[n:] {
		a.Payload = append(json.RawMessage(nil), a.Payload...)
		out[i] = a
	}
	return out
}

// AckCount is len(Acks()) without the copy.
func (s *Server) AckCount() int {
	s.recordAcks()
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acks)
}

// WaitMessages waits until at least n message events are recorded (MessageCount() >= n), and
// WaitAcks until at least n acks are. Unlike a WaitFor, which runs its condition after every
// event, such a waiter is woken once, when its count is reached: under a burst of 200 commands a
// WaitFor on the same count woke the test's goroutine 600 times (every envelope sent, ack and
// message), each time on the cores the bot and the fake's socket reader need. They return
// ctx's error (wrapped) when it ends first, or ErrClosed.
func (s *Server) WaitMessages(ctx context.Context, n int) error {
	return s.waitCount(ctx, countMessages, n)
}

// WaitAcks: see WaitMessages.
func (s *Server) WaitAcks(ctx context.Context, n int) error { return s.waitCount(ctx, countAcks, n) }

// countOf is what a countWaiter counts.
type countOf int

const (
	countMessages countOf = iota // s.events
	countAcks                    // s.acks
)

func (c countOf) String() string {
	if c == countAcks {
		return "acks"
	}
	return "messages"
}

// countWaiter is a WaitMessages or WaitAcks: ch is closed once the count reaches n, or the
// server closes.
type countWaiter struct {
	of countOf
	n  int
	ch chan struct{}
}

func (s *Server) sizeLocked(of countOf) int {
	if of == countAcks {
		return len(s.acks)
	}
	return len(s.events)
}

func (s *Server) waitCount(ctx context.Context, of countOf, n int) error {
	s.mu.Lock()
	if s.sizeLocked(of) >= n {
		s.mu.Unlock()
		return nil
	}
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	w := &countWaiter{of: of, n: n, ch: make(chan struct{})}
	s.counts = append(s.counts, w)
	s.mu.Unlock()
	select {
	case <-w.ch:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.sizeLocked(of) < n { // woken by Close
			return ErrClosed
		}
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		s.counts = slices.DeleteFunc(s.counts, func(x *countWaiter) bool { return x == w })
		s.mu.Unlock()
		return fmt.Errorf("slackfake: wait for %d %s: %w", n, of, ctx.Err())
	}
}

// wakeCountsLocked releases the count waiters whose count is reached, and all of them once the
// server is closed; s.mu must be held.
func (s *Server) wakeCountsLocked() {
	if len(s.counts) == 0 {
		return
	}
	s.counts = slices.DeleteFunc(s.counts, func(w *countWaiter) bool {
		if s.closed || s.sizeLocked(w.of) >= w.n {
			close(w.ch)
			return true
		}
		return false
	})
}

// Opens is the number of successful apps.connections.open calls.
func (s *Server) Opens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens
}

// Connects is the number of WebSocket connections that were accepted and got hello.
// After a fault, waiting for Connects to grow (and LiveSockets to be 1) is how a test
// knows the client is on a fresh socket: Opens grows before the new socket exists, and
// the old socket may still look open for a moment.
func (s *Server) Connects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connects
}

// LiveSockets is the number of open sockets that received hello and were not told to
// disconnect: the ones an envelope can be delivered on.
func (s *Server) LiveSockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.socketsLocked(true))
}

// RateLimit makes the next n calls of method ("apps.connections.open" included) answer
// HTTP 429 with Retry-After: retryAfter seconds.
func (s *Server) RateLimit(method string, n, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits[method] = &fault{n: n, retryAfter: retryAfter}
}

// FailMethod makes the next n calls of method answer {"ok":false,"error":slackError}.
func (s *Server) FailMethod(method, slackError string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[method] = &fault{n: n, code: slackError}
}

// FailHTTP makes the next n calls of method answer HTTP status (e.g. 500) with
// {"ok":false,"error":"internal_error"}, doing nothing: Slack's own outage, which slack-go
// reports as a server error rather than a Slack error code.
func (s *Server) FailHTTP(method string, status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.httpFails[method] = &fault{n: n, status: status}
}

// SetLatency delays every call of method ("*" = every method without its own setting) by d
// before it is answered (0 removes the setting): a slow Web API. The wait ends early if the
// client gives up.
func (s *Server) SetLatency(method string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.latency, method)
		return
	}
	s.latency[method] = d
}

// Redeliver sends envelope envelopeID again, as Slack does when it did not see the ack in
// time (the ack was lost, or came late): the same envelope_id and payload with retry_attempt
// one higher than its last delivery and retry_reason reason (e.g. "timeout"). It returns
// an error for an envelope never sent, or SendEnvelope's errors.
func (s *Server) Redeliver(ctx context.Context, envelopeID, reason string) error {
	s.mu.Lock()
	data, ok := s.sent[envelopeID]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("slackfake: redeliver %q: no such envelope was sent", envelopeID)
	}
	var env map[string]any
	if err := json.Unmarshal(data, &env); err != nil {
		return fmt.Errorf("slackfake: redeliver %q: %w", envelopeID, err)
	}
	attempt, _ := env["retry_attempt"].(float64)
	env["retry_attempt"] = int(attempt) + 1
	env["retry_reason"] = reason
	return s.SendEnvelope(ctx, env)
}

// ExpireResponseURLs makes every response_url, issued or future, answer 404
// expired_url while on is true.
func (s *Server) ExpireResponseURLs(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireURLs = on
}

// StopPings stops (true) or resumes (false) the server's WebSocket pings on every
// socket, so the client's ping watchdog sees a silently dead link.
func (s *Server) StopPings(stop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopPings = stop
}
