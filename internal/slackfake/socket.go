package slackfake

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// maxAckFrame is Slack's Socket Mode frame limit: bigger frames close the socket with
// 1009 "Max frame length of 20480 has been exceeded".
const maxAckFrame = 20480

const writeWait = 5 * time.Second

// socketReadBuffer is the kernel receive buffer of an accepted socket. Slack's edge reads acks
// as fast as they come; this fake reads them in the test process, JSON-decoding each, and under
// a burst of 200 it falls behind: with the default (auto-tuned from 128 KiB) its TCP window
// closed, the bot's next write waited for the window to reopen, and on loopback (64 KiB MSS)
// that wait was at times a ~200 ms probe timer (BenchmarkBurstHelp's ack max of 216 ms with
// -benchtime 30x; BENCHMARKS.md, "Socket Mode ack path"). 2 MiB holds a burst's acks.
const socketReadBuffer = 2 << 20

// socket is one accepted Socket Mode WebSocket.
type socket struct {
	id       int
	ws       *websocket.Conn
	wmu      sync.Mutex // gorilla allows one concurrent writer of data frames
	done     chan struct{}
	ready    bool // hello written; guarded by Server.mu
	draining bool // told to disconnect, or a write failed; guarded by Server.mu
}

func (so *socket) write(data []byte) error { return so.writeAt(data, nil) }

// writeAt writes data, calling sending (when set) once the socket is this writer's, just before
// the frame goes out: the moment Slack would count as the envelope sent, after any wait behind
// the other writers of the socket.
func (so *socket) writeAt(data []byte, sending func()) error {
	so.wmu.Lock()
	defer so.wmu.Unlock()
	if err := so.ws.SetWriteDeadline(time.Now().Add(writeWait)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if sending != nil {
		sending()
	}
	return so.ws.WriteMessage(websocket.TextMessage, data)
}

// socketsLocked lists open sockets, only the deliverable ones when live is set.
func (s *Server) socketsLocked(live bool) []*socket {
	out := make([]*socket, 0, len(s.sockets))
	for i := 1; i <= s.nextSock; i++ {
		so, ok := s.sockets[i]
		if !ok || (live && (!so.ready || so.draining)) {
			continue
		}
		out = append(out, so)
	}
	return out
}

// openConnection is apps.connections.open: it hands out a single-use WebSocket URL.
func (s *Server) openConnectionLocked() map[string]any {
	s.opens++
	ticket := s.nextIDLocked("t")
	s.tickets[ticket] = false
	u := strings.Replace(s.srv.URL, "http://", "ws://", 1) + "/link/?ticket=" + ticket
	s.log.Debug().Int("opens", s.opens).Msg("apps.connections.open")
	return map[string]any{"url": u}
}

// handleLink upgrades a ticketed request to a Socket Mode WebSocket, says hello, pings
// it, and reads acks until it closes.
func (s *Server) handleLink(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	used, ok := s.tickets[ticket]
	if s.closed || !ok || used {
		s.mu.Unlock()
		// Each URL is single-use at Slack; a reuse fails the handshake and slack-go
		// retries apps.connections.open with backoff.
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	s.tickets[ticket] = true
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Debug().Err(err).Msg("websocket upgrade")
		return
	}
	ws.SetReadLimit(1 << 20) // the 20 KiB rule is applied below, with Slack's close reason
	if tc, ok := ws.NetConn().(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(socketReadBuffer)
	}
	so := &socket{ws: ws, done: make(chan struct{})}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.nextSock++
	so.id = s.nextSock
	s.sockets[so.id] = so
	n := len(s.sockets)
	s.mu.Unlock()

	defer func() {
		close(so.done)
		_ = ws.Close()
		s.mu.Lock()
		delete(s.sockets, so.id)
		s.notifyLocked()
		s.mu.Unlock()
		s.log.Debug().Int("socket", so.id).Msg("socket closed")
	}()

	hello, _ := json.Marshal(map[string]any{
		"type":            "hello",
		"num_connections": n,
		"debug_info": map[string]any{
			"host":                        fmt.Sprintf("applink-%d", so.id),
			"build_number":                1,
			"approximate_connection_time": 18060,
		},
		"connection_info": map[string]any{"app_id": s.opts.AppID},
	})
	if err := so.write(hello); err != nil {
		s.log.Debug().Err(err).Msg("write hello")
		return
	}
	s.ping(so)
	s.mu.Lock()
	so.ready = true
	s.connects++
	s.notifyLocked()
	s.mu.Unlock()
	s.log.Debug().Int("socket", so.id).Int("num_connections", n).Msg("socket open")

	s.wg.Add(1)
	go s.pinger(so)
	s.readAcks(so)
}

// ping sends one server Ping frame unless pings are stopped. WriteControl may run
// concurrently with the data writer.
func (s *Server) ping(so *socket) {
	s.mu.Lock()
	stopped := s.stopPings
	s.mu.Unlock()
	if stopped {
		return
	}
	payload := []byte(fmt.Sprintf("Ping from applink-%d", so.id))
	_ = so.ws.WriteControl(websocket.PingMessage, payload, time.Now().Add(writeWait))
}

func (s *Server) pinger(so *socket) {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-so.done:
			return
		case <-t.C:
			s.ping(so)
		}
	}
}

