package main

import (
	"slices"
	"testing"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
)

// TestPortalPasswordThroughV1: with NS_V1_PORTAL_PASSWORD, reset sets a random portal password
// through the v1 API (the v1 base derived from NS_API_URL), delivers it to the requester only,
// reports it as requested (v1 cannot read it back) and leaks it nowhere else.
func TestPortalPasswordThroughV1(t *testing.T) {
	w := newWorld(t)
	w.env["NS_V1_PORTAL_PASSWORD"] = "true"
	w.start()
	ts, inc := w.openAndDeny("")
	w.cardShows(ts, "Reset also sets a new portal password, delivered only to you.") // the Reset dialog
	w.click(alice, ts, "step:reset")
	w.waitFor("reset finished", func() bool { return w.step(inc.ID, session.StepReset).Status.Finished() })
	pwd, ok := w.pbx.PortalPassword("acme.example", "1001")
	if !ok || len(pwd) != 20 {
		t.Fatalf("portal password on the PBX: %q, %v", pwd, ok)
	}
	m := w.ephemeralWith(alice, "Portal password of 1001@acme.example")
	secrets := secretValues([]slackfake.Message{m})
	if !slices.Contains(secrets, pwd) {
		t.Fatalf("the ephemeral does not carry the PBX's new portal password: %v", secrets)
	}
	var sub session.SubResult
	for _, s := range w.step(inc.ID, session.StepReset).SubResults {
		if s.Name == "portal password" {
			sub = s
		}
	}
	if sub.Outcome != session.OutcomeRequested {
		t.Errorf("portal password sub-result: %+v", sub)
	}
	w.cardShows(ts, "portal password: set through v1 (requested)")
	w.scanSecrets(secretValues(w.slack.Ephemerals(alice)))
}

// TestPortalPasswordOffByDefault: without the opt-in nothing goes to v1 and the card says what
// to do in the Manager Portal.
func TestPortalPasswordOffByDefault(t *testing.T) {
	w := newWorld(t)
	w.start()
	ts, inc := w.openAndDeny("")
	w.cardShows(ts, "The portal password itself is not changed: reset it in the Manager Portal.") // the Reset dialog
	w.click(alice, ts, "step:reset")
	w.waitFor("reset finished", func() bool { return w.step(inc.ID, session.StepReset).Status.Finished() })
	if _, ok := w.pbx.PortalPassword("acme.example", "1001"); ok {
		t.Error("a portal password was set without NS_V1_PORTAL_PASSWORD")
	}
	w.cardShows(ts, "reset it in the Manager Portal")
}
