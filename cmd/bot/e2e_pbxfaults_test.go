package main

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// pbxFault is one way the PBX misbehaves during a whole incident (issue 11 item 4).
type pbxFault struct {
	name  string
	oauth bool // the bot logs in with OAuth instead of the API key
	// before runs before each attempt of a step (inject); heal undoes it before the last
	// attempt, so that a Retry must then work.
	before, heal func(w *world, s session.Step)
	// minFailed is how many attempts must fail (and be explained), so the test proves the
	// Retry path and not a lucky run; attempts bounds the attempts of one step (default 4).
	minFailed, attempts int
}

// everyNth matches one request in n (the first, then every nth): a latency spike, not a slow PBX.
func everyNth(n int64) func(method, path string) bool {
	var c atomic.Int64
	return func(string, string) bool { return c.Add(1)%n == 1 }
}

func writesOnly(method, _ string) bool { return method != "GET" }

// downAfterFirstDelete takes the PBX down while recreate runs, once its first device was
// deleted (device creates are slowed so the switch lands mid-step): the step fails with a
// device deleted and perhaps created, and its progress must say so.
func downAfterFirstDelete(w *world, s session.Step) {
	if s != session.StepRecreate {
		return
	}
	w.slowDeviceCreates(300 * time.Millisecond)
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if inc, err := w.store.FindOpen(context.Background(), "1001", "acme.example"); err == nil {
				for k, v := range inc.Step(s).Progress {
					if strings.HasPrefix(k, "device/") && v == string(remediate.DeviceDeleted) {
						w.pbx.SetDown(true)
						return
					}
				}
			}
			time.Sleep(5 * time.Millisecond) // polling the store from the test, not in a request path
		}
	}()
}

func pbxFaults() []pbxFault {
	// set injects f before each attempt, with the next seed each time (SetFaults restarts
	// the draws, so one seed would replay the same few draws at every step).
	set := func(f nstest.Faults) func(w *world, _ session.Step) {
		return func(w *world, _ session.Step) {
			f.Seed++
			w.pbx.SetFaults(f)
		}
	}
	clear := func(w *world, _ session.Step) { w.pbx.SetFaults(nstest.Faults{}) }
	return []pbxFault{
		{name: "latency spikes", before: set(nstest.Faults{Latency: 400 * time.Millisecond, Match: everyNth(4)}), heal: clear},
		{name: "5xx bursts", before: set(nstest.Faults{Rate5xx: 0.45, Seed: 11}), heal: clear},
		{name: "429 with Retry-After", before: set(nstest.Faults{Rate429: 0.3, Seed: 12}), heal: clear},
		{name: "reset before the write", before: set(nstest.Faults{RateDrop: 0.3, Seed: 13}), heal: clear},
		{name: "reset after the write landed", before: set(nstest.Faults{RateAfterDrop: 0.35, RateAfter5xx: 0.1, Seed: 14,
			Match: writesOnly}), heal: clear},
		{name: "PBX down", minFailed: 4, attempts: 2,
			before: func(w *world, _ session.Step) { w.pbx.SetDown(true) },
			heal:   func(w *world, _ session.Step) { w.pbx.SetDown(false) }},
		{name: "expired OAuth token", oauth: true,
			// Every token expires before each attempt: the client refreshes on the 401, so no
			// step ever fails (heal is never needed).
			before: func(w *world, _ session.Step) { w.pbx.ExpireTokens() }, heal: func(*world, session.Step) {}},
		{name: "PBX down mid-recreate", minFailed: 1, attempts: 2, before: downAfterFirstDelete,
			heal: func(w *world, _ session.Step) { w.pbx.SetDown(false); w.pbx.SetFaults(nstest.Faults{}) }},
		{name: "revoked API key", minFailed: 4, attempts: 2,
			before: func(w *world, _ session.Step) { w.pbx.RevokeAPIKey(w.pbx.APIKey(), true) },
			heal:   func(w *world, _ session.Step) { w.pbx.RevokeAPIKey(w.pbx.APIKey(), false) }},
	}
}

