package slackui

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slacksocket"
)

// This file is the dispatcher: what the Socket Mode client (slacksocket) hands over, on the
// goroutine that read it: the ack (with the answers that need no work), and the queue hand-off
// with its "busy" answers.

// socketHandler is the App as slacksocket's Handler (kept off App's own methods).
type socketHandler struct{ a *App }

func (h socketHandler) Link(up bool, why string) { h.a.setLink(up, why) }

func (h socketHandler) Envelope(ctx context.Context, e *slacksocket.Envelope) { h.a.envelope(ctx, e) }

// envelope acks one request envelope and queues its work. A slash command whose answer needs no
// work (help, usage, a refusal: ackAnswer) is answered in the ack's payload, and so is one that
// finds the queue full ("busy, try again in N s": nothing was queued, so nothing is lost or half
// done). A click's ack carries no message, so a click that finds the queue full hears "busy"
// through its response_url (replier). Every envelope is thus acked and then either queued or
// answered. It runs on the reading goroutine of the link, so it never waits on Redis or Slack.
func (a *App) envelope(ctx context.Context, e *slacksocket.Envelope) {
	typ := e.Type
	a.m.envelope(typ).received.Inc()
	a.setLink(true, "") // an envelope arrived, so the link works
	if e.RetryAttempt > 0 {
		a.log.Debug().Str("type", typ).Int("retry_attempt", e.RetryAttempt).Str("retry_reason", e.RetryReason).
			Msg("envelope delivered again") // its work is deduplicated by envelope (workers.go)
	}
	j := job{envelopeID: e.ID}
	var answer string // the ack's message; "" = a bare ack
	switch {
	case e.Command != nil:
		d := e.Command
		text, refusal, ok := a.ackAnswer(d)
		switch {
		case !ok:
			j.command = d
		case refusal != nil:
			j.audit = refusal // a worker records it (Redis, AUDIT_CHANNEL)
		}
		answer = text
		if (j.command != nil || j.audit != nil) && !a.queue.submit(j.lane(), j) {
			a.m.QueueBusy.Inc()
			answer = BusyText(a.queue.retryAfter())
		}
	case e.Callback != nil:
		d := e.Callback
		switch d.Type {
		case slack.InteractionTypeBlockActions, slack.InteractionTypeMessageAction:
			j.callback = d
		case slack.InteractionTypeViewSubmission:
			a.viewSubmission(ctx, e, j, d)
			return
		}
	}
	a.ack(ctx, e, answer)
	if j.callback != nil && !a.queue.submit(j.lane(), j) {
		a.m.QueueBusy.Inc()
		a.busy(ctx, e, reply{j: j, text: BusyText(a.queue.retryAfter())})
	}
	// events_api: nothing subscribed; acked so Slack does not retry.
}

// ackMessage is a slash command ack's payload: a message Slack shows to the person who ran
// the command, and to no one else.
type ackMessage struct {
	ResponseType string `json:"response_type"`
	Text         string `json:"text"`
}

// helpAck is the help answer's ack payload, encoded once: a burst of `/compromised help` is
// answered from the reading goroutine, and encoding its ~1 KiB of text was a tenth of its CPU.
var helpAck = mustJSON(ackMessage{ResponseType: slack.ResponseTypeEphemeral, Text: HelpText()})

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // a constant that does not encode: a bug
	}
	return b
}

// ack acknowledges an envelope, with answer as an ephemeral message when set.
func (a *App) ack(ctx context.Context, e *slacksocket.Envelope, answer string) {
	var payload any
	switch answer {
	case "":
	case HelpText():
		payload = helpAck
	default:
		payload = ackMessage{ResponseType: slack.ResponseTypeEphemeral, Text: answer}
	}
	a.ackPayload(ctx, e, payload)
}

// viewChecks is how many view submissions may be checked at once, off the dispatcher.
const viewChecks = 8

