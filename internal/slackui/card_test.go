package slackui

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current rendering")

var t0 = time.Date(2026, 3, 14, 2, 14, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

// Strings that the snapshot holds and no render may ever show.
const (
	secretSealed = "SEALED:k1:Zm9vYmFyc2VjcmV0bm9uY2U"
	secretHMAC   = "hmac:k1:5d41402abc4b2a76b9719d911017c592"
	secretField  = "s3cr3t-prov-pass"
)

func snapshots() []session.DeviceSnapshot {
	return []session.DeviceSnapshot{
		{Device: "1001", Fields: map[string]any{"device-model": "VVX450", "device-provisioning-password": secretField},
			PasswordHMAC: secretHMAC, Sealed: map[string]string{"device-provisioning-password": secretSealed},
			PhoneMAC: "0004f2aabbcc", PhoneLine: 1, MACProvisioned: true},
		{Device: "1001a", Fields: map[string]any{"device-record-calls": "no"}, PasswordHMAC: secretHMAC + "2"},
	}
}

func steps(kv ...any) map[session.Step]*session.StepState {
	m := map[session.Step]*session.StepState{}
	for _, s := range session.Steps {
		m[s] = &session.StepState{Step: s, Status: session.StatusReady}
	}
	for i := 0; i < len(kv); i += 2 {
		st := kv[i+1].(session.StepState)
		st.Step = kv[i].(session.Step)
		m[st.Step] = &st
	}
	return m
}

func baseIncident() session.Incident {
	return session.Incident{
		ID: testID, User: "1001", Domain: "acme.example", Reason: "intl calls to +882 since 01:50",
		OpenedBy: "U0MARIA", Channel: "C0INC", MessageTS: "1710382440.000100", CreatedAt: t0,
		State: session.StateOpen, DenyPolicy: "Deny All", Steps: steps(), Version: 1,
		Live: &session.Live{ReadAt: at(1), DisplayName: "Jane Doe", DialPolicy: "US and Canada", ActiveCalls: 1,
			EmailMasked: "j•••@acme.example", Devices: []session.LiveDevice{
				{Device: "1001", Model: "Polycom VVX450", MAC: "0004F2AABBCC", Registered: true},
				{Device: "1001a", Registered: false},
			}},
		EmailAtOpen: "j•••@acme.example",
		Devices:     snapshots(),
	}
}

var denyDone = session.StepState{Status: session.StatusDone, RequestedBy: "U0MARIA", StartedAt: at(1), FinishedAt: at(1),
	Summary: "verified · 1 live call ended"}

func denied() session.Incident {
	inc := baseIncident()
	inc.Original = &session.Original{Policy: "US and Canada", Known: true, RecordedAt: at(1), Source: testID}
	inc.Live.DialPolicy = "Deny All"
	inc.Live.ActiveCalls = 0
	inc.Live.ReadAt = at(2)
	inc.Steps = steps(session.StepDeny, denyDone)
	inc.Version = 4
	return inc
}

var done = func(min int, summary string) session.StepState {
	return session.StepState{Status: session.StatusDone, RequestedBy: "U0MARIA", StartedAt: at(min - 1), FinishedAt: at(min), Summary: summary}
}

type fixture struct {
	name string
	inc  session.Incident
	opts CardOptions
	// action_ids of every button in order, and the one with the primary style.
	buttons []string
	primary string
}

func fixtures() []fixture {
	opts := CardOptions{Now: at(20), ApprovalSteps: map[session.Step]bool{session.StepRestore: true},
		Approvers: "<!subteam^S0ONCALL>", DenyPolicy: "Deny All", ResetEmail: true}
	var fs []fixture

	fs = append(fs, fixture{"fresh", baseIncident(), opts, []string{"step:deny", "abort"}, "step:deny"})

	inc := baseIncident()
	inc.Steps = steps(session.StepDeny, session.StepState{Status: session.StatusRunning, RequestedBy: "U0MARIA", StartedAt: at(1)})
	inc.Version = 2
	fs = append(fs, fixture{"deny_running", inc, opts, []string{"abort"}, ""})

	inc = denied()
	inc.Steps = steps(session.StepDeny, denyDone, session.StepRecreate, session.StepState{Status: session.StatusRunning,
		RequestedBy: "U0MARIA", StartedAt: at(2), Progress: map[string]string{"device/1001": string(remediate.DeviceLinked), "device/1001a": string(remediate.DeviceDeleted)}})
	inc.Version = 7
	fs = append(fs, fixture{"recreate_progress", inc, opts, []string{"step:reset", "step:restore", "abort"}, "step:reset"})

	inc = denied()
	inc.Steps = steps(session.StepDeny, denyDone, session.StepRecreate, done(5, "2 devices re-created · new passwords verified"),
		session.StepReset, done(7, "PIN verified changed"),
		session.StepRestore, session.StepState{Status: session.StatusAwaiting, RequestedBy: "U0MARIA", RequestedAt: at(16),
			ApprovalExpires: at(76)})
	inc.Version = 12
	fs = append(fs, fixture{"awaiting_restore", inc, opts, []string{"approve:restore", "reject:restore", "credentials", "abort"}, "approve:restore"})

	inc = denied()
	inc.Steps = steps(session.StepDeny, denyDone, session.StepRestore, session.StepState{Status: session.StatusAwaiting,
		RequestedBy: "U0MARIA", RequestedAt: at(-120), ApprovalExpires: at(-60)})
	inc.Version = 13
	fs = append(fs, fixture{"awaiting_expired", inc, opts, []string{"step:recreate", "step:reset", "step:restore", "reject:restore", "abort"}, "step:recreate"})

	inc = denied()
	inc.Live.DialPolicy = "International"
	inc.Steps = steps(session.StepDeny, denyDone, session.StepRecreate, done(5, "2 devices re-created"),
		session.StepRestore, session.StepState{Status: session.StatusFailed, RequestedBy: "U0MARIA", ApprovedBy: "U0LEAD",
			StartedAt: at(17), FinishedAt: at(18), ErrKind: "drift",
			ErrMessage: "dial permission is now International, not Deny All as the bot set it"})
	inc.Version = 15
	fs = append(fs, fixture{"failed_drift", inc, opts, []string{"step:reset", "step:restore", "force:restore", "credentials", "abort"}, "step:reset"})

	inc = denied()
	inc.Steps = steps(session.StepDeny, denyDone, session.StepRecreate, done(5, "2 devices re-created"),
		session.StepReset, session.StepState{Status: session.StatusWarnings, RequestedBy: "U0MARIA", StartedAt: at(6), FinishedAt: at(7),
			SubResults: []session.SubResult{
				{Name: "sessions", Outcome: session.OutcomeRequested, Detail: "(cannot be read back)"},
				{Name: "PIN", Outcome: session.OutcomeVerified, Detail: "changed"},
				{Name: "portal password", Outcome: session.OutcomeNotPossible, Detail: "the API offers no reset; reset email sent to j•••@acme.example"},
			}})
	inc.Delivery = map[string]session.DeliveryState{"1001a": {Error: "user_not_in_channel"}, "pin": {Delivered: true, At: at(7)}}
	inc.Version = 9
	fs = append(fs, fixture{"reset_warnings", inc, opts, []string{"step:restore", "credentials", "abort"}, "step:restore"})

	inc = denied()
	inc.Live.DialPolicy = "US and Canada"
	inc.Steps = steps(session.StepDeny, denyDone, session.StepRecreate, done(5, "2 devices re-created"),
		session.StepReset, done(7, "PIN verified changed"),
		session.StepRestore, session.StepState{Status: session.StatusDone, RequestedBy: "U0MARIA", ApprovedBy: "U0LEAD",
			RequestedAt: at(16), ApprovedAt: at(18), StartedAt: at(18), FinishedAt: at(18), Summary: "verified: US and Canada"})
	inc.State, inc.ClosedBy, inc.ClosedAt = session.StateRestored, "U0LEAD", at(18)
	inc.Version = 20
	fs = append(fs, fixture{"closed_restored", inc, opts, nil, ""})

	inc = denied()
	skipped := session.StepState{Status: session.StatusSkipped, SkipReason: "incident aborted"}
	inc.Steps = steps(session.StepDeny, denyDone, session.StepRecreate, skipped, session.StepReset, skipped, session.StepRestore, skipped)
	inc.State, inc.ClosedBy, inc.ClosedAt, inc.CloseNote = session.StateAborted, "U0MARIA", at(10), "user left the company"
	inc.Version = 6
	fs = append(fs, fixture{"closed_aborted", inc, opts, nil, ""})

	inc = denied()
	inc.Original = &session.Original{Known: false, RecordedAt: at(1), Source: testID}
	inc.Steps = steps(session.StepDeny, session.StepState{Status: session.StatusDone, RequestedBy: "U0MARIA", FinishedAt: at(1),
		Summary: "already in Deny All · no original on record"})
	fs = append(fs, fixture{"original_unknown", inc, opts, []string{"step:recreate", "step:reset", "step:restore", "abort"}, "step:recreate"})

	inc = denied()
	inc.Live.Devices, inc.Devices = nil, nil
	for i := range 200 {
		name := fmt.Sprintf("1001-%03d", i)
		inc.Live.Devices = append(inc.Live.Devices, session.LiveDevice{Device: name, Model: "Yealink T54W",
			MAC: fmt.Sprintf("80:5e:c0:00:%02x:%02x", i/256, i%256), Registered: i%3 == 0})
		inc.Devices = append(inc.Devices, session.DeviceSnapshot{Device: name, PasswordHMAC: secretHMAC,
			Sealed: map[string]string{"p": secretSealed}, Unsealable: []string{"device-provisioning-password"}})
	}
	fs = append(fs, fixture{"devices_200", inc, opts, []string{"step:recreate", "step:reset", "step:restore", "abort"}, "step:recreate"})
	return append(fs, evidenceFixtures(opts)...)
}

func TestCardGolden(t *testing.T) {
	for _, f := range fixtures() {
		t.Run(f.name, func(t *testing.T) {
			text, blocks := Card(f.inc, f.opts)
			checkLimits(t, blocks)
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false) // keep <@U…> readable in the goldens
			enc.SetIndent("", "  ")
			if err := enc.Encode(struct {
				Text   string        `json:"text"`
				Blocks []slack.Block `json:"blocks"`
			}{text, blocks}); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			path := filepath.Join("testdata", "card_"+f.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs (-got +want):\n%s", path, cmp.Diff(string(got), string(want)))
			}
		})
	}
}

