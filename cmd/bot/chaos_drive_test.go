package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
)

// The chaos drivers: each plays the responders of some users, one incident at a time, with the
// clicks people make (random steps, double clicks, Slack redelivering an envelope). A driver acts
// on what Redis says the incident is, never on timing, and every wait ends at a deadline: a click
// lost to a killed process or a dropped link is simply made again, as a person would.

// chaosFigures counts what a chaos run did (safe for concurrent use).
type chaosFigures struct {
	resent, clicks, doubles, redelivered, aborts, restored atomic.Int64
	kills, redisRestarts, linkDrops                        atomic.Int64
	// The lockdowns: opened, their members in all, clicks on their cards, and the replicas
	// SIGKILLed in the middle of a lockdown's fan-out (the runner holding its lease).
	lockdowns, members, lockClicks, midRunKills atomic.Int64
}

// driver drives incidents through slackfake; its rng is its own (seeded from the run's seed), so
// its sequence of choices repeats with the seed.
type driver struct {
	w   *world
	rng *rand.Rand
	f   *chaosFigures
	id  int
	// pAbort is the chance that an incident is aborted instead of restored.
	pAbort float64
}

var (
	chaosResponders = []string{alice, bob, carol}
	chaosApprovers  = []string{alice, bob}
)

const (
	chaosWait       = 20 * time.Second // a change after a click: a lease (5 s) + a reconcile (5 s) + slack
	chaosIterations = 60               // actions on one incident before the driver gives up on it
)

func (d *driver) pick(from []string) string { return from[d.rng.IntN(len(from))] }

// open runs /compromised for u and returns the incident once its card is posted. The command is
// sent again when no incident appears within 10 s of it (the process that got it died first);
// an incident that has no card a minute after it was opened is an error (nothing in Slack shows it).
func (d *driver) open(ctx context.Context, u chaosUser) (session.Incident, error) {
	deadline := time.Now().Add(2 * time.Minute)
	var sent time.Time
	for time.Now().Before(deadline) && ctx.Err() == nil {
		inc, err := d.w.store.FindOpen(ctx, u.user, u.domain)
		switch {
		case err == nil && inc.MessageTS != "":
			if _, ok := d.w.slack.Message(inc.Channel, inc.MessageTS); ok {
				return inc, nil
			}
		case err == nil && time.Since(inc.CreatedAt) > time.Minute:
			return inc, fmt.Errorf("%s for %s has no card %s after it was opened", inc.ID, u.target(), time.Since(inc.CreatedAt).Round(time.Second))
		case errors.Is(err, session.ErrNotFound) && time.Since(sent) > 10*time.Second:
			if !sent.IsZero() {
				d.f.resent.Add(1)
			}
			sent = time.Now()
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if id, err := d.w.slack.SlashCommand(sctx, slackfake.SlashCommand{UserID: d.pick(chaosResponders), ChannelID: incChan, Text: u.target()}); err == nil {
				_, _ = d.w.slack.WaitAck(sctx, id)
			}
			cancel()
			continue
		}
		time.Sleep(50 * time.Millisecond) // a test polling Redis, not a request path
	}
	return session.Incident{}, fmt.Errorf("open %s: no incident with a card within 2 minutes", u.target())
}

// poll re-checks cond every 50 ms until it holds or within has passed (or ctx ends).
func (d *driver) poll(ctx context.Context, within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(50 * time.Millisecond) // a test polling Redis, not a request path
	}
	return true
}

// get reads the incident, waiting (bounded) while Redis is down.
func (d *driver) get(ctx context.Context, id string) (session.Incident, error) {
	var inc session.Incident
	var err error
	d.poll(ctx, chaosWait, func() bool {
		inc, err = d.w.store.Get(ctx, id)
		return err == nil
	})
	return inc, err
}

// fingerprint is what a click can change about an incident.
func fingerprint(inc session.Incident) string {
	var b strings.Builder
	b.WriteString(string(inc.State))
	for _, s := range session.Steps {
		st := inc.Step(s)
		fmt.Fprintf(&b, "|%s:%s:%d:%s", s, st.Status, st.Attempts, st.ApprovedBy)
	}
	return b.String()
}

