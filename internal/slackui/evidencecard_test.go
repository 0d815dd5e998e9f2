package slackui

import (
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/session"
)

// sampleEvidence is an open-time evidence read: the figures are the card's to show as they are.
func sampleEvidence() *session.Evidence {
	return &session.Evidence{Phase: session.PhaseOpen, ReadAt: at(1), Currency: "USD",
		Calls1h: 3, Calls24h: 6, Seconds: 1110, International: 2, InternationalSeconds: 900, Premium: 1, PremiumSeconds: 120,
		Cost: 12.02,
		Top: []session.Destination{
			{Number: "2348031234567", Label: "Nigeria", Class: session.ClassInternational, Calls: 2, Seconds: 900, Cost: 6},
			{Number: "882123456789", Label: "International networks", Class: session.ClassPremium, Calls: 1, Seconds: 120, Cost: 6},
			{Number: "12125550199", Label: "US/Canada", Class: session.ClassDomestic, Calls: 1, Seconds: 90, Cost: 0.02},
		},
		LiveCalls: []session.EvidenceCall{{Number: "2348031234567", Label: "Nigeria", Class: session.ClassInternational,
			Since: "2026-03-14T01:58:00Z"}},
		Registrations: []session.Registration{
			{Device: "1001", Registered: true, IP: "198.51.100.23", UserAgent: "PolycomVVX-VVX_450-UA/6.4.3", At: "2026-03-13T08:00:00Z"},
			{Device: "1001a", Registered: true, IP: "203.0.113.5", UserAgent: "Zoiper 5", At: "2026-03-14T01:52:00Z"},
		}}
}

func evidenceFixtures(opts CardOptions) []fixture {
	inc := baseIncident()
	inc.Evidence = sampleEvidence()
	open := fixture{"evidence_open", inc, opts, []string{"step:deny", "abort"}, "step:deny"}

	inc = denied()
	inc.Evidence = &session.Evidence{Phase: session.PhaseContainment, ReadAt: at(2), Currency: "USD",
		Unavailable: "the PBX failed (HTTP 500); try again shortly",
		Registrations: []session.Registration{{Device: "1001", Registered: false}, {Device: "1001a", Registered: true,
			IP: "203.0.113.5", UserAgent: "Zoiper 5", At: "2026-03-14T01:52:00Z"}}}
	unavailable := fixture{"evidence_unavailable", inc, opts, []string{"step:recreate", "step:reset", "step:restore", "abort"}, "step:recreate"}

	inc = denied()
	inc.Steps = steps(session.StepDeny, denyDone, session.StepRecreate, done(5, "2 devices re-created"),
		session.StepReset, done(7, "PIN verified changed"),
		session.StepRestore, session.StepState{Status: session.StatusFailed, RequestedBy: "U0MARIA", StartedAt: at(17), FinishedAt: at(17),
			ErrKind: "gate", ErrMessage: "restore held by the gate: 1 international or premium call(s) since containment"})
	inc.Gate = heldGate()
	inc.Version = 16
	held := fixture{"gate_held", inc, opts, []string{"step:restore", "gate:restore", "credentials", "abort"}, "step:restore"}
	return []fixture{open, unavailable, held}
}