func TestCardButtons(t *testing.T) {
	for _, f := range fixtures() {
		t.Run(f.name, func(t *testing.T) {
			_, blocks := Card(f.inc, f.opts)
			var ids []string
			primary := ""
			for _, b := range buttonsOf(t, blocks) {
				ids = append(ids, b.ActionID)
				if b.Style == slack.StylePrimary {
					if primary != "" {
						t.Errorf("two primary buttons: %s and %s", primary, b.ActionID)
					}
					primary = b.ActionID
				}
				if b.Value != f.inc.ID {
					t.Errorf("%s: value %q, want the incident ID", b.ActionID, b.Value)
				}
				if _, err := ParseAction(b.ActionID, b.Value); err != nil {
					t.Errorf("button %s does not parse: %v", b.ActionID, err)
				}
				if (b.Confirm == nil) != strings.HasPrefix(b.ActionID, "reject:") {
					t.Errorf("%s: confirm = %v; want one on every button but reject", b.ActionID, b.Confirm != nil)
				}
			}
			if diff := cmp.Diff(ids, f.buttons); diff != "" {
				t.Errorf("buttons (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff(primary, f.primary); diff != "" {
				t.Errorf("primary button (-got +want):\n%s", diff)
			}
		})
	}
}

// buttonsOf returns every button of the message with its block, in order.
func buttonsOf(t *testing.T, blocks []slack.Block) []*slack.ButtonBlockElement {
	t.Helper()
	var out []*slack.ButtonBlockElement
	for _, b := range blocks {
		switch b := b.(type) {
		case *slack.SectionBlock:
			if b.Accessory != nil && b.Accessory.ButtonElement != nil {
				out = append(out, b.Accessory.ButtonElement)
			}
		case *slack.ActionBlock:
			for _, e := range b.Elements.ElementSet {
				if btn, ok := e.(*slack.ButtonBlockElement); ok {
					out = append(out, btn)
				} else {
					t.Fatalf("unexpected element %T", e)
				}
			}
		}
	}
	return out
}

func confirmOf(t *testing.T, blocks []slack.Block, actionID string) string {
	t.Helper()
	for _, b := range buttonsOf(t, blocks) {
		if b.ActionID == actionID && b.Confirm != nil {
			return b.Confirm.Text.Text
		}
	}
	t.Fatalf("no button %s with a confirm dialog", actionID)
	return ""
}

func TestCardConfirmTexts(t *testing.T) {
	fs := map[string]fixture{}
	for _, f := range fixtures() {
		fs[f.name] = f
	}
	noApproval := fs["reset_warnings"].opts
	noApproval.ApprovalSteps = nil
	portal := fs["recreate_progress"].opts
	portal.PortalPassword, portal.ResetEmail = true, false
	tests := []struct {
		name, fixture, actionID string
		opts                    *CardOptions
		want                    string
	}{
		{"deny", "fresh", "step:deny", nil,
			"Set 1001@acme.example's dial permission from US and Canada to Deny All and end its live calls?"},
		{"abort before deny", "fresh", "abort", nil, "Close INC-7K2QXM without running the remaining steps?"},
		{"abort after deny", "recreate_progress", "abort", nil,
			"Close INC-7K2QXM without restoring? 1001@acme.example stays in Deny All; the original US and Canada is kept for a later restore."},
		{"reset with email", "recreate_progress", "step:reset", nil,
			"Revoke 1001@acme.example's portal sessions and set a new voicemail PIN? The new PIN is shown only to you. A password-reset email goes to j•••@acme.example. " +
				"The portal password itself is not changed: reset it in the Manager Portal."},
		{"reset with the portal password (NS_V1_PORTAL_PASSWORD)", "recreate_progress", "step:reset", &portal,
			"Revoke 1001@acme.example's portal sessions and set a new voicemail PIN? The new PIN is shown only to you. " +
				"Reset also sets a new portal password, delivered only to you."},
		{"restore request before recreate and reset", "recreate_progress", "step:restore", nil,
			"Ask for approval to set 1001@acme.example's dial permission from Deny All back to US and Canada? It runs as soon as someone approves. " +
				"Warning: Re-create and Reset not done, so the stolen credentials still work; they will be recorded as skipped."},
		{"restore without approval, reset done", "reset_warnings", "step:restore", &noApproval,
			"Set 1001@acme.example's dial permission from Deny All back to US and Canada?"},
		{"recreate lists devices", "original_unknown", "step:recreate", nil,
			"Delete and re-create 1001@acme.example's devices (1001, 1001a) with the same settings? New SIP passwords will be generated; the old ones stop working."},
		{"restore unknown original", "original_unknown", "step:restore", nil,
			"Ask for approval to restore 1001@acme.example's dial permission from Deny All (the original is unknown: you will be asked which policy to set)? " +
				"It runs as soon as someone approves. Warning: Re-create and Reset not done, so the stolen credentials still work; they will be recorded as skipped."},
		{"approve", "awaiting_restore", "approve:restore", nil,
			"Approve and run now: set 1001@acme.example's dial permission from Deny All back to US and Canada?"},
		{"force", "failed_drift", "force:restore", nil,
			"1001@acme.example's dial permission is now International (read 02:16 UTC), not Deny All as the bot set it. Set it to the original US and Canada anyway?"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := fs[tc.fixture]
			opts := f.opts
			if tc.opts != nil {
				opts = *tc.opts
			}
			_, blocks := Card(f.inc, opts)
			if diff := cmp.Diff(confirmOf(t, blocks, tc.actionID), tc.want); diff != "" {
				t.Errorf("confirm of %s (-got +want):\n%s", tc.actionID, diff)
			}
		})
	}
}