// drive acts on the incident until it is closed, or gives up after chaosIterations actions
// (finish or abort it later). abort: end it with Abort once deny is done.
func (d *driver) drive(ctx context.Context, id string, abort bool) error {
	for range chaosIterations {
		inc, err := d.get(ctx, id)
		if err != nil {
			return fmt.Errorf("read %s: %w", id, err)
		}
		if inc.State != session.StateOpen {
			if inc.State == session.StateAborted {
				d.f.aborts.Add(1)
			} else {
				d.f.restored.Add(1)
			}
			return nil
		}
		user, action := d.next(inc, abort)
		if action == "" || inc.MessageTS == "" { // a step is running (or no card to click yet): wait
			d.waitChange(ctx, id, fingerprint(inc))
			continue
		}
		before := fingerprint(inc)
		d.click(ctx, user, inc, action)
		d.waitChange(ctx, id, before)
	}
	return fmt.Errorf("%s still open after %d actions", id, chaosIterations)
}

// next chooses the next click on the incident as a responder would: deny first; then recreate and
// reset in a random order, sometimes restore early (they are then skipped); an approver answers a
// restore request; "" while a step runs.
func (d *driver) next(inc session.Incident, abort bool) (user, action string) {
	for _, s := range session.Steps {
		if inc.Step(s).Status == session.StatusRunning {
			return "", ""
		}
	}
	deny := inc.Step(session.StepDeny)
	if !deny.Status.Finished() {
		return d.pick(chaosResponders), "step:deny"
	}
	if abort {
		return d.pick(chaosResponders), "abort"
	}
	restore := inc.Step(session.StepRestore)
	if restore.Status == session.StatusAwaiting && restore.ApprovedBy == "" {
		var others []string
		for _, a := range chaosApprovers {
			if a != restore.RequestedBy {
				others = append(others, a)
			}
		}
		return d.pick(others), "approve:restore"
	}
	var todo []string
	for _, s := range []session.Step{session.StepRecreate, session.StepReset} {
		if st := inc.Step(s).Status; st == session.StatusReady || st == session.StatusFailed {
			todo = append(todo, "step:"+string(s))
		}
	}
	if len(todo) == 0 || d.rng.Float64() < 0.1 {
		return d.pick(chaosResponders), "step:restore"
	}
	return d.pick(chaosResponders), todo[d.rng.IntN(len(todo))]
}

// click presses actionID on the incident's card as user: a plain click, a double click (two at
// once), or one envelope delivered twice. A button the card no longer (or not yet) shows is
// clicked as a stale rendering would. A click that is not acked (the process died, the link
// dropped) is not retried here: the driver sees nothing changed and acts again.
func (d *driver) click(ctx context.Context, user string, inc session.Incident, actionID string) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d.f.clicks.Add(1)
	c := slackfake.Click{UserID: user, ChannelID: inc.Channel, MessageTS: inc.MessageTS, ActionID: actionID}
	m, ok := d.w.slack.Message(inc.Channel, inc.MessageTS)
	if !ok || !strings.Contains(string(m.Blocks), `"`+actionID+`"`) {
		c.Stale, c.BlockID, c.Value = true, "chaos-stale", inc.ID
	}
	switch r := d.rng.Float64(); {
	case r < 0.2:
		d.f.doubles.Add(1)
		done := make(chan struct{})
		go func() { defer close(done); d.sendClick(cctx, c, inc.ID) }()
		d.sendClick(cctx, c, inc.ID)
		<-done
	case r < 0.4:
		d.f.redelivered.Add(1)
		env := clickEnvelope(fmt.Sprintf("chaos-%d-%d", d.id, d.rng.Uint64()), user, inc.MessageTS, actionID, "chaos-redelivered", inc.ID)
		for range 2 {
			if err := d.w.slack.SendEnvelope(cctx, env); err != nil {
				return
			}
		}
		_, _ = d.w.slack.WaitAck(cctx, env["envelope_id"].(string))
	default:
		d.sendClick(cctx, c, inc.ID)
	}
}

// sendClick delivers c and waits for its ack; when the card changed meanwhile and no longer shows
// the button, it is delivered as a stale rendering's click (value: the incident).
func (d *driver) sendClick(ctx context.Context, c slackfake.Click, incID string) {
	id, err := d.w.slack.Click(ctx, c)
	if errors.Is(err, slackfake.ErrNoSuchMessage) || errors.Is(err, slackfake.ErrNoSuchAction) {
		c.Stale, c.BlockID, c.Value = true, "chaos-stale", incID
		id, err = d.w.slack.Click(ctx, c)
	}
	if err == nil {
		_, _ = d.w.slack.WaitAck(ctx, id)
	}
}

// waitChange waits (bounded) until the incident's fingerprint differs from before.
func (d *driver) waitChange(ctx context.Context, id, before string) {
	d.poll(ctx, chaosWait, func() bool {
		inc, err := d.w.store.Get(ctx, id)
		return err == nil && fingerprint(inc) != before
	})
}
