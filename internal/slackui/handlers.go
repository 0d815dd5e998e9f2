package slackui

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// jobTimeout bounds one command or click, step run included.
const jobTimeout = 5 * time.Minute

// work runs one acknowledged envelope on a pool worker.
func (a *App) work(ctx context.Context, j job) {
	ctx, cancel := context.WithTimeout(ctx, jobTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			// The value may be anything; log its type only, never its contents (could hold a secret).
			a.log.Error().Str("panic", fmt.Sprintf("%T", r)).Str("stack", string(debug.Stack())).Msg("job panicked")
		}
	}()
	if first, err := a.seen.first(ctx, "env:"+j.envelopeID); err != nil {
		a.log.Warn().Err(err).Msg("dedupe envelope")
	} else if !first {
		a.m.Duplicates.WithLabelValues("envelope").Inc()
		a.log.Info().Str("envelope", j.envelopeID).Msg("duplicate envelope ignored")
		return
	}
	switch {
	case j.command != nil:
		a.command(ctx, j.command)
	case j.callback != nil:
		a.action(ctx, j.callback)
	}
}

// ---- commands -------------------------------------------------------------------------------

func (a *App) command(ctx context.Context, c *slack.SlashCommand) {
	// A slash command redelivered under a new envelope (reported after a socket drop) still
	// carries its trigger_id.
	if c.TriggerID != "" {
		if first, err := a.seen.first(ctx, "cmd:"+c.TriggerID+":"+c.UserID); err != nil {
			a.log.Warn().Err(err).Msg("dedupe command")
		} else if !first {
			a.m.Duplicates.WithLabelValues("command").Inc()
			return
		}
	}
	cmd := ParseCommand(c.Text)
	route, ok := commandRoutes[cmd.Kind]
	if !ok {
		route = commandRoutes[KindUsage]
	}
	if route.who != anyone {
		ok, err := a.auth.allowed(ctx, a.cfg.Responders, c.UserID)
		if err != nil {
			a.log.Warn().Err(err).Msg("authorize command")
		}
		if !ok {
			detail := "/compromised " + string(cmd.Kind)
			if cmd.User != "" {
				detail += " " + cmd.User + "@" + cmd.Domain
			}
			a.auditGlobal(ctx, session.AuditEntry{Actor: c.UserID, Action: "refused.unauthorized", Detail: detail})
			a.replyCommand(ctx, c, RefusalText(route.what), nil)
			return
		}
	}
	route.handle(a, ctx, c, cmd)
}

func (a *App) cmdHelp(ctx context.Context, c *slack.SlashCommand, _ Command) {
	a.replyCommand(ctx, c, HelpText(), nil)
}

func (a *App) cmdUsage(ctx context.Context, c *slack.SlashCommand, cmd Command) {
	a.replyCommand(ctx, c, UsageText(cmd.Problem), nil)
}

