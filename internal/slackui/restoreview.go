package slackui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// This file holds the restore_original dialog (issue 10, sequence 8). When the user's original
// dial permission is unknown (it was already the deny policy when the incident began), Restore —
// or Request approval — opens a modal with one select of the policies the user can be given (the
// domain's and the system-wide ones, no deny policy). Its submission is checked before the ack,
// which carries the answer (a field error keeps the dialog open, and nothing is changed); an
// accepted one runs the restore with the chosen policy, or asks for its approval, like the button.

const (
	// CallbackRestoreOriginal is the dialog's callback_id; its private_metadata is the incident ID.
	CallbackRestoreOriginal = "restore_original"
	// RestorePolicyBlock is the select's input block_id (followed by the token of the devices the
	// click confirmed as missing, as the card's block_ids carry it) and RestorePolicyAction its
	// action_id.
	RestorePolicyBlock  = "policy"
	RestorePolicyAction = "policy"
	maxPolicyChoices    = 100 // Slack: a select offers at most 100 options
)

// originalUnknown reports whether restore has no original to set (the dialog asks for one).
func originalUnknown(inc *session.Incident) bool {
	o := inc.Original
	return o == nil || !o.Known || o.Policy == ""
}

// askRestorePolicy answers a Restore click on an incident whose original is unknown: it opens the
// dialog with the policies the user can be given, within the click's trigger (3 s).
func (a *App) askRestorePolicy(ctx context.Context, c click) {
	choices, err := a.eng.RestoreChoices(ctx, c.inc.ID)
	if err != nil {
		a.answerErr(ctx, c, err)
		return
	}
	if len(choices) == 0 {
		a.replyAction(ctx, c.cb, fmt.Sprintf("⚠️ %s has no dial policy other than the deny policy, in the domain or system-wide, "+
			"so there is nothing to restore to. Create one on the PBX, then click Restore again. Nothing was changed.", esc(c.inc.Domain)), nil)
		return
	}
	view := RestoreView(c.inc, choices, c.act.ConfirmMissing, a.approvalSteps[session.StepRestore], a.cfg.DenyPolicy)
	if err := a.api.openView(ctx, c.cb.TriggerID, view); err != nil {
		text := "⚠️ The dialog to choose the policy could not open (" + esc(slackCode(err)) + "). Click Restore again. Nothing was changed."
		switch slackCode(err) {
		case "expired_trigger_id", "exchanged_trigger_id", "invalid_trigger_id":
			text = "⚠️ The dialog to choose the policy could not open in time (Slack allows 3 s after a click). Click Restore again. Nothing was changed."
		}
		a.logger(ctx).Warn().Err(err).Str("incident", c.inc.ID).Msg("open the restore_original dialog")
		a.replyAction(ctx, c.cb, text, nil)
	}
}

// RestoreView is the restore_original dialog: what is unknown and what the submission does, and
// one select of choices (the domain's first), at most maxPolicyChoices of them. missing is the
// token of the devices the click confirmed as not re-created (carried in the select's block_id).
func RestoreView(inc session.Incident, choices []remediate.PolicyChoice, missing string, approval bool, denyPolicy string) slack.ModalViewRequest {
	deny := incidentDenyPolicy(&inc, denyPolicy)
	intro := fmt.Sprintf("The original dial permission of *%s* is unknown: it was already *%s* when %s began. "+
		"Choose the policy to set. The bot sets it, reads it back and closes the incident.",
		esc(inc.Key()), esc(short(deny, 100)), esc(inc.ID))
	submit := "Restore"
	if approval {
		intro += " It runs once someone approves; the request names the policy you choose."
		submit = "Request approval"
	}
	if names, _ := remediate.DevicesMissing(&inc); len(names) > 0 && missing != "" {
		intro += fmt.Sprintf("\n⚠️ Not re-created: %s. The snapshot is kept for the user's next incident.",
			esc(strings.Join(trimAll(names, 40), ", ")))
	}
	opts := make([]*slack.OptionBlockObject, 0, min(len(choices), maxPolicyChoices))
	for _, ch := range choices[:min(len(choices), maxPolicyChoices)] {
		label := short(ch.Name, 64)
		if ch.System {
			label += " (system)"
		}
		opts = append(opts, slack.NewOptionBlockObject(ch.Name, plainVerbatim(label), nil))
	}
	sel := slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, plain("Choose a policy"), RestorePolicyAction, opts...)
	hint := fmt.Sprintf("The policies of %s, then the system-wide ones; no deny policy is offered.", short(inc.Domain, 60))
	if len(choices) > maxPolicyChoices {
		hint = fmt.Sprintf("The first %d of %d policies; for another: bot respond run <incident> restore --policy NAME.",
			maxPolicyChoices, len(choices))
	}
	input := slack.NewInputBlock(withMissing(RestorePolicyBlock, missing), plain("Dial permission to restore"), plain(hint), sel)
	return slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: CallbackRestoreOriginal, PrivateMetadata: inc.ID,
		Title:  plain("Restore dial permission"),
		Submit: plain(submit),
		Close:  plain("Cancel"),
		Blocks: slack.Blocks{BlockSet: []slack.Block{slack.NewSectionBlock(mrkdwn(intro), nil, nil), input}},
	}
}

