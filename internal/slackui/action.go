package slackui

import (
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/session"
)

// ActionKind says what a button asks for.
type ActionKind string

// The button kinds (DESIGN.md "Buttons"). ActionForceRestore always concerns StepRestore.
const (
	ActionStep         ActionKind = "step"        // step:<name>: run it, ask for approval, or Retry
	ActionApprove      ActionKind = "approve"     // approve:<name>
	ActionReject       ActionKind = "reject"      // reject:<name>
	ActionForceRestore ActionKind = "force"       // force:restore
	ActionCredentials  ActionKind = "credentials" // credentials: rotate and deliver SIP passwords again
	ActionAbort        ActionKind = "abort"       // abort: close without restoring
	// ActionLockdown is a lockdown card's lockdown:<step|retry|abort> (lockdownaction.go).
	ActionLockdown ActionKind = "lockdown"
)

// Action is one decoded button click. Only the kind, the step and the incident come from the
// payload; everything else (who may do it, the step's state) must be read from the store.
type Action struct {
	Kind       ActionKind
	Step       session.Step // set for step, approve, reject and force; empty otherwise
	IncidentID string       // canonical, e.g. INC-7K2QXM
	// ConfirmMissing is the token the clicked block's block_id carried: its button's confirm
	// dialog named the devices deleted and not re-created (remediate.DevicesMissing). The
	// engine compares it with the devices missing now.
	ConfirmMissing string
	// Lockdown is set (and IncidentID empty) for a lockdown card's buttons: its canonical ID.
	// Op is the lockdown button's operation ("retry", "abort"; "" for a step).
	Lockdown string
	Op       string
}

// missingMark starts the block_id suffix that carries remediate.DevicesMissing's token.
const missingMark = ":m-"

// withMissing appends the token of the devices a block's confirm dialogs name to its block_id.
func withMissing(blockID, token string) string {
	if token == "" {
		return blockID
	}
	return blockID + missingMark + token
}

// missingToken reads withMissing's token back from a block_id ("" if none or malformed).
func missingToken(blockID string) string {
	i := strings.LastIndex(blockID, missingMark)
	if i < 0 {
		return ""
	}
	t := blockID[i+len(missingMark):]
	if len(t) != 8 || strings.Trim(t, "0123456789abcdef") != "" {
		return ""
	}
	return t
}

// ActionID returns the action_id the card gives this action's button ("step:deny", "abort", …).
func (a Action) ActionID() string {
	switch a.Kind {
	case ActionLockdown:
		if a.Op != "" {
			return "lockdown:" + a.Op
		}
		return "lockdown:" + string(a.Step)
	case ActionCredentials, ActionAbort:
		return string(a.Kind)
	}
	return string(a.Kind) + ":" + string(a.Step)
}

// ErrUnknownAction is returned (wrapped) by ParseAction for any action_id or value the card never
// produces; the app answers "unknown button" and does nothing else.
var ErrUnknownAction = errors.New("unknown button")

// ParseAction decodes a button's action_id and value. The value must be a canonical incident ID
// exactly as the card writes it. Any other input returns an error matching ErrUnknownAction; the
// error quotes at most a short, sanitised prefix of the input.
func ParseAction(actionID, value string) (Action, error) {
	if lid, ok := session.NormalizeLockdownID(value); ok && lid == value {
		return parseLockdownAction(actionID, lid)
	}
	id, ok := session.NormalizeID(value)
	if !ok || id != value {
		return Action{}, fmt.Errorf("button value %q is not an incident ID: %w", quote(value), ErrUnknownAction)
	}
	switch actionID {
	case "credentials":
		return Action{Kind: ActionCredentials, IncidentID: id}, nil
	case "abort":
		return Action{Kind: ActionAbort, IncidentID: id}, nil
	case "force:restore":
		return Action{Kind: ActionForceRestore, Step: session.StepRestore, IncidentID: id}, nil
	case "gate:restore":
		return Action{Kind: ActionOverGate, Step: session.StepRestore, IncidentID: id}, nil
	}
	kind, step, ok := strings.Cut(actionID, ":")
	if ok && session.Step(step).Valid() {
		switch ActionKind(kind) {
		case ActionStep, ActionApprove, ActionReject:
			return Action{Kind: ActionKind(kind), Step: session.Step(step), IncidentID: id}, nil
		}
	}
	return Action{}, fmt.Errorf("action_id %q: %w", quote(actionID), ErrUnknownAction)
}

// ActionsFrom returns the well-formed button actions of a block_actions callback, in payload order;
// anything ParseAction refuses is dropped (the app answers "unknown button" when none is left).
func ActionsFrom(cb slack.InteractionCallback) []Action {
	var out []Action
	for _, ba := range cb.ActionCallback.BlockActions {
		if ba == nil {
			continue
		}
		if a, err := ParseAction(ba.ActionID, ba.Value); err == nil {
			a.ConfirmMissing = missingToken(ba.BlockID)
			out = append(out, a)
		}
	}
	return out
}