func (a *App) cmdOpen(ctx context.Context, c *slack.SlashCommand, cmd Command) {
	if strings.HasPrefix(c.ChannelID, "D") || c.ChannelName == "directmessage" {
		a.replyCommand(ctx, c, DMRefusalText(), nil)
		return
	}
	ch, err := a.api.channelInfo(ctx, c.ChannelID)
	switch code := slackCode(err); {
	case err == nil && (ch.IsIM || ch.IsMpIM):
		a.replyCommand(ctx, c, DMRefusalText(), nil)
		return
	case err == nil && !ch.IsMember, code == "channel_not_found", code == "not_in_channel":
		a.replyCommand(ctx, c, NotInChannelText(a.botUserID), nil)
		return
	case err != nil:
		a.log.Warn().Err(err).Msg("conversations.info")
		a.replyCommand(ctx, c, "⚠️ I could not check this channel with Slack ("+esc(code)+"). Nothing was opened; please try again.", nil)
		return
	}
	inc, created, err := a.eng.Open(ctx, remediate.OpenRequest{User: cmd.User, Domain: cmd.Domain, Reason: cmd.Reason,
		Actor: c.UserID, Channel: c.ChannelID})
	if err != nil {
		a.logErr(err, "", "open incident")
		a.replyCommand(ctx, c, "⚠️ "+esc(remediate.UserMessage(err))+". Nothing was opened.", nil)
		return
	}
	if !created {
		a.replyCommand(ctx, c, AlreadyOpenText(inc, a.cardLink(ctx, inc)), nil)
		return
	}
	text, blocks := Card(inc, a.cardOptions(a.now()))
	ts, err := a.api.post(ctx, c.ChannelID, "", text, blocks)
	if err != nil {
		// Nothing may stay open without a card.
		if derr := a.eng.Discard(context.WithoutCancel(ctx), inc.ID); derr != nil {
			a.log.Warn().Err(derr).Str("incident", inc.ID).Msg("discard incident after a failed card post")
		}
		switch code := slackCode(err); code {
		case "not_in_channel", "channel_not_found":
			a.replyCommand(ctx, c, NotInChannelText(a.botUserID), nil)
		default:
			a.log.Warn().Err(err).Str("incident", inc.ID).Msg("post card")
			a.replyCommand(ctx, c, "⚠️ I could not post the incident card ("+esc(code)+"), so nothing was opened. Please try again.", nil)
		}
		return
	}
	for attempt := 0; ; attempt++ {
		_, err = a.eng.SetCard(ctx, inc.ID, c.ChannelID, ts)
		if err == nil || attempt == 2 || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		a.log.Error().Err(err).Str("incident", inc.ID).Msg("record the card's ts: its thread cannot be kept")
	}
	a.changes.Changed(ctx, inc.ID)
}

// cardLink is the permalink of an incident's card, or its channel when Slack cannot give one
// (the card is still being posted, or was deleted): the answer must not wait on it.
func (a *App) cardLink(ctx context.Context, inc session.Incident) string {
	if inc.MessageTS == "" {
		return inc.Channel
	}
	link, err := a.api.permalink(ctx, inc.Channel, inc.MessageTS)
	if err != nil {
		a.log.Info().Str("incident", inc.ID).Str("code", slackCode(err)).Msg("no permalink for the card; naming its channel")
		return inc.Channel
	}
	return link
}

func (a *App) cmdPlan(ctx context.Context, c *slack.SlashCommand, cmd Command) {
	p, err := a.eng.Plan(ctx, cmd.User, cmd.Domain)
	if err != nil {
		a.logErr(err, "", "plan")
		a.replyCommand(ctx, c, "⚠️ "+esc(remediate.UserMessage(err)), nil)
		return
	}
	a.replyCommand(ctx, c, "Dry run for "+esc(p.User+"@"+p.Domain)+": nothing was changed", PlanBlocks(p))
}

func (a *App) cmdStatus(ctx context.Context, c *slack.SlashCommand, cmd Command) {
	var inc session.Incident
	var err error
	switch {
	case cmd.IncidentID != "":
		inc, err = a.store.Get(ctx, cmd.IncidentID)
	case cmd.User != "":
		inc, err = a.store.FindOpen(ctx, cmd.User, cmd.Domain)
	default:
		a.cmdList(ctx, c, cmd)
		return
	}
	if errors.Is(err, session.ErrNotFound) {
		what := cmd.IncidentID
		if what == "" {
			what = "an open incident for " + cmd.User + "@" + cmd.Domain
		}
		a.replyCommand(ctx, c, "I found no "+esc(what)+".", nil)
		return
	}
	if err != nil {
		a.logErr(err, "", "status")
		a.replyCommand(ctx, c, "⚠️ "+esc(remediate.UserMessage(err)), nil)
		return
	}
	if inc.Open() {
		// status refreshes the live state (a read), so the card is honestly dated too.
		if fresh, err := a.eng.Refresh(ctx, inc.ID); err == nil {
			inc = fresh
		} else {
			a.logErr(err, inc.ID, "refresh")
		}
	}
	a.replyCommand(ctx, c, inc.ID+" "+inc.Key(), StatusBlocks(inc, a.now()))
}

