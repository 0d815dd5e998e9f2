package slackui

import (
	"context"
	"errors"
	"testing"
)

// TestPacerCardsFirst: a thread line yields its channel to a card being posted, and once Slack
// answered a 429 the channel is paced at its documented burst.
func TestPacerCardsFirst(t *testing.T) {
	p := newPacer()
	done, err := p.post(context.Background(), "C1")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.tryReply("C1"); !errors.Is(err, errPaced) {
		t.Errorf("thread line while a card posts: %v, want errPaced", err)
	}
	if err := p.tryReply("C2"); err != nil {
		t.Errorf("thread line in another channel: %v", err)
	}
	done()
	for i := range 10 {
		if err := p.tryReply("C1"); err != nil {
			t.Fatalf("unpaced thread line %d: %v", i, err)
		}
	}
	p.saw429("chat.postMessage")
	for i := range postBurst {
		if err := p.tryReply("C3"); err != nil {
			t.Fatalf("paced thread line %d of the burst: %v", i, err)
		}
	}
	if err := p.tryReply("C3"); !errors.Is(err, errPaced) {
		t.Errorf("thread line past the burst: %v, want errPaced", err)
	}
}
