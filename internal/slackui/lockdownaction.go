package slackui

import (
	"fmt"
	"strings"

	"github.com/compromised-responder/bot/internal/session"
)

// parseLockdownAction decodes a lockdown card's button (value = its canonical LCK- ID):
// lockdown:<step>, lockdown:retry, lockdown:abort, and approve:<step> / reject:<step>.
func parseLockdownAction(actionID, id string) (Action, error) {
	kind, rest, ok := strings.Cut(actionID, ":")
	if ok {
		switch ActionKind(kind) {
		case ActionLockdown:
			switch rest {
			case "retry", "abort":
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