func (a *App) cmdList(ctx context.Context, c *slack.SlashCommand, _ Command) {
	incs, err := a.store.ListOpen(ctx)
	if err != nil {
		a.logErr(err, "", "list")
		a.replyCommand(ctx, c, "⚠️ I could not read the open incidents; please try again.", nil)
		return
	}
	a.replyCommand(ctx, c, fmt.Sprintf("%d open incident(s)", len(incs)), ListBlocks(incs, a.now()))
}

// replyCommand answers the person who ran a command, ephemerally: through the response_url
// (which works in channels the bot is not in), else chat.postEphemeral.
func (a *App) replyCommand(ctx context.Context, c *slack.SlashCommand, text string, blocks []slack.Block) {
	if c.ResponseURL != "" {
		err := a.api.respond(ctx, c.ResponseURL, text, blocks)
		if err == nil {
			return
		}
		a.log.Info().Str("code", slackCode(err)).Msg("response_url failed (expired?); using chat.postEphemeral")
	}
	if err := a.api.ephemeral(ctx, c.ChannelID, c.UserID, text, blocks); err != nil {
		a.log.Warn().Err(err).Msg("reply to command")
	}
}

// ---- buttons --------------------------------------------------------------------------------

// click is one decoded button press with the incident as stored now.
type click struct {
	cb   *slack.InteractionCallback
	act  Action
	user string
	inc  session.Incident
}

func (a *App) action(ctx context.Context, cb *slack.InteractionCallback) {
	acts := ActionsFrom(*cb)
	if len(acts) == 0 {
		a.replyAction(ctx, cb, "⚠️ Unknown button: nothing was done.", nil)
		return
	}
	act := acts[0]
	var actionTS string
	for _, ba := range cb.ActionCallback.BlockActions {
		if ba != nil && ba.ActionID == act.ActionID() {
			actionTS = ba.ActionTs
			break
		}
	}
	key := "act:" + actionTS + ":" + cb.User.ID + ":" + act.ActionID() + ":" + act.IncidentID
	if first, err := a.seen.first(ctx, key); err != nil {
		a.log.Warn().Err(err).Msg("dedupe action")
	} else if !first {
		a.m.Duplicates.WithLabelValues("action").Inc()
		return
	}
	route := actionRoutes[act.Kind]
	inc, err := a.store.Get(ctx, act.IncidentID)
	if err != nil {
		a.logErr(err, act.IncidentID, "read incident for a click")
		a.replyAction(ctx, cb, "⚠️ "+esc(remediate.UserMessage(err)), nil)
		return
	}
	c := click{cb: cb, act: act, user: cb.User.ID, inc: inc}
	if !a.mayClick(ctx, route.who, c) {
		a.auditIncident(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: c.user, Action: "refused.unauthorized",
			Step: act.Step, Detail: "button " + act.ActionID()})
		a.replyAction(ctx, cb, RefusalText(route.what), nil)
		return
	}
	route.handle(a, ctx, c)
}

func (a *App) mayClick(ctx context.Context, who role, c click) bool {
	check := func(list []string) bool {
		ok, err := a.auth.allowed(ctx, list, c.user)
		if err != nil {
			a.log.Warn().Err(err).Msg("authorize click")
		}
		return ok
	}
	switch who {
	case anyone:
		return true
	case responders:
		return check(a.cfg.Responders)
	case approvers:
		return check(a.cfg.Approvers)
	case approversOrRequester:
		if check(a.cfg.Approvers) {
			return true
		}
		return c.user == c.inc.Step(c.act.Step).RequestedBy && check(a.cfg.Responders)
	}
	return false
}

