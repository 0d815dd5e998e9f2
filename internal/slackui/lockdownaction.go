package slackui

import (
	"fmt"
	"strings"

	"github.com/compromised-responder/bot/internal/session"
)

// The operations of a lockdown card's buttons that are not a step (action_id lockdown:<op>,
// Action.Op); the card and the parser both use these.
const (
	OpRetry       = "retry"        // Retry failed: each failed member's failed step again
	OpAbort       = "abort"        // Abort lockdown: close every member's incident without restoring
	OpGateRestore = "gate-restore" // Restore over the gate: the members the restore gate holds
)

// parseLockdownAction decodes a lockdown card's button (value = its canonical LCK- ID):
// lockdown:<step>, lockdown:<op> (OpRetry, OpAbort, OpGateRestore), and approve:<step> /
// reject:<step>.
func parseLockdownAction(actionID, id string) (Action, error) {
	kind, rest, ok := strings.Cut(actionID, ":")
	if ok {
		switch ActionKind(kind) {
		case ActionLockdown:
			switch rest {
			case OpRetry, OpAbort, OpGateRestore:
				return Action{Kind: ActionLockdown, Op: rest, Lockdown: id}, nil
			}
			if session.Step(rest).Valid() {
				return Action{Kind: ActionLockdown, Step: session.Step(rest), Lockdown: id}, nil
			}
		case ActionApprove, ActionReject:
			if session.Step(rest).Valid() {
				return Action{Kind: ActionKind(kind), Step: session.Step(rest), Lockdown: id}, nil
			}
		}
	}
	return Action{}, fmt.Errorf("action_id %q for a lockdown: %w", quote(actionID), ErrUnknownAction)
}