// readAcks records every ack until the socket fails or closes. An ack is timed when its frame
// comes off the socket, as Slack's edge would time it; decoding and recording it (JSON, the
// server's mutex shared with every sender) happen behind, in the order read (recordAcks).
// Doing both on the reading goroutine made each ack wait for the fake's work on the acks before
// it: under a 200-command burst that was most of the measured ack latency.
//
// The recording also waits for the sockets to go quiet (no ack read for recordQuiet) unless
// someone looks: decoding an ack cost the test process twice the bot's own CPU per command, and
// Slack's edge does that work on machines of its own, while here it ran on the two cores the bot
// it was timing needs. A test never sees the difference: every accessor, WaitFor, and every Web
// API call and response_url post first records the acks read so far (so whatever the bot did
// after an ack comes after it), and each ack read wakes the WaitFor conditions.
func (s *Server) readAcks(so *socket) {
	kick := make(chan struct{}, 1)
	s.wg.Add(1)
	go s.ackRecorder(kick)
	// Every ack read is recorded before the socket counts as gone.
	defer func() { close(kick); s.recordAcks() }()
	var slab ackSlab
	for {
		data, err := slab.next(so.ws)
		if err != nil {
			return
		}
		at := time.Now()
		if len(data) > maxAckFrame {
			msg := websocket.FormatCloseMessage(websocket.CloseMessageTooBig,
				fmt.Sprintf("Max frame length of %d has been exceeded", maxAckFrame))
			_ = so.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait))
			s.log.Debug().Int("socket", so.id).Int("bytes", len(data)).Msg("ack frame too big")
			return
		}
		switch n := s.acksRead.add(ackRead{so: so, data: data, at: at}); {
		case n >= recordBatch:
			s.recordAcks() // the reader waits: the acks behind are timed late, never lost
		case n == 1:
			select { // the first ack waiting: the recorder starts watching for quiet
			case kick <- struct{}{}:
			default:
			}
		}
		s.mu.Lock()
		s.notifyLocked() // WaitFor conditions run, and their accessors record it
		s.mu.Unlock()
	}
}

const (
	// recordQuiet is how long no ack must be read before the recorder records the acks waiting:
	// far longer than the gaps between the acks of a burst (tens of µs).
	recordQuiet = 2 * time.Millisecond
	// recordBatch bounds what waits for the sockets to go quiet: the reader that finds this many
	// waiting records them itself.
	recordBatch = 1024
)