func TestCardBlockIDsChangeWithVersion(t *testing.T) {
	inc := baseIncident()
	_, a := Card(inc, CardOptions{Now: at(1)})
	inc.Version++
	_, b := Card(inc, CardOptions{Now: at(1)})
	old := map[string]bool{}
	for _, blk := range a {
		if id := blockID(blk); id != "" {
			old[id] = true
		}
	}
	n := 0
	for _, blk := range b {
		if id := blockID(blk); id != "" {
			n++
			if old[id] {
				t.Errorf("block_id %q reused across versions", id)
			}
		}
	}
	if n == 0 {
		t.Fatal("no block_ids rendered")
	}
}

func blockID(b slack.Block) string {
	if x, ok := b.(interface{ ID() string }); ok {
		return x.ID()
	}
	return ""
}

// TestCardNeverRendersSecrets renders every fixture (and the status view) and looks for the
// snapshot's sealed values, HMACs and credential fields in the JSON.
func TestCardNeverRendersSecrets(t *testing.T) {
	for _, f := range fixtures() {
		t.Run(f.name, func(t *testing.T) {
			text, blocks := Card(f.inc, f.opts)
			js, err := json.Marshal(struct {
				T string
				B []slack.Block
				S []slack.Block
				L []slack.Block
			}{text, blocks, StatusBlocks(f.inc, f.opts.Now), ListBlocks([]session.Incident{f.inc}, f.opts.Now)})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{secretSealed, secretHMAC, secretField, "hmac:", "SEALED"} {
				if bytes.Contains(js, []byte(s)) {
					t.Errorf("render contains secret material %q", s)
				}
			}
		})
	}
}

