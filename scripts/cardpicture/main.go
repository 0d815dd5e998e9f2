// Command cardpicture renders the incident card of a representative incident with the card's
// own Block Kit (slackui.Card) and writes what scripts/card-picture.sh turns into
// docs/card.png: the Block Kit JSON, an HTML page that draws it the way Slack lays a message
// out, and the Block Kit Builder link of the same JSON (printed). Run by hand, not in CI.
//
//	go run ./scripts/cardpicture -out DIR
package main

import (
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackui"
)

// page draws Block Kit in a browser; %BLOCKS% and %NAMES% are replaced with JSON.
//
//go:embed page.html
var page string

func main() {
	out := flag.String("out", ".", "directory for card.json, card.html and builder-url.txt")
	flag.Parse()
	if err := write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "cardpicture:", err)
		os.Exit(1)
	}
}

func write(dir string) error {
	inc, opts := example()
	_, blocks := slackui.Card(inc, opts)
	msg, err := json.Marshal(map[string]any{"blocks": blocks})
	if err != nil {
		return fmt.Errorf("encode the blocks: %w", err)
	}
	// How Slack would show the mentions in the card (the app only knows the IDs).
	names, _ := json.Marshal(map[string]string{"U0MARIA": "maria", "U0LEAD": "lead", "S0ONCALL": "oncall-leads"})
	html := strings.NewReplacer("%BLOCKS%", string(msg), "%NAMES%", string(names)).Replace(page)
	// Block Kit Builder takes the message JSON in the fragment, escaped like encodeURIComponent.
	link := "https://app.slack.com/block-kit-builder/#" + strings.ReplaceAll(url.QueryEscape(string(msg)), "+", "%20")
	for name, body := range map[string]string{"card.json": string(msg), "card.html": html, "builder-url.txt": link + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	fmt.Println(link)
	return nil
}

// example is a representative incident mid-runbook: contained, devices re-created, the reset
// with a warning, and the restore awaiting a second person's approval.
func example() (session.Incident, slackui.CardOptions) {
	t0 := time.Date(2026, 3, 14, 2, 14, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	steps := map[session.Step]*session.StepState{
		session.StepDeny: {Step: session.StepDeny, Status: session.StatusDone, RequestedBy: "U0MARIA", StartedAt: at(1), FinishedAt: at(1),
			Summary: "verified · 1 live call ended"},
		session.StepRecreate: {Step: session.StepRecreate, Status: session.StatusDone, RequestedBy: "U0MARIA", StartedAt: at(3), FinishedAt: at(4),
			Summary: "2 devices re-created with new passwords · 1 desk phone picks up its own at the next provisioning check"},
		session.StepReset: {Step: session.StepReset, Status: session.StatusWarnings, RequestedBy: "U0MARIA", StartedAt: at(5), FinishedAt: at(6),
			SubResults: []session.SubResult{
				{Name: "PIN", Outcome: session.OutcomeVerified, Detail: "changed"},
				{Name: "sessions", Outcome: session.OutcomeRequested, Detail: "(cannot be read back)"},
				{Name: "portal password", Outcome: session.OutcomeNotPossible, Detail: "the API offers no reset; reset email sent to j•••@acme.example"},
			}},
		session.StepRestore: {Step: session.StepRestore, Status: session.StatusAwaiting, RequestedBy: "U0MARIA", RequestedAt: at(16),
			ApprovalExpires: at(76)},
	}
	inc := session.Incident{
		ID: "INC-7K2QXM", User: "1001", Domain: "acme.example", Reason: "intl calls to +882 since 01:50",
		OpenedBy: "U0MARIA", Channel: "C0INC", MessageTS: "1710382440.000100", CreatedAt: t0,
		State: session.StateOpen, DenyPolicy: "Deny All", Steps: steps, Version: 12,
		Original: &session.Original{Policy: "US and Canada", Known: true, RecordedAt: at(1), Source: "INC-7K2QXM"},
		Live: &session.Live{ReadAt: at(7), DisplayName: "Jane Doe", DialPolicy: "Deny All",
			EmailMasked: "j•••@acme.example", Devices: []session.LiveDevice{
				{Device: "1001", Model: "Polycom VVX450", MAC: "0004F2AABBCC", Registered: true},
				{Device: "1001a", Registered: false},
			}},
		EmailAtOpen: "j•••@acme.example",
		Delivery:    map[string]session.DeliveryState{"1001a": {Delivered: true, At: at(4)}, "pin": {Delivered: true, At: at(6)}},
	}
	return inc, slackui.CardOptions{Now: at(20), ApprovalSteps: map[session.Step]bool{session.StepRestore: true},
		Approvers: "<!subteam^S0ONCALL>", DenyPolicy: "Deny All", ResetEmail: true}
}