// ackSlab is where one socket's reader puts the frames it reads: each frame is a slice of the
// current slab, which is never written again where a frame lies, and a new slab is taken when
// the room left could not hold a frame of maxAckFrame. Hand-written instead of gorilla's
// ReadMessage, whose io.ReadAll grows a new buffer for every frame (≈ 3 KB in four allocations
// for a help ack, which carries its answer): the largest part of the test process's
// allocations under a help burst, made on the goroutine whose pace times every ack. A frame's
// data is kept until it is recorded (recordAck copies what it keeps), and so is its slab.
type ackSlab struct{ buf []byte }

const slabSize = 4 * (maxAckFrame + 1)

// next reads the next message of ws. A frame longer than maxAckFrame is returned cut at
// maxAckFrame+1 bytes, so the caller sees it is too long without reading all of it.
func (sl *ackSlab) next(ws *websocket.Conn) ([]byte, error) {
	_, r, err := ws.NextReader()
	if err != nil {
		return nil, err
	}
	if cap(sl.buf)-len(sl.buf) < maxAckFrame+1 {
		sl.buf = make([]byte, 0, slabSize)
	}
	start := len(sl.buf)
	n, err := io.ReadFull(r, sl.buf[start:start+maxAckFrame+1])
	// (Unexpected)EOF is the frame ending before the room is full, as every frame but an
	// oversized one does; anything else is the socket failing.
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, err
	}
	sl.buf = sl.buf[:start+n]
	return sl.buf[start : start+n : start+n], nil
}

// ackRead is one ack frame read off a socket and not yet recorded.
type ackRead struct {
	so   *socket
	data []byte
	at   time.Time
}

// ackQueue is the acks read and not yet recorded, of every socket, in the order read.
type ackQueue struct {
	recording sync.Mutex // held while recording: one batch at a time, so in order
	mu        sync.Mutex // guards reads and n
	reads     []ackRead
	n         uint64 // acks ever added: the recorder's sign that the sockets are not quiet
}

// add queues r and returns how many wait.
func (q *ackQueue) add(r ackRead) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reads = append(q.reads, r)
	q.n++
	return len(q.reads)
}

func (q *ackQueue) added() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// recordAcks records every ack read so far, in order (s.mu not held).
func (s *Server) recordAcks() {
	q := &s.acksRead
	q.recording.Lock()
	defer q.recording.Unlock()
	q.mu.Lock()
	batch := q.reads
	q.reads = nil
	q.mu.Unlock()
	for _, r := range batch {
		s.recordFrame(r.so, r.data, r.at)
	}
}

// ackRecorder records the acks waiting once no ack was read for recordQuiet, each time kick
// says one is waiting, until kick is closed.
func (s *Server) ackRecorder(kick <-chan struct{}) {
	defer s.wg.Done()
	quiet := time.NewTimer(recordQuiet)
	defer quiet.Stop()
	for range kick {
		for seen := s.acksRead.added(); ; {
			quiet.Reset(recordQuiet)
			<-quiet.C
			now := s.acksRead.added()
			if now == seen {
				break
			}
			seen = now
		}
		s.recordAcks()
	}
}

