package slackfake

// This file holds what a test reads from the fake (the recorded messages, calls, acks and
// sockets) and the faults it sets (rate limits, failing methods, HTTP errors, latency,
// redelivered envelopes, expired response_urls, silent pings).

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Messages returns every recorded message event in order: chat.postMessage,
// chat.update (the full new version), chat.postEphemeral, chat.delete, response_url
// posts and slash command acks that carried a message.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneMessages(s.events)
}

// MessagesSince returns the message events recorded after the first n (Messages()[n:]),
// copying only those: a watcher that keeps its own cursor sees each event once, in order,
// at a cost that does not grow with the history (benchmarks follow hundreds of cards so).
func (s *Server) MessagesSince(n int) []Message {
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
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.byKey[key(channel, ts)]
	if !ok || m.deleted {
		return Message{}, false
	}
	return cloneMessage(m.Message), true
}

func (s *Server) filter(keep func(*stored) bool) []Message {
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

// Acks returns every ack received, in order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Ack, len(s.acks))
	for i, a := range s.acks {
		a.Payload = append(json.RawMessage(nil), a.Payload...)
		out[i] = a
	}
	return out
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