// kindExplained is what the card must say for a step that failed with each kind a PBX fault
// can cause (remediate.UserMessage's words).
var kindExplained = map[session.ErrKind]string{
	remediate.KindTransient:    "the PBX did not answer in time; try again",
	remediate.KindUnauthorized: "the PBX refused the bot's credentials",
	remediate.KindCanceled:     "the operation was interrupted",
}

// TestServePBXFaults runs a whole incident (deny, recreate, reset, restore with approval)
// under each PBX fault: every step completes, or fails with a kind the card explains and a
// Retry (after the fault heals) completes it; after every attempt the incident's recorded
// progress covers what the simulator shows (no half-state without a record).
func TestServePBXFaults(t *testing.T) {
	for _, f := range pbxFaults() {
		t.Run(strings.ReplaceAll(f.name, " ", "_"), func(t *testing.T) {
			w := newWorld(t)
			if f.oauth {
				delete(w.env, "NS_API_KEY")
				maps.Copy(w.env, map[string]string{"NS_CLIENT_ID": "demo-client", "NS_CLIENT_SECRET": "demo-client-secret-NOT-REAL",
					"NS_USERNAME": "ops@acme.example", "NS_PASSWORD": "demo-password-NOT-REAL"})
			}
			w.start()
			base := w.baseline()
			w.command(alice, incChan, target)
			ts, inc := w.card("1001", "acme.example")
			failures := 0
			for _, s := range session.Steps {
				failures += w.driveStep(ts, inc.ID, s, f, base)
			}
			if failures < f.minFailed {
				t.Errorf("%d failed attempts, want at least %d under %s", failures, f.minFailed, f.name)
			}
			w.cardShows(ts, "Closed (restored)")
			if got := w.pbxUser("1001")["dial-policy"]; got != "US and Canada" {
				t.Errorf("after restore the PBX has dial-policy %v", got)
			}
			w.consistent(inc.ID, base)
			if f.oauth {
				refreshed := 0
				for _, c := range w.pbx.Calls() {
					if c.Path == "/tokens" && c.Status == 200 {
						refreshed++
					}
				}
				if refreshed < len(session.Steps) {
					t.Errorf("%d token fetches, want one after each expiry", refreshed)
				}
			}
			injected := 0
			for _, c := range w.pbx.Calls() {
				if c.Status == 0 || c.Status == 401 || c.Status == 429 || c.Status >= 500 {
					injected++
				}
			}
			if injected == 0 && f.name != "latency spikes" {
				t.Errorf("no request met the fault")
			}
			t.Logf("%s: %d PBX calls, %d faulted, %d failed attempts (explained, then retried)",
				f.name, len(w.pbx.Calls()), injected, failures)
		})
	}
}

// pbxBaseline is the target user as the PBX held it before the incident.
type pbxBaseline struct {
	devices []string
	pin     string
}

func (w *world) baseline() pbxBaseline {
	var b pbxBaseline
	for _, d := range w.pbx.Devices("acme.example", "1001") {
		b.devices = append(b.devices, d["device"].(string))
	}
	b.pin, _ = w.pbxUser("1001")["voicemail-login-pin"].(string)
	return b
}