// TestCardHostileText fills every field that comes from a user or the PBX with mentions, links and
// markup: none of it may reach a mrkdwn text unescaped.
func TestCardHostileText(t *testing.T) {
	hostile := "<!channel> <!here> <@U0EVIL> <https://evil.example|click> A & B *bold*\n`x`"
	for _, evil := range []string{hostile, hostile + strings.Repeat("é<", 3000)} {
		checkHostile(t, evil)
	}
}

func checkHostile(t *testing.T, evil string) {
	inc := denied()
	inc.Reason = evil
	inc.Live.DisplayName = evil
	inc.Live.DialPolicy = evil
	inc.Live.EmailMasked = evil
	inc.Live.Devices = []session.LiveDevice{{Device: evil, Model: evil, MAC: evil}}
	inc.Devices = []session.DeviceSnapshot{{Device: evil, Unsealable: []string{evil}}}
	inc.Original = &session.Original{Policy: evil, Known: true}
	inc.Steps = steps(session.StepDeny, session.StepState{Status: session.StatusWarnings, RequestedBy: evil, FinishedAt: at(2),
		Summary: evil, SubResults: []session.SubResult{{Name: evil, Outcome: session.Outcome(evil), Detail: evil}}},
		session.StepRecreate, session.StepState{Status: session.StatusFailed, ErrMessage: evil, RequestedBy: "cli:" + evil},
		session.StepReset, session.StepState{Status: session.StatusSkipped, SkipReason: evil},
		session.StepRestore, session.StepState{Status: session.Status(evil)})
	inc.Delivery = map[string]session.DeliveryState{evil: {Error: evil}}
	opts := CardOptions{Now: at(3)}
	for _, name := range []string{"open", "aborted"} {
		t.Run(fmt.Sprintf("%s/%d", name, len(evil)), func(t *testing.T) {
			if name == "aborted" {
				inc.State, inc.ClosedBy, inc.CloseNote = session.StateAborted, evil, evil
			}
			text, blocks := Card(inc, opts)
			checkLimits(t, blocks)
			mrk := []string{text, AuditLine(session.AuditEntry{Actor: evil, Action: evil, Before: evil, After: evil, Detail: evil}),
				ReminderText(inc, at(90)), AlreadyOpenText(inc, evil), UsageText(evil), RefusalText(evil)}
			walkTexts(blocks, func(typ, s string) {
				if typ == "mrkdwn" {
					mrk = append(mrk, s)
				}
			})
			for _, s := range mrk {
				for _, bad := range []string{"<!channel>", "<!here>", "<@U0EVIL>", "<https://evil", "& B"} {
					if strings.Contains(s, bad) {
						t.Errorf("mrkdwn text contains %q:\n%s", bad, s)
					}
				}
			}
		})
	}
}

