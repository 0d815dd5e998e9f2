package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/session"
)

// seedFraud gives 1001@acme.example a day of calls (four outgoing to external numbers in the
// window, one to an extension, one too old to count), a live call to Nigeria and its softphone
// registered from the attacker's address.
func (w *world) seedFraud() {
	w.t.Helper()
	now := time.Now()
	for _, c := range []nstest.CDR{
		{Number: "2348031234567", Start: now.Add(-10 * time.Minute), Seconds: 600, Type: 1}, // Nigeria 10 min × 0.40
		{Number: "2348031234567", Start: now.Add(-30 * time.Minute), Seconds: 300, Type: 1}, // Nigeria 5 min
		{Number: "882123456789", Start: now.Add(-2 * time.Hour), Seconds: 120, Type: 1},     // premium 2 min × 3.00
		{Number: "12125550199", Start: now.Add(-5 * time.Hour), Seconds: 90, Type: 1},       // domestic 1.5 min × 0.01
		{Number: "1002", Start: now.Add(-40 * time.Minute), Seconds: 30, Type: 2},           // an extension
		{Number: "442079460000", Start: now.Add(-25 * time.Hour), Seconds: 6000, Type: 1},   // outside the 24 h
	} {
		c.Domain, c.User = "acme.example", "1001"
		w.pbx.AddCDR(c)
	}
	w.pbx.AddActiveCall("acme.example", "1001", "call-ng-1", "0112348031234567")
	if err := w.pbx.RegisterDevice("acme.example", "1001a", "DemoSoftPh0ne1aa", "203.0.113.5:5060", "Zoiper 5"); err != nil {
		w.t.Fatal(err)
	}
}

// TestEvidenceOnTheCard: the card shows the seeded day exactly (counts, minutes, top three,
// cost, the live call, where the softphone registered from), read again at containment, and
// the audit bundle carries the same figures.
func TestEvidenceOnTheCard(t *testing.T) {
	w := newWorld(t)
	w.seedFraud()
	w.start()
	w.command(alice, incChan, target+" intl calls")
	ts, inc := w.card("1001", "acme.example")
	for _, s := range []string{
		"*Calls*  3 in the last hour · 5 in 24 h · 18.5 min outgoing",
		"*International*  2 calls · 15.0 min · *Premium*  1 call · 2.0 min",
		"*Estimated cost at risk*  USD 12.02",
		"• `2348031234567` Nigeria · 2 calls · 15.0 min · USD 6.00",
		"• `882123456789` International networks *(premium)* · 1 call · 2.0 min · USD 6.00",
		"• `12125550199` US/Canada · 1 call · 1.5 min · USD 0.02",
		"*Live calls* (1)  _Deny all calls ends them_",
		"• `2348031234567` Nigeria · since ",
		"• `1001a` registered from 203.0.113.5 (Zoiper 5) at ",
		"evidence read when the incident opened",
	} {
		w.cardShows(ts, s)
	}
	got := w.incident(inc.ID).Evidence
	want := []session.Destination{
		{Number: "2348031234567", Label: "Nigeria", Class: session.ClassInternational, Calls: 2, Seconds: 900, Cost: 6},
		{Number: "882123456789", Label: "International networks", Class: session.ClassPremium, Calls: 1, Seconds: 120, Cost: 6},
		{Number: "12125550199", Label: "US/Canada", Class: session.ClassDomestic, Calls: 1, Seconds: 90, Cost: 0.02},
	}
	if d := cmp.Diff(want, got.Top); d != "" || got.Cost != 12.02 || got.Calls24h != 5 || got.Calls1h != 3 {
		t.Errorf("stored evidence: cost %v, calls %d/%d, top (-want +got):\n%s", got.Cost, got.Calls1h, got.Calls24h, d)
	}

	w.click(alice, ts, "step:deny")
	w.cardShows(ts, "deny done")
	w.cardShows(ts, "evidence read at containment")
	if ev := w.incident(inc.ID).Evidence; ev.Phase != session.PhaseContainment || len(ev.LiveCalls) != 0 || ev.Cost != 12.02 {
		t.Errorf("containment evidence: phase %s, %d live calls, cost %v", ev.Phase, len(ev.LiveCalls), ev.Cost)
	}

	r := w.cli(w.cliEnv(), "audit", inc.ID)
	r.want(t, exitOK, "audit")
	for _, s := range []string{"Fraud evidence (read ", "containment)", "estimated cost at risk USD 12.02",
		"top: 2348031234567 Nigeria 15.0 min USD 6.00", "1001a registered from 203.0.113.5 (Zoiper 5)", "evidence.read"} {
		if !strings.Contains(r.out, s) {
			t.Errorf("audit bundle lacks %q:\n%s", s, r.out)
		}
	}
	r = w.cli(w.cliEnv(), "audit", "--format", "jsonl", inc.ID)
	if !strings.Contains(r.out, `{"type":"evidence","phase":"containment"`) || !strings.Contains(r.out, `"cost":12.02`) {
		t.Errorf("jsonl bundle lacks the evidence record:\n%s", r.out)
	}
}

// TestEvidenceUnavailable: the PBX refuses the call records; the card says so and the incident
// opens and contains as ever.
func TestEvidenceUnavailable(t *testing.T) {
	w := newWorld(t)
	w.seedFraud()
	w.pbx.FailNext("GET", "/domains/*/users/*/cdrs", http.StatusForbidden, "Permission Denied")
	w.start()
	w.command(alice, incChan, target)
	ts, _ := w.card("1001", "acme.example")
	w.cardShows(ts, "_evidence unavailable_")
	w.cardShows(ts, "• `1001a` registered from 203.0.113.5 (Zoiper 5)") // the other reads still count
	w.click(alice, ts, "step:deny")
	w.cardShows(ts, "deny done")
}