// driveStep runs step s to an end under fault f, at most 4 attempts (the fault healed before
// the last), checking consistency and the card's explanation after each, and returns how many
// attempts failed.
func (w *world) driveStep(ts, id string, s session.Step, f pbxFault, base pbxBaseline) int {
	w.t.Helper()
	attempts := f.attempts
	if attempts == 0 {
		attempts = 4
	}
	failed := 0
	for i := range attempts {
		if i == attempts-1 {
			f.heal(w, s)
		} else {
			f.before(w, s)
		}
		tried := w.step(id, s).Attempts
		w.cardShows(ts, `"action_id":"step:`+string(s)+`"`)
		w.click(alice, ts, "step:"+string(s))
		if s == session.StepRestore {
			w.waitFor("restore awaiting approval", func() bool { return w.step(id, s).Status == session.StatusAwaiting })
			w.cardShows(ts, "approve:restore")
			w.click(bob, ts, "approve:restore")
		}
		var st *session.StepState
		w.waitFor(string(s)+" ended", func() bool {
			st = w.step(id, s)
			return st.Attempts > tried && (st.Status.Finished() || st.Status == session.StatusFailed)
		})
		w.consistent(id, base)
		if st.Status.Finished() {
			f.heal(w, s)
			return failed
		}
		failed++
		want, ok := kindExplained[st.ErrKind]
		if !ok {
			w.t.Fatalf("%s failed with kind %q (%s): not a kind a PBX fault may cause", s, st.ErrKind, st.ErrMessage)
		}
		v := w.incident(id).Version
		w.waitFor(fmt.Sprintf("card version %d", v), func() bool { return w.cardVersion(ts) >= v })
		w.cardShows(ts, "failed: "+want) // and the loop's next round waits for its Retry button
	}
	w.t.Fatalf("%s did not complete after the fault healed: %s", s, w.step(id, s).ErrMessage)
	return failed
}

var cardVersionRE = regexp.MustCompile(`"s:[a-z]+:v(\d+)"`)

// cardVersion is the incident version the card's current rendering shows (0: none).
func (w *world) cardVersion(ts string) int64 {
	m, ok := w.slack.Message(incChan, ts)
	if !ok {
		return 0
	}
	v := cardVersionRE.FindStringSubmatch(string(m.Blocks))
	if v == nil {
		return 0
	}
	n, _ := strconv.ParseInt(v[1], 10, 64)
	return n
}

// consistent checks the incident's record against the simulator's state: whatever the PBX shows
// changed is covered by what the incident recorded, so a Retry (or Reconcile) can finish it.
//   - the user is in the deny policy only with the original dial policy recorded;
//   - a device missing from the PBX is in the snapshot, with recreate's progress for it;
//   - no device appears that the user did not have;
//   - a changed voicemail PIN has reset's progress for it.
func (w *world) consistent(id string, base pbxBaseline) {
	w.t.Helper()
	inc := w.incident(id)
	u := w.pbxUser("1001")
	switch pol := u["dial-policy"]; pol {
	case "US and Canada":
	case "Deny All":
		if o := inc.Original; o == nil || !o.Known || o.Policy != "US and Canada" {
			w.t.Errorf("the PBX has Deny All but the incident records the original as %+v", o)
		}
	default:
		w.t.Errorf("the PBX has dial-policy %v", pol)
	}
	have := map[string]bool{}
	for _, d := range w.pbx.Devices("acme.example", "1001") {
		name := d["device"].(string)
		have[name] = true
		if !slices.Contains(base.devices, name) {
			w.t.Errorf("device %s appeared on the PBX", name)
		}
	}
	prog := inc.Step(session.StepRecreate).Progress
	for _, d := range base.devices {
		if have[d] {
			continue
		}
		if !slices.ContainsFunc(inc.Devices, func(s session.DeviceSnapshot) bool { return s.Device == d }) {
			w.t.Errorf("device %s is gone from the PBX and not in the incident's snapshot", d)
		}
		if prog["device/"+d] == "" {
			w.t.Errorf("device %s is gone from the PBX without recreate progress for it (progress %v)", d, prog)
		}
	}
	if pin, _ := u["voicemail-login-pin"].(string); pin != base.pin {
		rs := inc.Step(session.StepReset)
		if !rs.Status.Finished() && rs.Progress["pin"] == "" && rs.Progress["pin-old"] == "" {
			w.t.Errorf("the voicemail PIN changed without reset progress (reset %s, progress %v)", rs.Status, rs.Progress)
		}
	}
}
