package slackui

import (
	"context"

	"github.com/slack-go/slack"
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
	who    role
	what   string // for a refusal: "you are not allowed to <what>"
	handle func(a *App, ctx context.Context, c *slack.SlashCommand, cmd Command)
}

var commandRoutes = map[Kind]commandRoute{
	KindHelp:   {anyone, "", (*App).cmdHelp},
	KindUsage:  {responders, "use /compromised", (*App).cmdUsage},
	KindOpen:   {responders, "open incidents", (*App).cmdOpen},
	KindPlan:   {responders, "plan a response", (*App).cmdPlan},
	KindStatus: {responders, "see incidents", (*App).cmdStatus},
	KindList:   {responders, "list incidents", (*App).cmdList},
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
	ActionCredentials:  {responders, "re-send credentials", (*App).actCredentials},
	ActionAbort:        {responders, "abort incidents", (*App).actAbort},
}