func (a *App) actStep(ctx context.Context, c click) {
	st := c.inc.Step(c.act.Step)
	if c.inc.Open() {
		switch st.Status {
		case session.StatusRunning, session.StatusDone, session.StatusWarnings, session.StatusSkipped:
			a.replyAction(ctx, c.cb, AlreadyText(*st), nil)
			return
		case session.StatusAwaiting:
			if st.ApprovalPending(a.now()) {
				a.replyAction(ctx, c.cb, AlreadyText(*st), nil)
				return
			}
			// An expired request: the "Request again" button asks anew.
		}
	}
	res, err := a.eng.Request(ctx, c.inc.ID, c.act.Step, c.user, remediate.RunOptions{})
	a.afterRun(ctx, c, c.act.Step, c.user, res, err)
}

func (a *App) actForce(ctx context.Context, c click) {
	res, err := a.eng.Request(ctx, c.inc.ID, session.StepRestore, c.user, remediate.RunOptions{Force: true})
	a.afterRun(ctx, c, session.StepRestore, c.user, res, err)
}

func (a *App) actApprove(ctx context.Context, c click) {
	requester := c.inc.Step(c.act.Step).RequestedBy
	res, err := a.eng.Approve(ctx, c.inc.ID, c.act.Step, c.user)
	if errors.Is(err, session.ErrSelfApproval) {
		a.auditIncident(ctx, session.AuditEntry{IncidentID: c.inc.ID, Actor: c.user, Action: "refused.self_approval",
			Step: c.act.Step, Detail: "the requester may not approve their own request"})
		a.replyAction(ctx, c.cb, RefusalText("approve your own request"), nil)
		return
	}
	if r := res.Incident.Step(c.act.Step).RequestedBy; r != "" && res.Incident.ID != "" {
		requester = r
	}
	a.afterRun(ctx, c, c.act.Step, requester, res, err)
}

func (a *App) actReject(ctx context.Context, c click) {
	if _, err := a.eng.Reject(ctx, c.inc.ID, c.act.Step, c.user); err != nil {
		a.answerErr(ctx, c, err)
	}
}

func (a *App) actCredentials(ctx context.Context, c click) {
	res, err := a.eng.Credentials(ctx, c.inc.ID, c.user)
	if len(res.Secrets) > 0 {
		inc := res.Incident
		if inc.ID == "" {
			inc = c.inc
		}
		a.deliverSecrets(ctx, inc, c.user, "", res.Secrets)
	}
	if err != nil {
		a.answerErr(ctx, c, err)
	}
}

func (a *App) actAbort(ctx context.Context, c click) {
	if _, err := a.eng.Abort(ctx, c.inc.ID, c.user, ""); err != nil {
		a.answerErr(ctx, c, err)
	}
}

// afterRun delivers the secrets of a run to the requester, counts it, and tells the clicker
// what went wrong, if anything (the card shows the result either way).
func (a *App) afterRun(ctx context.Context, c click, step session.Step, requester string, res remediate.Result, err error) {
	result := remediate.Kind(err)
	switch {
	case err != nil:
	case res.Awaiting:
		result = "awaiting"
	default:
		result = string(res.Incident.Step(step).Status)
	}
	a.m.StepsRun.WithLabelValues(string(step), result).Inc()
	if len(res.Secrets) > 0 {
		inc := res.Incident
		if inc.ID == "" {
			inc = c.inc
		}
		a.deliverSecrets(ctx, inc, requester, step, res.Secrets)
	}
	if err == nil && step == session.StepDeny {
		if d := res.Incident.Step(session.StepDeny); d.Status.Finished() && !d.FinishedAt.IsZero() {
			a.m.TimeToContainment.Observe(d.FinishedAt.Sub(res.Incident.CreatedAt).Seconds())
		}
	}
	if err != nil {
		a.answerErr(ctx, c, err)
	}
}

