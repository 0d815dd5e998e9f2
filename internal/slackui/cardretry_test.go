package slackui

import (
	"strings"
	"testing"
	"time"
)

// TestCardLiveReadRetried: a card whose devices could not be read fills in by itself: the
// maintenance pass (any replica's) reads them again once the retry is due, and the card shows
// them instead of the error.
func TestCardLiveReadRetried(t *testing.T) {
	h := newHarness(t)
	h.pbx.FailNext("GET", "/domains/acme.example/users/1001/devices", 403, "Forbidden")
	inc := h.open()
	if inc.Live.ReadErr == "" {
		t.Fatalf("live state after a refused devices read = %+v, want ReadErr", inc.Live)
	}
	cardHas := func(what string) bool {
		m, ok := h.fake.Message(hChan, inc.MessageTS)
		return ok && strings.Contains(string(m.Blocks), what)
	}
	h.waitFor("the card to say the devices could not be read", func() bool { return cardHas("could not be read") })
	h.clock.Advance(time.Minute)
	h.apps[1].maintainOnce(h.ctx)
	h.eng.Wait()
	h.waitFor("the card to show the devices", func() bool { return !cardHas("could not be read") && cardHas("1001a") })
}