// recordFrame records one frame read from so at at, if it is an ack.
func (s *Server) recordFrame(so *socket, data []byte, at time.Time) {
	var frame struct {
		EnvelopeID string          `json:"envelope_id"`
		Payload    json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(data, &frame); err != nil || frame.EnvelopeID == "" {
		s.log.Debug().Int("socket", so.id).Msg("ignored a frame that is not an ack")
		return
	}
	s.recordAck(frame.EnvelopeID, frame.Payload, at)
}

// recordAck records the ack of envelope id read at now.
func (s *Server) recordAck(id string, payload json.RawMessage, now time.Time) {
	a := Ack{EnvelopeID: id, At: now}
	if len(payload) > 0 && string(payload) != "null" {
		a.Payload = append(json.RawMessage(nil), payload...)
	}
	// The ack's message is decoded before the lock: under a burst the 200 senders wait on it.
	msg, hasMsg := decodeAckMessage(a.Payload)
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.sentAt[id]; ok {
		a.Latency = now.Sub(t)
	}
	s.acks = append(s.acks, a)
	_, seen := s.firstAck[id]
	first := !seen
	if first {
		s.firstAck[id] = a
	}
	if info, ok := s.envelopes[id]; ok && info.kind == "slash_commands" && hasMsg {
		s.ackMessageLocked(info, msg, now)
	}
	if info, ok := s.envelopes[id]; ok && info.view != nil && first {
		info.view.closed = closesView(a.Payload)
	}
	s.notifyLocked()
}

// ackMessage is the message a slash command's ack payload carries.
type ackMessage struct {
	Text         string          `json:"text"`
	Blocks       json.RawMessage `json:"blocks"`
	ResponseType string          `json:"response_type"`
}

// decodeAckMessage reads the message in an ack's payload; false when it carries none.
func decodeAckMessage(payload json.RawMessage) (ackMessage, bool) {
	var p ackMessage
	if payload == nil || json.Unmarshal(payload, &p) != nil || (p.Text == "" && len(p.Blocks) == 0) {
		return ackMessage{}, false
	}
	return p, true
}

// ackMessageLocked shows a slash command ack's message like Slack does: ephemeral to
// the user unless response_type is in_channel. It shows at the time its ack was read (the
// recorder may decode it later).
func (s *Server) ackMessageLocked(info envelopeInfo, p ackMessage, at time.Time) {
	m := Message{Method: "ack", Channel: info.channel, TS: s.nextTSLocked(), Text: p.Text,
		Blocks: compactBlocks(p.Blocks), ResponseType: p.ResponseType, At: at}
	ephemeral := p.ResponseType != "in_channel"
	if ephemeral {
		m.User = info.user
	}
	s.storeLocked(m, ephemeral)
	s.recordAtLocked(m, at)
}

// SendEnvelope delivers one raw envelope (a map, a struct, json.RawMessage or []byte)
// on a live socket chosen at random, as Slack does, waiting for one if none is live.
// Resending the same envelope_id models a duplicate delivery. It returns ctx's error
// (wrapped) when no socket took the envelope in time, ErrClosed on a closed server, or
// a marshalling error.
func (s *Server) SendEnvelope(ctx context.Context, env any) error {
	var data []byte
	switch v := env.(type) {
	case json.RawMessage:
		data = v
	case []byte:
		data = v
	default:
		b, err := json.Marshal(env)
		if err != nil {
			return fmt.Errorf("slackfake: marshal envelope: %w", err)
		}
		data = b
	}
	var head struct {
		EnvelopeID string `json:"envelope_id"`
	}
	_ = json.Unmarshal(data, &head)
	return s.send(ctx, head.EnvelopeID, data)
}

// send is SendEnvelope of an envelope already encoded, whose envelope_id is id ("" = none).
func (s *Server) send(ctx context.Context, id string, data []byte) error {
	if id != "" {
		s.mu.Lock()
		s.sent[id] = append([]byte(nil), data...)
		s.mu.Unlock()
	}
	return s.sendSent(ctx, id, data)
}

// sendSent is send of an envelope whose data is already s.sent[id] (for Redeliver).
func (s *Server) sendSent(ctx context.Context, id string, data []byte) error {
	for {
		so, err := s.pickSocket(ctx)
		if err != nil {
			return fmt.Errorf("slackfake: send envelope %q: %w", id, err)
		}
		var sending func()
		if id != "" {
			// The ack latency counts from the write, not from the wait for the socket: 200
			// envelopes sent at once queue behind one another here, in the fake, not in the bot.
			sending = func() {
				s.mu.Lock()
				s.sentAt[id] = time.Now()
				s.mu.Unlock()
			}
		}
		if err := so.writeAt(data, sending); err != nil {
			// The socket is going away; like Slack, try another one.
			s.log.Debug().Err(err).Int("socket", so.id).Msg("envelope write failed")
			s.mu.Lock()
			so.draining = true
			s.notifyLocked()
			s.mu.Unlock()
			continue
		}
		s.log.Debug().Int("socket", so.id).Str("envelope", id).Msg("envelope sent")
		s.mu.Lock()
		s.notifyLocked()
		s.mu.Unlock()
		return nil
	}
}

// pickSocket chooses the live socket an envelope goes to, at random, waiting for one if none is
// live (counted: NoSocketSends).
func (s *Server) pickSocket(ctx context.Context) (*socket, error) {
	for first := true; ; first = false {
		s.mu.Lock()
		ch, closed := s.changed, s.closed
		live := s.socketsLocked(true)
		if len(live) == 0 && first && !closed {
			s.noSocket++
		}
		s.mu.Unlock()
		if closed {
			return nil, ErrClosed
		}
		if len(live) > 0 {
			return live[rand.IntN(len(live))], nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("no live socket: %w", ctx.Err())
		}
	}
}

// WaitAck waits for the first ack of envelopeID. It returns ctx's error (wrapped) when
// none arrives in time, or ErrClosed.
func (s *Server) WaitAck(ctx context.Context, envelopeID string) (Ack, error) {
	var got Ack
	err := s.WaitFor(ctx, func(s *Server) bool {
		s.recordAcks()
		s.mu.Lock()
		defer s.mu.Unlock()
		a, ok := s.firstAck[envelopeID]
		got = a
		got.Payload = append(json.RawMessage(nil), a.Payload...)
		return ok
	})
	if err != nil {
		return Ack{}, fmt.Errorf("slackfake: ack of %q: %w", envelopeID, err)
	}
	return got, nil
}

// Disconnect sends {"type":"disconnect","reason":reason} on every live socket, as
// Slack does before recycling a link (refresh_requested, warning, …), and stops
// delivering envelopes on them. slack-go closes such a socket and reconnects at once.
func (s *Server) Disconnect(reason string) {
	s.mu.Lock()
	socks := s.socketsLocked(true)
	for _, so := range socks {
		so.draining = true
	}
	s.notifyLocked()
	s.mu.Unlock()
	for _, so := range socks {
		s.writeDisconnect(so, reason)
	}
}

// NoSocketSends is how many envelope deliveries found no live socket (none open, or every one
// told to disconnect) and waited for one. Slack does not wait: the user sees dispatch_failed, and
// an envelope it had to deliver again waits for Slack's next retry.
func (s *Server) NoSocketSends() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.noSocket
}

