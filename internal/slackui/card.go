package slackui

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// CardOptions are the inputs of a card render that are not in the incident.
type CardOptions struct {
	// Now dates relative things (approval expiry, whether a lease lapsed, whether to print the date).
	Now time.Time
	// ApprovalSteps are the steps that need a second person's approval (APPROVAL_STEPS).
	ApprovalSteps map[session.Step]bool
	// Approvers names who may approve, as trusted mrkdwn made by the app from APPROVERS,
	// e.g. "<!subteam^S0ONCALL>" or "<@U1>, <@U2>". Empty: "a second responder".
	Approvers string
	// DenyPolicy is NS_DENY_POLICY, used until the incident records the one the deny step set.
	DenyPolicy string
	// ResetEmail says NS_RESET_EMAIL_TEMPLATE is set, so reset also e-mails the user.
	ResetEmail bool
	// PortalPassword says NS_V1_PORTAL_PASSWORD is on, so reset also sets a new portal password
	// (else the reset dialogs say to reset it in the Manager Portal).
	PortalPassword bool
}

// Block Kit budgets (SOCKETMODE.md §7), with room to spare for the fixed parts of a block.
const (
	maxSectionText = 2900
	maxDeviceLines = 25
	maxSubLines    = 20
	maxErrText     = 500
)

// Card renders an incident as the card in its channel: the fallback text for notifications (no
// mentions, no user text) and the blocks. It is a pure function of the incident and the options.
// An open incident gets buttons whose block_ids carry inc.Version; a closed one is a record with
// none. The result stays within Block Kit's limits whatever the incident holds (e.g. 200 devices).
func Card(inc session.Incident, o CardOptions) (fallback string, blocks []slack.Block) {
	r := &renderer{inc: &inc, o: o, buttons: inc.Open()}
	return r.fallback(), r.blocks()
}

// StatusBlocks renders an incident for the ephemeral answer to `status`: the card without buttons.
func StatusBlocks(inc session.Incident, now time.Time) []slack.Block {
	r := &renderer{inc: &inc, o: CardOptions{Now: now}}
	return r.blocks()
}

// StepBlocks renders one step's section (and its buttons, when buttons is set and inc is open)
// exactly as the card shows it: the same action_id, value, block_id and confirm dialog. The
// opener's notice (openernotice.go) carries the deny step this way, so a click on it is a
// click on the card's button.
func StepBlocks(inc session.Incident, o CardOptions, s session.Step, buttons bool) []slack.Block {
	r := &renderer{inc: &inc, o: o, buttons: buttons && inc.Open()}
	for i, d := range remediate.Runbook() {
		if d.Step == s {
			return r.step(i+1, d)
		}
	}
	return nil
}

type renderer struct {
	inc         *session.Incident
	o           CardOptions
	buttons     bool // render buttons (an open incident's card)
	primaryUsed bool // the first actionable step button got the primary style
}

func (r *renderer) blocks() []slack.Block {
	bs := []slack.Block{r.header(), r.opened(), slack.NewDividerBlock()}
	bs = append(bs, r.live()...)
	if ev := append(r.evidence(), r.gate()...); len(ev) > 0 {
		bs = append(bs, slack.NewDividerBlock())
		bs = append(bs, ev...)
	}
	bs = append(bs, slack.NewDividerBlock())
	for i, d := range remediate.Runbook() {
		bs = append(bs, r.step(i+1, d)...)
	}
	bs = append(bs, slack.NewDividerBlock())
	return append(bs, r.footer()...)
}

func (r *renderer) fallback() string {
	inc := r.inc
	var b strings.Builder
	switch inc.State {
	case session.StateRestored:
		fmt.Fprintf(&b, "Closed (restored): %s (%s)", inc.Key(), inc.ID)
	case session.StateAborted:
		fmt.Fprintf(&b, "Closed (aborted): %s (%s)", inc.Key(), inc.ID)
	default:
		fmt.Fprintf(&b, "🚨 Compromised: %s (%s)", inc.Key(), inc.ID)
	}
	for i, d := range remediate.Runbook() {
		s := d.Step
		sep := " — "
		if i > 0 {
			sep = " · "
		}
		word := statusWord(inc.Step(s).Status)
		if w := reached(d, inc.Step(s)); w != "" {
			word = w // "deny contained": what the engineer waits for, before the step ends
		}
		fmt.Fprintf(&b, "%s%s %s", sep, s, word)
	}
	return esc(truncate(b.String(), 1000))
}

