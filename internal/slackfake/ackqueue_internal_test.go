package slackfake

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// queueHelpAck registers a slash command envelope from U1 in C1 and queues its ack, carrying a
// message, as read off a socket at at (what readAcks does), without recording it.
func queueHelpAck(t *testing.T, s *Server, at time.Time) string {
	t.Helper()
	id, _, err := s.slashEnvelope(SlashCommand{UserID: "U1", ChannelID: "C1", Text: "help"})
	if err != nil {
		t.Fatal(err)
	}
	frame := fmt.Sprintf(`{"envelope_id":%q,"payload":{"response_type":"ephemeral","text":"the help"}}`, id)
	s.acksRead.add(ackRead{so: &socket{id: 1}, data: []byte(frame), at: at})
	return id
}

// TestAcksRecordedBeforeWhatFollows: an ack read but not yet recorded is recorded before a Web
// API call that comes after it (the events show the ack's message first), its message shows at
// the time the ack was read, and the accessors see it at once.
func TestAcksRecordedBeforeWhatFollows(t *testing.T) {
	s := Start(t, Options{})
	s.AddUser("U1", "alice")
	s.AddChannel("C1", "incident", true)
	read := time.Now().Add(-time.Second) // read a second ago, and still waiting for a quiet socket
	queueHelpAck(t, s, read)
	resp, err := http.PostForm(s.APIURL()+"chat.postMessage", url.Values{"token": {"xoxb-test"}, "channel": {"C1"}, "text": {"after the ack"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	s.mu.Lock()
	events := cloneMessages(s.events) // as recorded, before any accessor records anything
	s.mu.Unlock()
	if len(events) != 2 || events[0].Method != "ack" || events[0].Text != "the help" || events[1].Method != "chat.postMessage" {
		t.Fatalf("events %+v, want the ack's message, then the post", events)
	}
	if !events[0].At.Equal(read) {
		t.Errorf("the ack's message shows at %v, want when its ack was read (%v)", events[0].At, read)
	}

	id := queueHelpAck(t, s, time.Now())
	if a := s.AcksSince(1); len(a) != 1 || a[0].EnvelopeID != id {
		t.Errorf("AcksSince(1) = %+v, want the ack just read", a)
	}
	if e := s.Ephemerals("U1"); len(e) != 2 {
		t.Errorf("%d ephemerals, want 2", len(e))
	}
}

// TestAckRecorderRecordsWhenQuiet: with nobody looking, the recorder records the acks waiting
// once no more come (a WaitAcks, which records nothing itself, returns).
func TestAckRecorderRecordsWhenQuiet(t *testing.T) {
	s := Start(t, Options{})
	s.AddUser("U1", "alice")
	s.AddChannel("C1", "incident", true)
	kick := make(chan struct{}, 1)
	s.wg.Add(1)
	go s.ackRecorder(kick)
	defer close(kick)
	for range 3 {
		queueHelpAck(t, s, time.Now())
	}
	kick <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitAcks(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitMessages(ctx, 3); err != nil {
		t.Fatal(err)
	}
}