// TestEvidenceCardFigures checks the figures a responder reads, word for word.
func TestEvidenceCardFigures(t *testing.T) {
	inc := baseIncident()
	inc.Evidence = sampleEvidence()
	_, blocks := Card(inc, CardOptions{Now: at(20)})
	text := blocksText(t, blocks)
	for _, want := range []string{
		"*Calls*  3 in the last hour · 6 in 24 h · 18.5 min outgoing",
		"*International*  2 calls · 15.0 min · *Premium*  1 call · 2.0 min",
		"*Estimated cost at risk*  USD 12.02",
		"• `2348031234567` Nigeria · 2 calls · 15.0 min · USD 6.00",
		"• `882123456789` International networks *(premium)* · 1 call · 2.0 min · USD 6.00",
		"• `12125550199` US/Canada · 1 call · 1.5 min · USD 0.02",
		"*Live calls* (1)  _Deny all calls ends them_",
		"• `2348031234567` Nigeria · since 01:58 UTC",
		"• `1001a` registered from 203.0.113.5 (Zoiper 5) at 01:52 UTC",
		"• `1001` registered from 198.51.100.23 (PolycomVVX-VVX_450-UA/6.4.3) at 13 Mar 08:00 UTC",
		"evidence read when the incident opened, 02:15 UTC",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("card lacks %q:\n%s", want, text)
		}
	}

	inc = denied()
	inc.Evidence = &session.Evidence{Phase: session.PhaseContainment, ReadAt: at(2), Unavailable: "the PBX failed"}
	_, blocks = Card(inc, CardOptions{Now: at(20)})
	if text := blocksText(t, blocks); !strings.Contains(text, "_evidence unavailable_") || strings.Contains(text, "*Calls*") {
		t.Errorf("a failed read is not shown as unavailable:\n%s", text)
	}
	if _, blocks = Card(baseIncident(), CardOptions{Now: at(20)}); strings.Contains(blocksText(t, blocks), "Fraud evidence") {
		t.Error("an incident without evidence shows an evidence section")
	}
}

// blocksText is every text of the blocks, one per line.
func blocksText(t *testing.T, blocks []slack.Block) string {
	t.Helper()
	var b strings.Builder
	walkTexts(blocks, func(_, text string) { b.WriteString(text + "\n") })
	return b.String()
}

// heldGate is a gate with a call to Nigeria after containment, one device registered again and
// one silent.
func heldGate() *session.Gate {
	return &session.Gate{CheckedAt: at(17), Since: at(1), RecreatedAt: at(4),
		Risky: []session.GateCall{{Number: "2348031234567", Label: "Nigeria", Class: session.ClassInternational, At: at(12), Seconds: 60}},
		Devices: []session.GateDevice{
			{Registration: session.Registration{Device: "1001", Registered: false}},
			{Registration: session.Registration{Device: "1001a", Registered: true, IP: "198.51.100.7", UserAgent: "Zoiper 5",
				At: "2026-03-14T02:20:00Z"}, Again: true},
		}}
}

// TestGateCard: the gate's lines, the over-gate button's dialog, and the Restore dialog's warning.
func TestGateCard(t *testing.T) {
	var held fixture
	for _, f := range fixtures() {
		if f.name == "gate_held" {
			held = f
		}
	}
	_, blocks := Card(held.inc, held.opts)
	text := blocksText(t, blocks)
	for _, want := range []string{
		"*Restore gate*  ⚠️ *not met*",
		"• ⚠️ 1 international or premium call since containment (02:15 UTC): `2348031234567` Nigeria at 02:26 UTC",
		"• `1001` ⚠️ not registered again since it was re-created at 02:18 UTC",
		"• `1001a` ✅ registered again with its new credentials: registered from 198.51.100.7 (Zoiper 5) at 02:20 UTC",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("card lacks %q:\n%s", want, text)
		}
	}
	if c := confirmOf(t, blocks, "gate:restore"); !strings.Contains(c, "THE RESTORE GATE IS NOT MET: 1 international or premium call(s) since containment (2348031234567 Nigeria at 02:26 UTC); 1001 not registered again with the new credentials.") {
		t.Errorf("over-gate dialog: %s", c)
	}
	if c := confirmOf(t, blocks, "step:restore"); !strings.Contains(c, "⚠️ Restore gate not met (") {
		t.Errorf("restore dialog: %s", c)
	}
	inc := held.inc
	inc.Gate = &session.Gate{CheckedAt: at(17), Since: at(1), RecreatedAt: at(4),
		Devices: []session.GateDevice{{Registration: session.Registration{Device: "1001", Registered: true}, Again: true}}}
	_, blocks = Card(inc, held.opts)
	if text := blocksText(t, blocks); !strings.Contains(text, "*Restore gate*  ✅ met") {
		t.Errorf("a met gate:\n%s", text)
	}
	if c := confirmOf(t, blocks, "step:restore"); !strings.Contains(c, "Restore gate met.") {
		t.Errorf("restore dialog of a met gate: %s", c)
	}
}