// answerErr tells the clicker, ephemerally, why their click did nothing (or failed).
func (a *App) answerErr(ctx context.Context, c click, err error) {
	switch {
	case errors.Is(err, session.ErrFenced):
		return // another runner continues; the card follows
	case errors.Is(err, session.ErrAlreadyRunning), errors.Is(err, session.ErrAlreadyDone),
		errors.Is(err, session.ErrAwaitingApproval):
		if inc, gerr := a.store.Get(ctx, c.inc.ID); gerr == nil && c.act.Step != "" {
			a.replyAction(ctx, c.cb, AlreadyText(*inc.Step(c.act.Step)), nil)
			return
		}
	}
	a.logErr(err, c.inc.ID, "button "+c.act.ActionID())
	a.replyAction(ctx, c.cb, "⚠️ "+esc(upperFirst(remediate.UserMessage(err)))+".", nil)
}

// logErr logs an engine error: internal ones with the chain, expected ones by kind only.
func (a *App) logErr(err error, incident, what string) {
	kind := remediate.Kind(err)
	ev := a.log.Info()
	if kind == "internal" || kind == "" {
		ev = a.log.Warn().Err(err)
	}
	ev.Str("incident", incident).Str("kind", kind).Msg(what)
}

// replyAction answers the person who clicked, ephemerally, in the card's channel; the
// response_url is the fallback.
func (a *App) replyAction(ctx context.Context, cb *slack.InteractionCallback, text string, blocks []slack.Block) {
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	err := a.api.ephemeral(ctx, channel, cb.User.ID, text, blocks)
	if err == nil {
		return
	}
	if cb.ResponseURL != "" {
		if rerr := a.api.respond(ctx, cb.ResponseURL, text, blocks); rerr == nil {
			return
		}
	}
	a.log.Warn().Err(err).Msg("reply to click")
}

// deliverSecrets sends new credentials to one person only, ephemerally in the card's channel,
// and records on the incident whether each arrived (the card shows failures; `credentials`
// re-delivers). Nothing here logs or stores a secret value.
func (a *App) deliverSecrets(ctx context.Context, inc session.Incident, to string, step session.Step, secrets []remediate.Secret) {
	type item struct {
		line SecretLine
		key  string // Delivery key: device id or "pin"; "" = a notice, not tracked
	}
	var items []item
	for _, s := range secrets {
		if s.Device != "" {
			items = append(items, item{SoftphoneSecret(s.Device, s.Value.Reveal()), s.Device})
		} else {
			items = append(items, item{PINSecret(inc.Key(), s.Value.Reveal()), "pin"})
		}
	}
	if step == session.StepRecreate {
		for _, d := range inc.Devices {
			if d.MACProvisioned {
				items = append(items, item{DeskPhoneNotice(d.Device), ""})
			}
		}
	}
	states := map[string]session.DeliveryState{}
	for start := 0; start < len(items); start += MaxSecretsPerMessage {
		chunk := items[start:min(start+MaxSecretsPerMessage, len(items))]
		lines := make([]SecretLine, len(chunk))
		for i, it := range chunk {
			lines[i] = it.line
		}
		err := a.api.ephemeral(ctx, inc.Channel, to, SecretsFallbackText, SecretsBlocks(lines))
		st := session.DeliveryState{Delivered: err == nil, At: a.now().UTC()}
		if err != nil {
			st.Error = "Slack refused the ephemeral message (" + slackCode(err) + ")"
			a.m.SecretsDelivered.WithLabelValues("error").Inc()
			a.log.Warn().Str("incident", inc.ID).Str("code", slackCode(err)).Msg("deliver credentials")
		} else {
			a.m.SecretsDelivered.WithLabelValues("ok").Inc()
		}
		for _, it := range chunk {
			if it.key != "" {
				states[it.key] = st
			}
		}
	}
	if len(states) == 0 {
		return
	}
	_, err := a.store.Update(context.WithoutCancel(ctx), inc.ID, func(i *session.Incident) error {
		if i.Delivery == nil {
			i.Delivery = map[string]session.DeliveryState{}
		}
		for k, v := range states {
			i.Delivery[k] = v
		}
		return nil
	})
	if err != nil {
		a.log.Warn().Err(err).Str("incident", inc.ID).Msg("record credential delivery")
		return
	}
	a.changes.Changed(ctx, inc.ID)
}
