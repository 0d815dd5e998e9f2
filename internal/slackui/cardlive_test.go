package slackui

import (
	"strings"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// TestCardLiveUnread: the card posted after the open's user read shows its devices and live calls
// as being read (never as none), then, if the read failed or was interrupted, says so and how to
// read them again.
func TestCardLiveUnread(t *testing.T) {
	pending := func() session.Incident {
		inc := baseIncident()
		inc.Live.Devices, inc.Live.ActiveCalls, inc.Live.Pending = nil, 0, true
		return inc
	}
	failed := baseIncident()
	failed.Live.Devices, failed.Live.ActiveCalls, failed.Live.ReadErr = nil, 0, "the PBX failed (503)"
	for _, tc := range []struct {
		name string
		inc  session.Incident
		now  time.Time
		want []string
	}{
		{"being read", pending(), at(1).Add(time.Second), []string{"*Active calls*  _reading…_", "*Devices*  _reading…_", "*Dial permission*  US and Canada"}},
		{"interrupted", pending(), at(5), []string{"*Devices*  ⚠️ not read (the read was interrupted) · `/compromised status 1001@acme.example` reads them again"}},
		{"failed", failed, at(2), []string{"*Active calls*  ⚠️ could not be read: the PBX failed (503)", "*Devices*  ⚠️ could not be read"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, blocks := Card(tc.inc, CardOptions{Now: tc.now})
			text := blocksText(t, blocks)
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("card lacks %q:\n%s", w, text)
				}
			}
			if strings.Contains(text, "*Devices*  none") || strings.Contains(text, "*Active calls*  0") {
				t.Errorf("unread devices or calls shown as none:\n%s", text)
			}
		})
	}
}
