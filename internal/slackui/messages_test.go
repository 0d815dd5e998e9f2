package slackui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/compromised-responder/bot/internal/session"
)

func TestTexts(t *testing.T) {
	inc := denied()
	tests := []struct {
		name, got, want string
	}{
		{"usage escapes the problem", UsageText("`<!here>` is not a user"),
			"⚠️ `&lt;!here&gt;` is not a user\n\nUsage:\n" + usageLines},
		{"refusal", RefusalText("approve your own request"),
			"🚫 You are not allowed to approve your own request. Nothing was changed, and the attempt was recorded in the audit."},
		{"not in channel", NotInChannelText("U0BOT"),
			"I'm not in this channel, so I can't post the incident card here. Invite me with `/invite @bot` (<@U0BOT>), then run the command again. Nothing was opened."},
		{"not in channel, odd bot id", NotInChannelText("<!channel>"),
			"I'm not in this channel, so I can't post the incident card here. Invite me with `/invite @bot` (the bot), then run the command again. Nothing was opened."},
		{"already open with permalink", AlreadyOpenText(inc, "https://acme.slack.com/archives/C0INC/p1710382440000100"),
			"1001@acme.example already has an open incident, *INC-7K2QXM*, opened by <@U0MARIA> at 02:14 UTC: see <https://acme.slack.com/archives/C0INC/p1710382440000100|its card>. Nothing new was opened."},
		{"already open with channel", AlreadyOpenText(inc, "C0INC"),
			"1001@acme.example already has an open incident, *INC-7K2QXM*, opened by <@U0MARIA> at 02:14 UTC: see its card in <#C0INC>. Nothing new was opened."},
		{"already open, link injection refused", AlreadyOpenText(inc, "https://x|<!here>"),
			"1001@acme.example already has an open incident, *INC-7K2QXM*, opened by <@U0MARIA> at 02:14 UTC: see its card. Nothing new was opened."},
		{"already done", AlreadyText(*inc.Step(session.StepDeny)), "Deny all calls is already done by <@U0MARIA> at 02:15 UTC."},
		{"already running", AlreadyText(session.StepState{Step: session.StepRecreate, Status: session.StatusRunning, RequestedBy: "U0MARIA", StartedAt: at(2)}),
			"Re-create devices is already running (started by <@U0MARIA> at 02:16 UTC)."},
		{"already awaiting", AlreadyText(session.StepState{Step: session.StepRestore, Status: session.StatusAwaiting, RequestedBy: "cli:ops", RequestedAt: at(3)}),
			"Restore dial permission already awaits approval (asked by ops (CLI) at 02:17 UTC)."},
		{"already skipped", AlreadyText(session.StepState{Step: session.StepReset, Status: session.StatusSkipped, SkipReason: "restored <first>"}),
			"Reset password + PIN was skipped: restored &lt;first&gt;."},
		{"busy", BusyText(1500 * time.Millisecond), "⏳ The bot is busy right now, so nothing was started. Please try again in 2 s."},
		{"busy, under a second", BusyText(0), "⏳ The bot is busy right now, so nothing was started. Please try again in 1 s."},
		{"restarting", RestartingText(), "⏳ The bot is restarting, so nothing was started. Please try again in a few seconds."},
		{"audit step", AuditLine(session.AuditEntry{IncidentID: testID, Actor: "U0MARIA", Action: "step.deny.done", Step: session.StepDeny,
			Before: "US and Canada", After: "Deny All", Detail: "verified · 1 live call ended"}),
			"<@U0MARIA> · step deny done · US and Canada → Deny All · verified · 1 live call ended · INC-7K2QXM"},
		{"audit refusal", AuditLine(session.AuditEntry{Actor: "U0EVE", Action: "refused.unauthorized", Step: session.StepRestore, Detail: "<!channel> not a responder"}),
			"<@U0EVE> · restore refused unauthorized · &lt;!channel&gt; not a responder"},
		{"audit bot, after only", AuditLine(session.AuditEntry{Actor: "bot", Action: "snapshot.recorded", After: "2 devices"}),
			"the bot · snapshot recorded · — → 2 devices"},
		{"reminder", ReminderText(inc, at(121)),
			"⏰ <@U0MARIA> 1001@acme.example has been in Deny All for 2h 0m (since 02:15 UTC). When the devices and credentials are safe, " +
				"restore the dial permission (it was US and Canada), or abort the incident to keep the user blocked. (INC-7K2QXM)"},
		{"reminder next day, original unknown", ReminderText(func() session.Incident {
			i := denied()
			i.Original = &session.Original{Known: false}
			return i
		}(), at(26*60)),
			"⏰ <@U0MARIA> 1001@acme.example has been in Deny All for 1d 1h (since 14 Mar 02:15 UTC). When the devices and credentials are safe, " +
				"restore the dial permission (the original is unknown, so Restore asks which policy to set), or abort the incident to keep the user blocked. (INC-7K2QXM)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.got, tc.want); diff != "" {
				t.Errorf("(-got +want):\n%s", diff)
			}
		})
	}
}