// submission is a view submission checked before its ack: who, on which incident, what they
// chose, and the token of the devices they confirmed as missing.
type submission struct {
	cb      *slack.InteractionCallback
	user    string
	inc     session.Incident
	value   string
	missing string
}

// submissionTimeout bounds the checks before a submission's ack (Slack waits 3 s for it).
const submissionTimeout = 2 * time.Second

// checkRestoreView checks a restore_original submission: a responder, an open incident whose
// restore can run, a policy that the dialog offered and that is not the deny policy. The errors
// are the dialog's field errors (the ack's answer); refusal is the audit entry of a submission
// by someone not in RESPONDERS.
func (a *App) checkRestoreView(ctx context.Context, cb *slack.InteractionCallback) (s submission, errs map[string]string, refusal *session.AuditEntry) {
	block, value := RestorePolicyBlock, ""
	if cb.View.State != nil {
		for b, acts := range cb.View.State.Values {
			if b == RestorePolicyBlock || strings.HasPrefix(b, RestorePolicyBlock+missingMark) {
				block, value = b, strings.TrimSpace(acts[RestorePolicyAction].SelectedOption.Value)
			}
		}
	}
	if b := inputBlockID(cb.View, RestorePolicyBlock); b != "" {
		block = b // the field errors name the block the dialog has
	}
	fail := func(msg string) (submission, map[string]string, *session.AuditEntry) {
		return submission{}, map[string]string{block: short(msg, 300)}, nil
	}
	id, ok := session.NormalizeID(cb.View.PrivateMetadata)
	if !ok || id != cb.View.PrivateMetadata {
		return fail("This dialog names no incident. Close it and click Restore on the card again.")
	}
	user := cb.User.ID
	if ok, err := a.auth.allowed(ctx, a.cfg.Responders, user); !ok {
		if err != nil {
			a.logger(ctx).Warn().Err(err).Msg("authorize view submission")
		}
		_, errs, _ := fail("You are not allowed to restore dial permissions. Nothing was changed, and the attempt was recorded in the audit.")
		return submission{}, errs, &session.AuditEntry{IncidentID: id, Actor: user, Action: "refused.unauthorized",
			Step: session.StepRestore, Detail: "dialog " + CallbackRestoreOriginal}
	}
	inc, err := a.store.Get(ctx, id)
	switch {
	case errors.Is(err, session.ErrNotFound):
		return fail(id + " no longer exists. Nothing was changed.")
	case err != nil:
		a.logErr(ctx, err, id, "read incident for a view submission")
		return fail("The incident could not be read (" + remediate.UserMessage(err) + "). Try again.")
	case !inc.Open():
		return fail(id + " is closed. Nothing was changed.")
	}
	if st := inc.Step(session.StepRestore); st.Busy(a.now()) || st.Status.Finished() {
		return fail(AlreadyText(*st) + " Nothing was changed.")
	}
	deny := incidentDenyPolicy(&inc, a.cfg.DenyPolicy)
	switch {
	case value == "":
		return fail("Choose the policy to restore.")
	case strings.EqualFold(value, deny):
		return fail(short(value, 100) + " is the deny policy. Choose the policy the user should have.")
	case !offered(cb.View, block, value):
		return fail(short(value, 100) + " is not one of the policies offered. Choose one from the list.")
	}
	return submission{cb: cb, user: user, inc: inc, value: value, missing: missingToken(block)}, nil, nil
}

// inputBlockID is the block_id of the view's input block named prefix (with or without a token).
func inputBlockID(v slack.View, prefix string) string {
	for _, b := range v.Blocks.BlockSet {
		if ib, ok := b.(*slack.InputBlock); ok && (ib.BlockID == prefix || strings.HasPrefix(ib.BlockID, prefix+missingMark)) {
			return ib.BlockID
		}
	}
	return ""
}

// offered reports whether value is an option of the select in the view's input block blockID:
// the dialog's own list, which Slack sends back with the submission.
func offered(v slack.View, blockID, value string) bool {
	for _, b := range v.Blocks.BlockSet {
		ib, ok := b.(*slack.InputBlock)
		if !ok || ib.BlockID != blockID {
			continue
		}
		sel, ok := ib.Element.(*slack.SelectBlockElement)
		if !ok {
			return false
		}
		for _, o := range sel.Options {
			if o != nil && o.Value == value {
				return true
			}
		}
	}
	return false
}

// viewRestore runs an accepted restore_original submission: the restore with the chosen policy,
// or its approval request, as the Restore button would. Answers go to the submitter in the
// card's channel (a dialog has no channel of its own).
func (a *App) viewRestore(ctx context.Context, s submission) {
	cb := *s.cb
	cb.Channel.ID = s.inc.Channel
	c := click{cb: &cb, user: s.user, inc: s.inc,
		act: Action{Kind: ActionStep, Step: session.StepRestore, IncidentID: s.inc.ID, ConfirmMissing: s.missing}}
	res, err := a.eng.Request(ctx, s.inc.ID, session.StepRestore, s.user,
		remediate.RunOptions{RestorePolicy: s.value, ConfirmMissing: s.missing})
	a.afterRun(ctx, c, session.StepRestore, s.user, res, err)
}