// walkTexts calls fn for every text object (plain_text or mrkdwn) in the rendered JSON.
func walkTexts(blocks []slack.Block, fn func(typ, text string)) {
	js, _ := json.Marshal(blocks)
	var v any
	_ = json.Unmarshal(js, &v)
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if typ, ok := v["type"].(string); ok && (typ == "mrkdwn" || typ == "plain_text") {
				if s, ok := v["text"].(string); ok {
					fn(typ, s)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
}

// checkLimits walks a message's JSON and asserts Block Kit's limits (SOCKETMODE.md §7).
func checkLimits(t *testing.T, blocks []slack.Block) {
	t.Helper()
	js, err := json.Marshal(blocks)
	if err != nil {
		t.Fatalf("marshal blocks: %v", err)
	}
	var bs []map[string]any
	if err := json.Unmarshal(js, &bs); err != nil {
		t.Fatalf("unmarshal blocks: %v", err)
	}
	if len(bs) == 0 || len(bs) > 50 {
		t.Errorf("%d blocks, want 1–50", len(bs))
	}
	runes := func(v any) int { s, _ := v.(string); return utf8.RuneCountInString(s) }
	textOf := func(v any) (string, string) {
		m, _ := v.(map[string]any)
		typ, _ := m["type"].(string)
		s, _ := m["text"].(string)
		return typ, s
	}
	checkText := func(where string, v any, max int, wantType string) {
		typ, s := textOf(v)
		if typ != "plain_text" && typ != "mrkdwn" || wantType != "" && typ != wantType {
			t.Errorf("%s: text type %q", where, typ)
		}
		if n := utf8.RuneCountInString(s); n < 1 || n > max {
			t.Errorf("%s: %d characters, want 1–%d: %.80q", where, n, max, s)
		}
	}
	ids := map[string]bool{}
	total := 0
	for i, b := range bs {
		where := fmt.Sprintf("block %d (%v)", i, b["type"])
		if id, ok := b["block_id"].(string); ok {
			if ids[id] || len(id) > 255 {
				t.Errorf("%s: block_id %q duplicate or too long", where, id)
			}
			ids[id] = true
		}
		switch b["type"] {
		case "header":
			checkText(where, b["text"], 150, "plain_text")
		case "section":
			if b["text"] != nil {
				checkText(where, b["text"], 3000, "")
				_, s := textOf(b["text"])
				total += utf8.RuneCountInString(s)
			}
			fields, _ := b["fields"].([]any)
			if len(fields) > 10 {
				t.Errorf("%s: %d fields", where, len(fields))
			}
			for _, f := range fields {
				checkText(where+" field", f, 2000, "")
			}
			if b["text"] == nil && len(fields) == 0 {
				t.Errorf("%s: neither text nor fields", where)
			}
			if acc, ok := b["accessory"].(map[string]any); ok {
				checkButton(t, where, acc, checkText, runes)
			}
		case "context":
			els, _ := b["elements"].([]any)
			if len(els) < 1 || len(els) > 10 {
				t.Errorf("%s: %d elements", where, len(els))
			}
			for _, e := range els {
				checkText(where, e, 3000, "")
			}
		case "actions":
			els, _ := b["elements"].([]any)
			if len(els) < 1 || len(els) > 25 {
				t.Errorf("%s: %d elements", where, len(els))
			}
			seen := map[string]bool{}
			for _, e := range els {
				m, _ := e.(map[string]any)
				id, _ := m["action_id"].(string)
				if seen[id] {
					t.Errorf("%s: action_id %q twice", where, id)
				}
				seen[id] = true
				checkButton(t, where, m, checkText, runes)
			}
		case "divider":
		default:
			t.Errorf("%s: unexpected block type", where)
		}
	}
	if total > 12000 {
		t.Errorf("%d characters of section text: risks msg_blocks_too_long", total)
	}
}

func checkButton(t *testing.T, where string, b map[string]any, checkText func(string, any, int, string), runes func(any) int) {
	t.Helper()
	if b["type"] != "button" {
		t.Errorf("%s: element type %v", where, b["type"])
		return
	}
	checkText(where+" button", b["text"], 75, "plain_text")
	if n := runes(b["action_id"]); n < 1 || n > 255 {
		t.Errorf("%s: action_id length %d", where, n)
	}
	if n := runes(b["value"]); n > 2000 {
		t.Errorf("%s: value length %d", where, n)
	}
	if s, ok := b["style"].(string); ok && s != "primary" && s != "danger" {
		t.Errorf("%s: style %q", where, s)
	}
	if c, ok := b["confirm"].(map[string]any); ok {
		checkText(where+" confirm title", c["title"], 100, "plain_text")
		checkText(where+" confirm text", c["text"], 300, "")
		checkText(where+" confirm confirm", c["confirm"], 30, "plain_text")
		checkText(where+" confirm deny", c["deny"], 30, "plain_text")
	}
}