func TestHelpTextNamesEveryForm(t *testing.T) {
	h := HelpText()
	for _, want := range []string{"<user>@<domain> [reason…]", "<user> <domain>", "plan", "status", "list", "help"} {
		if !strings.Contains(h, want) {
			t.Errorf("HelpText lacks %q", want)
		}
	}
}

func TestListBlocks(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		wantFirst string
		wantLast  string
	}{
		{"none", 0, "No open incidents.", "No open incidents."},
		{"one", 1, "*Open incidents* (1)",
			"*INC-7K2QXM*  1001@acme.example — Jane Doe · opened by <@U0MARIA> 02:14 UTC (1h 0m ago) in <#C0INC>\ndeny ✅ · recreate ⬜ · reset ⬜ · restore ⬜"},
		{"hundred", 100, "*Open incidents* (100)", "+55 more: use `/compromised status <user>@<domain>`"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			incs := make([]session.Incident, tc.n)
			for i := range incs {
				incs[i] = denied()
			}
			blocks := ListBlocks(incs, at(60))
			checkLimits(t, blocks)
			var texts []string
			walkTexts(blocks, func(_, s string) { texts = append(texts, s) })
			if diff := cmp.Diff([]string{texts[0], texts[len(texts)-1]}, []string{tc.wantFirst, tc.wantLast}); diff != "" {
				t.Errorf("first and last text (-got +want):\n%s", diff)
			}
		})
	}
}

func TestStatusBlocksHaveNoButtons(t *testing.T) {
	for _, f := range fixtures() {
		t.Run(f.name, func(t *testing.T) {
			blocks := StatusBlocks(f.inc, f.opts.Now)
			checkLimits(t, blocks)
			if b := buttonsOf(t, blocks); len(b) != 0 {
				t.Errorf("status has %d buttons", len(b))
			}
		})
	}
}

func TestSecretsBlocks(t *testing.T) {
	secrets := []SecretLine{
		SoftphoneSecret("1001a", "p@ss<w>rd&`x`*y*"),
		DeskPhoneNotice("1001"),
		PINSecret("1001@acme.example", "493817"),
	}
	blocks := SecretsBlocks(secrets)
	checkLimits(t, blocks)
	var plainTexts, mrkdwnTexts []string
	walkTexts(blocks, func(typ, s string) {
		if typ == "plain_text" {
			plainTexts = append(plainTexts, s)
		} else {
			mrkdwnTexts = append(mrkdwnTexts, s)
		}
	})
	// Each value is shown exactly, as plain text, once; nothing else is plain text.
	if diff := cmp.Diff(plainTexts, []string{"p@ss<w>rd&`x`*y*", "493817"}); diff != "" {
		t.Errorf("secret values (-got +want):\n%s", diff)
	}
	want := []string{
		"🔐 *New credentials* — only you can see this message. They are not stored anywhere readable, so use them now.",
		"*SIP password of device 1001a*\nEnter this SIP password in the softphone (or on the phone) now; the old one no longer works.",
		"*Desk phone 1001*\nIt picks its new credentials up at its next provisioning check or reboot; reboot it to do that now.",
		"*Voicemail PIN of 1001@acme.example*\nGive it to the user over a channel you have verified (not by e-mail to a possibly compromised mailbox).",
	}
	if diff := cmp.Diff(mrkdwnTexts, want); diff != "" {
		t.Errorf("labels and instructions (-got +want):\n%s", diff)
	}
	if strings.Contains(SecretsFallbackText, "493817") {
		t.Error("fallback text holds a secret")
	}
	many := make([]SecretLine, MaxSecretsPerMessage)
	for i := range many {
		many[i] = SoftphoneSecret(fmt.Sprintf("d%d", i), "pw")
	}
	checkLimits(t, SecretsBlocks(many))
}

func TestCardWithoutLiveState(t *testing.T) {
	inc := baseIncident()
	inc.Live = nil
	inc.Reason = ""
	_, blocks := Card(inc, CardOptions{Now: at(1)})
	checkLimits(t, blocks)
	var texts []string
	walkTexts(blocks, func(_, s string) { texts = append(texts, s) })
	want := "*Dial permission and devices*  not read from the PBX yet"
	found := false
	for _, s := range texts {
		found = found || s == want
	}
	if !found {
		t.Errorf("no %q in %q", want, texts)
	}
	if got := confirmOf(t, blocks, "step:deny"); got != "Set 1001@acme.example's dial permission from its current policy to Deny All and end its live calls?" {
		t.Errorf("deny confirm = %q", got)
	}
}
