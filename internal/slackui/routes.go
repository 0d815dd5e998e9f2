package slackui

import (
	"context"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/session"
)

// This file is the one dispatch table of the app: every command kind and every button kind,
// who may use it, and the handler that answers it. Handlers are methods on *App, so each gets
// the app's dependencies and nothing else.

// role says who may use a route.
type role int

const (
	anyone     role = iota // help
	responders             // RESPONDERS
	approvers              // APPROVERS
	// approversOrRequester: APPROVERS, or the responder who asked (to withdraw a request).
	approversOrRequester
)

type commandRoute struct {
	who  role
	what string // for a refusal: "you are not allowed to <what>"
	// instant is the answer that needs nothing but the command (help, usage, a validation
	// error): ok false when the command needs handle. It is given in the Socket Mode ack.
	instant func(c *slack.SlashCommand, cmd Command) (text string, ok bool)
	handle  func(a *App, ctx context.Context, c *slack.SlashCommand, cmd Command) // nil: instant always answers
}

var commandRoutes = map[Kind]commandRoute{
	KindHelp:   {anyone, "", helpAnswer, nil},
	KindUsage:  {responders, "use /compromised", usageAnswer, nil},
	KindOpen:   {responders, "open incidents", dmRefusal, (*App).cmdOpen},
	KindPlan:   {responders, "plan a response", nil, (*App).cmdPlan},
	KindStatus: {responders, "see incidents", nil, (*App).cmdStatus},
	KindList:   {responders, "list incidents", nil, (*App).cmdList},
	// A lockdown's buttons are routed by lockdownRoutes (lockdownhandlers.go).
	KindLockdown: {responders, "open lockdowns", dmRefusal, (*App).cmdLockdown},
}

// routeCommand parses a command's text and finds its route (anything unknown is usage).
func routeCommand(text string) (Command, commandRoute) {
	cmd := ParseCommand(text)
	route, ok := commandRoutes[cmd.Kind]
	if !ok {
		route = commandRoutes[KindUsage]
	}
	return cmd, route
}

type actionRoute struct {
	who    role
	what   string
	handle func(a *App, ctx context.Context, c click)
}

var actionRoutes = map[ActionKind]actionRoute{
	ActionStep:         {responders, "run incident steps", (*App).actStep},
	ActionApprove:      {approvers, "approve steps", (*App).actApprove},
	ActionReject:       {approversOrRequester, "reject approval requests", (*App).actReject},
	ActionForceRestore: {responders, "force a restore", (*App).actForce},
	ActionOverGate:     {responders, "restore over the gate", (*App).actOverGate},
	ActionCredentials:  {responders, "re-send credentials", (*App).actCredentials},
	ActionAbort:        {responders, "abort incidents", (*App).actAbort},
}

// viewRoute is a modal's submission: check runs before the ack, under submissionTimeout, and its
// field errors are the ack's answer (who may submit is part of the check: a refusal is a field
// error too, with the audit entry to record); handle runs an accepted one on a queue worker.
type viewRoute struct {
	check  func(a *App, ctx context.Context, cb *slack.InteractionCallback) (submission, map[string]string, *session.AuditEntry)
	handle func(a *App, ctx context.Context, s submission)
}

var viewRoutes = map[string]viewRoute{
	CallbackRestoreOriginal: {(*App).checkRestoreView, (*App).viewRestore},
}