func (r *renderer) header() slack.Block {
	inc := r.inc
	prefix := "🚨 Compromised: "
	switch inc.State {
	case session.StateRestored:
		prefix = "✅ Closed (restored): "
	case session.StateAborted:
		prefix = "⏹ Closed (aborted): "
	}
	title := prefix + inc.Key()
	if inc.Live != nil && inc.Live.DisplayName != "" {
		title += " — " + remediate.CleanReason(inc.Live.DisplayName)
	}
	suffix := " · " + inc.ID
	title = truncate(title, 150-utf8.RuneCountInString(suffix)) + suffix
	return slack.NewHeaderBlock(plain(title))
}

func (r *renderer) opened() slack.Block {
	els := []slack.MixedElement{mrkdwn(fmt.Sprintf("opened by %s · %s", userRef(r.inc.OpenedBy), r.clock(r.inc.CreatedAt)))}
	if reason := remediate.CleanReason(r.inc.Reason); reason != "" {
		// plain_text: Slack renders no mention, link or formatting in it, whatever the user typed.
		els = append(els, plainVerbatim("“"+reason+"”"))
	}
	return slack.NewContextBlock("", els...)
}

func (r *renderer) live() []slack.Block {
	inc := r.inc
	lv := inc.Live
	if lv == nil {
		return []slack.Block{slack.NewSectionBlock(mrkdwn("*Dial permission and devices*  not read from the PBX yet"+r.wasNote("")), nil, nil)}
	}
	lines := []string{fmt.Sprintf("*Dial permission*  %s%s", esc(short(lv.DialPolicy, 100)), r.wasNote(lv.DialPolicy))}
	unread := r.unread()
	if unread != "" {
		lines = append(lines, "*Active calls*  "+unread)
	} else {
		lines = append(lines, fmt.Sprintf("*Active calls*  %d", lv.ActiveCalls))
	}
	if lv.EmailMasked != "" {
		l := "*Email*  " + esc(short(lv.EmailMasked, 100))
		if inc.EmailAtOpen != "" && inc.EmailAtOpen != lv.EmailMasked {
			l += "  _(changed since the incident opened: was " + esc(short(inc.EmailAtOpen, 100)) + ")_"
		}
		lines = append(lines, l)
	}
	bs := []slack.Block{slack.NewSectionBlock(mrkdwn(strings.Join(lines, "\n")), nil, nil)}
	if unread != "" {
		bs = append(bs, slack.NewSectionBlock(mrkdwn("*Devices*  "+unread), nil, nil))
		return append(bs, slack.NewContextBlock("", mrkdwn("as of "+r.clock(lv.ReadAt)+" · read from the PBX")))
	}
	dev := fmt.Sprintf("*Devices* (%d)", len(lv.Devices))
	if len(lv.Devices) == 0 {
		dev = "*Devices*  none"
	}
	items := make([]string, 0, len(lv.Devices))
	for _, d := range lv.Devices {
		items = append(items, "• "+deviceLine(d))
	}
	dev = joinCapped(dev, items, maxDeviceLines, maxSectionText, "devices")
	bs = append(bs, slack.NewSectionBlock(mrkdwn(dev), nil, nil))
	return append(bs, slack.NewContextBlock("", mrkdwn("as of "+r.clock(lv.ReadAt)+" · read from the PBX")))
}

// unread is what the card shows for the devices and live calls when they are not read: still
// being read after the open (its card is posted after the user read), or why not ("" = read).
func (r *renderer) unread() string {
	lv := r.inc.Live
	again := " · `/compromised status " + esc(r.inc.Key()) + "` reads them again"
	switch {
	case remediate.LiveReading(lv, r.o.Now):
		return "_reading…_"
	case lv.Pending:
		return "⚠️ not read (the read was interrupted)" + again
	case lv.ReadErr != "":
		return "⚠️ could not be read: " + esc(short(lv.ReadErr, maxErrText)) + again
	}
	return ""
}

// wasNote tells where the user's original dial permission stands next to the live one.
func (r *renderer) wasNote(live string) string {
	o := r.inc.Original
	switch {
	case o == nil:
		return ""
	case !o.Known:
		return "  _(original unknown: *Restore* asks which policy to set)_"
	case r.inc.State == session.StateRestored:
		return ""
	case o.Policy == live:
		return ""
	case r.inc.Open():
		return "  _(was: " + esc(short(o.Policy, 100)) + " — kept until restore)_"
	}
	return "  _(was: " + esc(short(o.Policy, 100)) + " — kept for a later restore)_"
}

func deviceLine(d session.LiveDevice) string {
	parts := []string{"`" + codeSafe(short(d.Device, 64)) + "`"}
	if d.Model != "" {
		parts = append(parts, esc(short(d.Model, 64)))
	}
	if d.MAC != "" {
		parts = append(parts, esc(formatMAC(d.MAC)))
	}
	if d.Registered {
		parts = append(parts, "registered")
	} else {
		parts = append(parts, "unregistered")
	}
	return strings.Join(parts, " · ")
}