// viewSubmission answers a modal's submission in its ack, as Slack requires: the field errors of
// its route's check (the dialog stays open and nothing is changed), or a plain ack (the dialog
// closes) once the accepted submission is queued. The check reads Redis and may ask Slack for a
// user group's members, so it runs off the dispatcher, at most viewChecks at once; past that, and
// when the queue is full, the answer is "busy, try again", and again nothing is lost.
func (a *App) viewSubmission(ctx context.Context, e *slacksocket.Envelope, j job, cb *slack.InteractionCallback) {
	route, ok := viewRoutes[cb.View.CallbackID]
	if !ok {
		a.ackPayload(ctx, e, nil) // not ours: close it
		return
	}
	select {
	case a.viewSlots <- struct{}{}:
	default:
		a.m.QueueBusy.Inc()
		a.ackPayload(ctx, e, fieldErrors(cb.View, BusyText(a.queue.retryAfter())))
		return
	}
	a.viewWG.Add(1)
	go func() {
		defer a.viewWG.Done()
		defer func() { <-a.viewSlots }()
		defer func() {
			if r := recover(); r != nil { // as work: the type only, never the value (could hold a secret)
				a.log.Error().Str("panic", fmt.Sprintf("%T", r)).Str("stack", string(debug.Stack())).Msg("view check panicked")
			}
		}()
		cctx, cancel := context.WithTimeout(ctx, submissionTimeout)
		s, errs, refusal := route.check(a, cctx, cb)
		cancel()
		if errs == nil {
			j.view = &s
			if !a.queue.submit(j.lane(), j) {
				a.m.QueueBusy.Inc()
				errs = fieldErrors(cb.View, BusyText(a.queue.retryAfter()))
			}
		}
		var payload any
		if errs != nil {
			payload = slack.NewErrorsViewSubmissionResponse(errs)
		}
		a.ackPayload(ctx, e, payload)
		if refusal != nil {
			a.auditIncident(context.WithoutCancel(ctx), *refusal)
			if a.cfg.Observer != nil {
				a.cfg.Observer.StepEnded(ctx, session.Incident{ID: refusal.IncidentID}, refusal.Step, remediate.ResultRefused, remediate.KindUnauthorized)
			}
		}
	}()
}

// fieldErrors puts msg on the view's first input block (Slack shows errors on input blocks only).
func fieldErrors(v slack.View, msg string) map[string]string {
	for _, b := range v.Blocks.BlockSet {
		if ib, ok := b.(*slack.InputBlock); ok {
			return map[string]string{ib.BlockID: msg}
		}
	}
	return map[string]string{"": msg}
}

// ackPayload acknowledges an envelope with payload (nil: a bare ack), waiting at most 2 s for a
// live connection when the envelope's own has closed (past 3 s Slack delivers it again anyway).
// The client observes the ack's latency (Metrics.AckLatency), from when its frame came off the
// socket.
func (a *App) ackPayload(ctx context.Context, e *slacksocket.Envelope, payload any) {
	typ := e.Type
	err := e.AckWithin(ctx, payload, 2*time.Second)
	if err != nil {
		a.m.envelope(typ).ackedError.Inc()
		a.log.Warn().Err(err).Str("type", typ).Msg("ack envelope")
	} else {
		a.m.envelope(typ).ackedOK.Inc()
	}
}

// reply is an answer to a queued or refused-by-the-queue request that did nothing: "busy", or
// "restarting" for one a shutdown could not run.
type reply struct {
	j    job
	text string
}

const (
	replyWorkers = 4               // response_url posts at once
	replyBuffer  = 256             // answers waiting for them
	replyTimeout = 5 * time.Second // one answer
)

// busy hands an answer to the repliers, so the dispatcher does not wait on Slack. When even their
// buffer is full it waits for room (after sending the acks held back for one write): the
// envelopes behind it wait unread on the socket (and are redelivered by Slack if that takes too
// long), which is slower but loses nothing.
func (a *App) busy(ctx context.Context, e *slacksocket.Envelope, r reply) {
	select {
	case a.replies <- r:
		return
	default:
	}
	e.Flush()
	select {
	case a.replies <- r:
	case <-ctx.Done():
		a.answer(context.WithoutCancel(ctx), r) // shutting down: answer here
	}
}

// replier answers the replies handed to it until the channel is closed (at shutdown).
func (a *App) replier(ctx context.Context) {
	for r := range a.replies {
		a.answer(context.WithoutCancel(ctx), r)
	}
}

// answer delivers one reply ephemerally (response_url first), each within replyTimeout. A refusal
// whose audit entry was never written is written now: an audit entry is never dropped.
func (a *App) answer(ctx context.Context, r reply) {
	ctx, cancel := context.WithTimeout(ctx, replyTimeout)
	defer cancel()
	switch {
	case r.j.command != nil:
		a.replyCommand(ctx, r.j.command, r.text, nil)
	case r.j.callback != nil:
		a.replyAction(ctx, r.j.callback, r.text, nil)
	case r.j.view != nil:
		a.reply(ctx, "", r.j.view.inc.Channel, r.j.view.user, r.text, nil)
	case r.j.audit != nil:
		a.auditGlobal(ctx, *r.j.audit) // its refusal was in the ack already
	}
}