// DisconnectOldest is Disconnect on one socket, the oldest live one, as Slack refreshes each
// connection of an app on its own schedule. It returns false when no socket is live.
func (s *Server) DisconnectOldest(reason string) bool {
	s.mu.Lock()
	socks := s.socketsLocked(true)
	if len(socks) == 0 {
		s.mu.Unlock()
		return false
	}
	so := socks[0]
	so.draining = true
	s.notifyLocked()
	s.mu.Unlock()
	s.writeDisconnect(so, reason)
	return true
}

// writeDisconnect sends so the disconnect frame with reason (so is already draining).
func (s *Server) writeDisconnect(so *socket, reason string) {
	msg, _ := json.Marshal(map[string]any{
		"type": "disconnect", "reason": reason,
		"debug_info": map[string]any{"host": fmt.Sprintf("applink-%d", so.id)},
	})
	if err := so.write(msg); err != nil {
		s.log.Debug().Err(err).Int("socket", so.id).Msg("write disconnect")
	}
}

// DropSockets closes every socket's TCP connection without a close frame, as a network
// failure would.
func (s *Server) DropSockets() {
	s.mu.Lock()
	socks := s.socketsLocked(false)
	for _, so := range socks {
		so.draining = true
	}
	s.notifyLocked()
	s.mu.Unlock()
	for _, so := range socks {
		_ = so.ws.NetConn().Close()
	}
}

// newEnvelopeID returns a UUID-shaped id like Slack's.
func newEnvelopeID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