// formatMAC writes a MAC as aa:bb:cc:dd:ee:ff whatever separators and case the PBX used; anything
// that is not 12 hex digits is shown as it came (shortened).
func formatMAC(s string) string {
	var hex []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
			hex = append(hex, c)
		case 'A' <= c && c <= 'F':
			hex = append(hex, c+'a'-'A')
		case c == ':', c == '-', c == '.', c == ' ':
		default:
			return short(s, 32)
		}
	}
	if len(hex) != 12 {
		return short(s, 32)
	}
	out := make([]byte, 0, 17)
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, hex[i], hex[i+1])
	}
	return string(out)
}

// footer is the incident-wide part: credential delivery problems, Abort and Re-send credentials while
// open, or the closing line of a closed incident.
func (r *renderer) footer() []slack.Block {
	inc := r.inc
	var bs []slack.Block
	if !inc.Open() {
		bs = append(bs, slack.NewSectionBlock(mrkdwn(r.closingLine()), nil, nil))
		return append(bs, slack.NewContextBlock("", mrkdwn("audit trail in the thread")))
	}
	if lines := deliveryLines(inc.Delivery); len(lines) > 0 {
		bs = append(bs, slack.NewSectionBlock(mrkdwn(joinCapped(lines[0], lines[1:], maxDeviceLines, maxSectionText, "devices")), nil, nil))
	}
	if r.buttons {
		var els []slack.BlockElement
		if inc.Step(session.StepRecreate).Status.Finished() || inc.Step(session.StepReset).Status.Finished() {
			els = append(els, r.button("credentials", "Re-send credentials", slack.StyleDefault, r.confirm(ActionCredentials, "")))
		}
		els = append(els, r.button("abort", "Abort incident", slack.StyleDanger, r.confirm(ActionAbort, "")))
		_, tok := remediate.DevicesMissing(inc)
		bs = append(bs, slack.NewActionBlock(withMissing(fmt.Sprintf("x:v%d", inc.Version), tok), els...))
	}
	return append(bs, slack.NewContextBlock("", mrkdwn("audit trail in the thread")))
}

func deliveryLines(d map[string]session.DeliveryState) []string {
	keys := make([]string, 0, len(d))
	for k, v := range d {
		if !v.Delivered {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		what := "`" + codeSafe(short(k, 64)) + "`"
		if k == "pin" {
			what = "the voicemail PIN"
		}
		l := "⚠️ New credentials for " + what + " were not delivered"
		if e := d[k].Error; e != "" {
			l += " (" + esc(short(e, 200)) + ")"
		}
		out = append(out, l+": press *Re-send credentials*")
	}
	return out
}

func (r *renderer) closingLine() string {
	inc := r.inc
	by := ""
	if inc.ClosedBy != "" {
		by = " by " + userRef(inc.ClosedBy)
	}
	if !inc.ClosedAt.IsZero() {
		by += " at " + r.clock(inc.ClosedAt)
	}
	var l string
	switch inc.State {
	case session.StateRestored:
		l = "✅ *Closed: restored*" + by
		if inc.Original != nil && inc.Original.Known {
			l += " — dial permission back to " + esc(short(inc.Original.Policy, 100)) + "."
		}
	case session.StateAborted:
		l = "⏹ *Closed: aborted*" + by + " — "
		switch deny := inc.Step(session.StepDeny).Status; {
		case deny.Finished():
			l += esc(inc.Key()) + " stays in " + esc(short(r.denyPolicy(), 100)) + "; "
			if o := inc.Original; o != nil && o.Known {
				l += "the original " + esc(short(o.Policy, 100)) + " is kept for a later restore."
			} else {
				l += "the original dial permission is unknown."
			}
		case deny == session.StatusReady || deny == session.StatusSkipped:
			l += "no change was made on the PBX."
		default:
			l += "deny did not finish: check the user's dial permission on the PBX."
		}
	default:
		l = "*Closed* (" + esc(short(string(inc.State), 40)) + ")" + by
	}
	if inc.CloseNote != "" {
		l += "\nNote: " + esc(short(inc.CloseNote, maxErrText))
	}
	return l
}

func (r *renderer) denyPolicy() string { return incidentDenyPolicy(r.inc, r.o.DenyPolicy) }

// incidentDenyPolicy is the incident's deny policy (recorded by deny), else the configured one
// (NS_DENY_POLICY), else the default.
func incidentDenyPolicy(inc *session.Incident, configured string) string {
	switch {
	case inc.DenyPolicy != "":
		return inc.DenyPolicy
	case configured != "":
		return configured
	}
	return remediate.DefaultDenyPolicy
}
