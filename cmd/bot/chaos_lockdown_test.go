package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slackfake"
)

// The lockdowns of the chaos run (issue 13 item 1's proof): while the incident drivers and the
// fault injector run, one driver opens `domain` lockdowns of a seeded domain with tens of users
// (two of them already in Deny All, so their original is unknown) and another opens `users`
// lockdowns whose first address already has an open incident of its own (it joins with it).
// Each is driven from its card as responders would (deny, retry the failed, restore, an approver
// approves, abort at the end for the users restore cannot bring back), with the same double
// clicks and redeliveries as the incidents, and a replica is SIGKILLed in the middle of the
// domain lockdown's fan-outs: the monkey kills the very process whose lease the run holds.

// The lockdown tenant: chaosLockDomain (its size grows with the run, see lockdownSize) and
// chaosNamedDomain, whose users are named one by one.
const (
	chaosLockDomain  = "chaoslock.example"
	chaosNamedDomain = "chaosnamed.example"
	chaosNamed       = 6 // users of chaosNamedDomain in each `users` lockdown
	chaosLockDenied  = 2 // users of chaosLockDomain seeded in Deny All (no original to find)
	lockIterations   = 40
)

// lockdownSize is the domain lockdown's member count for a run of n incidents: tens of users,
// more in the long runs (`make test`'s N=10 gives 25).
func lockdownSize(n int) int { return min(20+n/2, 200) }

// lockdownRounds is how many lockdowns of each scope a run of n incidents opens, one after the
// other (the next opens new incidents for the same users, so the kept originals are exercised).
func lockdownRounds(n int) int { return max(1, n/40) }

// chaosLockUsers adds the lockdown tenant to seed: the domain users (the first chaosLockDenied in
// Deny All) and the named users, with their seeded originals.
func chaosLockUsers(seed *nstest.Seed, size int) (domain, named []chaosUser) {
	for i, t := range seed.AddDomain(chaosLockDomain, size, 4000, "US and Canada") {
		u := chaosUser{original: "US and Canada"}
		u.user, u.domain, _ = strings.Cut(t, "@")
		if i < chaosLockDenied {
			u.original = "Deny All"
			seed.Users[len(seed.Users)-size+i]["dial-policy"] = "Deny All"
		}
		domain = append(domain, u)
	}
	for i, t := range seed.AddDomain(chaosNamedDomain, chaosNamed, 5000, "International") {
		u := chaosUser{original: []string{"International", "US and Canada"}[i%2]}
		u.user, u.domain, _ = strings.Cut(t, "@")
		seed.Users[len(seed.Users)-chaosNamed+i]["dial-policy"] = u.original
		named = append(named, u)
	}
	return domain, named
}

// lockRecord is what the lockdown drivers opened (safe for concurrent use): the checks read it.
type lockRecord struct {
	mu        sync.Mutex
	ids       []string          // every lockdown seen, in order
	joiners   map[string]string // lockdown ID → the incident that should have joined it
	problems  []string          // violations seen while driving (the card did not list the unknown)
	unknownOK int               // lockdowns whose card listed the members with no known original
}

func (r *lockRecord) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.ids, id) {
		r.ids = append(r.ids, id)
	}
}

func (r *lockRecord) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.problems = append(r.problems, fmt.Sprintf(format, args...))
}

// lockDriver drives lockdowns through their cards; d's click, open and waits are the incident
// driver's. kill asks the monkey to SIGKILL the replica named by a run's owner (nil: no kills,
// as in the finish).
type lockDriver struct {
	*driver
	rec  *lockRecord
	kill func(owner string)
	// refuseRestore: the next approved restore finds one member's PUT refused (403), so the
	// restore has a member for Retry too (a kill mid-deny resumes the run, which runs the
	// members whose deny failed again, so the deny's refusals do not always reach Retry).
	refuseRestore bool
}

// read returns the lockdown and its members' incidents (zero for a member not opened yet),
// waiting (bounded) while Redis is down.
func (d *lockDriver) read(ctx context.Context, id string) (session.Lockdown, []session.Incident, error) {
	var l session.Lockdown
	var incs []session.Incident
	var err error
	d.poll(ctx, chaosWait, func() bool {
		if l, err = d.w.store.GetLockdown(ctx, id); err != nil {
			return false
		}
		incs = make([]session.Incident, len(l.Members))
		for i, m := range l.Members {
			if m.IncidentID == "" {
				continue
			}
			if incs[i], err = d.w.store.Get(ctx, m.IncidentID); err != nil {
				return false
			}
		}
		return true
	})
	return l, incs, err
}

// lockFingerprint is what a click (or a resumed run) can change about a lockdown.
func lockFingerprint(l session.Lockdown, incs []session.Incident) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%d", l.State, len(l.Runs))
	if r := l.LastRun(); r != nil {
		fmt.Fprintf(&b, "|%t", r.Done())
	}
	for i, inc := range incs {
		fmt.Fprintf(&b, "|%s:%s", l.Members[i].IncidentID, fingerprint(inc))
	}
	return b.String()
}

// waitLockChange waits (bounded) until the lockdown's fingerprint differs from before; it polls
// every 250 ms, as one read is tens of incidents.
func (d *lockDriver) waitLockChange(ctx context.Context, id, before string) {
	deadline := time.Now().Add(chaosWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		l, incs, err := d.read(ctx, id)
		if err == nil && lockFingerprint(l, incs) != before {
			return
		}
		time.Sleep(250 * time.Millisecond) // a test polling Redis, not a request path
	}
}

// command sends a slash command as a responder and waits (bounded) for its ack.
func (d *lockDriver) command(ctx context.Context, text string) {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if id, err := d.w.slack.SlashCommand(sctx, slackfake.SlashCommand{UserID: d.pick(chaosResponders), ChannelID: incChan, Text: text}); err == nil {
		_, _ = d.w.slack.WaitAck(sctx, id)
	}
}

// openLockdown sends text and returns the open lockdown match picks once its card is posted.
// As for an incident, the command is sent again when no lockdown appears within 10 s (the
// process that got it died first); one with no card a minute after it was stored is an error.
func (d *lockDriver) openLockdown(ctx context.Context, text string, match func(session.Lockdown) bool) (session.Lockdown, error) {
	deadline := time.Now().Add(2 * time.Minute)
	var sent time.Time
	for time.Now().Before(deadline) && ctx.Err() == nil {
		open, err := d.w.store.ListOpenLockdowns(ctx)
		i := slices.IndexFunc(open, match)
		switch {
		case err != nil:
		case i >= 0 && open[i].MessageTS != "":
			d.rec.add(open[i].ID)
			if _, ok := d.w.slack.Message(open[i].Channel, open[i].MessageTS); ok {
				return open[i], nil
			}
		case i >= 0:
			d.rec.add(open[i].ID)
			if time.Since(open[i].CreatedAt) > time.Minute {
				return open[i], fmt.Errorf("%s (%s) has no card %s after it was opened", open[i].ID, text, time.Since(open[i].CreatedAt).Round(time.Second))
			}
		case time.Since(sent) > 10*time.Second:
			if !sent.IsZero() {
				d.f.resent.Add(1)
			}
			sent = time.Now()
			d.command(ctx, text)
			continue
		}
		time.Sleep(100 * time.Millisecond) // a test polling Redis, not a request path
	}
	return session.Lockdown{}, fmt.Errorf("%s: no lockdown with a card within 2 minutes", text)
}

// runDomain opens and drives `rounds` domain lockdowns of chaosLockDomain, one after the other;
// before each first deny, two members' deny PUT is armed to be refused (403), so Retry has work,
// and one member's restore PUT.
func (d *lockDriver) runDomain(ctx context.Context, rounds int) error {
	for r := range rounds {
		l, err := d.openLockdown(ctx, fmt.Sprintf("domain %s chaos round %d", chaosLockDomain, r+1), func(l session.Lockdown) bool {
			return l.Scope == session.ScopeDomain && l.Domain == chaosLockDomain
		})
		if err != nil {
			return err
		}
		d.f.lockdowns.Add(1)
		d.f.members.Add(int64(len(l.Members)))
		for range 2 {
			m := l.Members[chaosLockDenied+d.rng.IntN(len(l.Members)-chaosLockDenied)]
			d.w.pbx.FailNext("PUT", "/domains/"+m.Domain+"/users/"+m.User, 403, "chaos: refused once")
		}
		d.refuseRestore = true
		if err := d.drive(ctx, l.ID); err != nil {
			return err
		}
	}
	return nil
}

// runUsers opens and drives `rounds` users lockdowns of the named users; each round's first
// address first gets an incident of its own (denied from its card half the time), which joins.
func (d *lockDriver) runUsers(ctx context.Context, rounds int, named []chaosUser) error {
	for r := range rounds {
		joiner := named[r%len(named)]
		inc, err := d.open(ctx, joiner)
		if err != nil {
			return err
		}
		if d.rng.IntN(2) == 0 {
			for range 5 {
				cur, err := d.get(ctx, inc.ID)
				if err != nil || cur.Step(session.StepDeny).Status.Finished() {
					break
				}
				if cur.Step(session.StepDeny).Status != session.StatusRunning {
					d.click(ctx, d.pick(chaosResponders), cur, "step:deny")
				}
				d.waitChange(ctx, inc.ID, fingerprint(cur))
			}
		}
		addrs := []string{joiner.target()}
		for _, u := range named {
			if u.target() != joiner.target() {
				addrs = append(addrs, u.target())
			}
		}
		l, err := d.openLockdown(ctx, "users "+strings.Join(addrs, " ")+" chaos round "+strconv.Itoa(r+1), func(l session.Lockdown) bool {
			return l.Scope == session.ScopeUsers && slices.ContainsFunc(l.Members, func(m session.Member) bool { return m.Key() == joiner.target() })
		})
		if err != nil {
			return err
		}
		d.rec.mu.Lock()
		d.rec.joiners[l.ID] = inc.ID
		d.rec.mu.Unlock()
		d.f.lockdowns.Add(1)
		d.f.members.Add(int64(len(l.Members)))
		if err := d.drive(ctx, l.ID); err != nil {
			return err
		}
	}
	return nil
}

// drive clicks the lockdown's card until it is closed, or gives up after lockIterations actions.
func (d *lockDriver) drive(ctx context.Context, id string) error {
	for range lockIterations {
		l, incs, err := d.read(ctx, id)
		if err != nil {
			return fmt.Errorf("read %s: %w", id, err)
		}
		if !l.Open() {
			return nil
		}
		if l.MessageTS == "" && time.Since(l.CreatedAt) > 2*time.Minute {
			return fmt.Errorf("%s has no card %s after it was opened: nothing to click", id, time.Since(l.CreatedAt).Round(time.Second))
		}
		user, action := d.next(l, incs)
		before := lockFingerprint(l, incs)
		if action == "" || l.MessageTS == "" {
			d.waitLockChange(ctx, id, before)
			continue
		}
		if action == "lockdown:abort" {
			d.checkUnknownListed(ctx, l, incs)
		}
		if action == "approve:restore" && d.refuseRestore {
			m := l.Members[chaosLockDenied+d.rng.IntN(len(l.Members)-chaosLockDenied)]
			d.w.pbx.FailNext("PUT", "/domains/"+m.Domain+"/users/"+m.User, 403, "chaos: refused once")
			d.refuseRestore = false
		}
		d.f.lockClicks.Add(1)
		d.click(ctx, user, session.Incident{ID: l.ID, Channel: l.Channel, MessageTS: l.MessageTS}, action)
		if d.kill != nil && (action == "lockdown:deny" || action == "approve:restore") && (len(l.Runs) == 0 || d.rng.IntN(2) == 0) {
			d.killMidRun(ctx, id, len(l.Runs))
		}
		d.waitLockChange(ctx, id, before)
	}
	return fmt.Errorf("%s still open after %d actions", id, lockIterations)
}

// killMidRun waits (bounded) for the fan-out the click started (run runs+1) to be under way for
// a random 0.2–1 s, and asks the monkey to kill the replica that holds its lease, unless the run
// ended first.
func (d *lockDriver) killMidRun(ctx context.Context, id string, runs int) {
	after := time.Duration(200+d.rng.IntN(800)) * time.Millisecond
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		l, err := d.w.store.GetLockdown(ctx, id)
		if err == nil && len(l.Runs) > runs {
			r := l.Runs[runs]
			if r.Done() {
				return
			}
			if time.Since(r.StartedAt) > after {
				d.kill(r.Owner)
				return
			}
		}
		time.Sleep(50 * time.Millisecond) // a test polling Redis, not a request path
	}
}

// next chooses the next click on the lockdown's card: nothing while a fan-out or a member's step
// runs; Retry while a member's step failed; Deny while a member is not denied (or not opened);
// an approver (not the requester) approves the pending restores; Restore while a member with a
// known original is open; Abort when the only members left open have no known original (they
// stay in Deny All). Now and then a Deny again (a stale card), which must change nothing.
func (d *lockDriver) next(l session.Lockdown, incs []session.Incident) (user, action string) {
	if r := l.LastRun(); r != nil && !r.Done() {
		return "", ""
	}
	var deny, failed, awaiting, restore, unknown int
	requester := ""
	now := time.Now()
	for i, m := range l.Members {
		if m.IncidentID == "" {
			deny++
			continue
		}
		inc := incs[i]
		if !inc.Open() {
			continue
		}
		for _, s := range session.Steps {
			st := inc.Step(s)
			switch {
			case st.Status == session.StatusRunning:
				return "", ""
			case st.Status == session.StatusFailed && st.ErrKind == remediate.KindOriginalUnknown:
				unknown++
			case st.Status == session.StatusFailed:
				failed++
			}
		}
		dn, rs := inc.Step(session.StepDeny), inc.Step(session.StepRestore)
		switch {
		case dn.Status == session.StatusFailed:
		case !dn.Status.Finished():
			deny++
		case rs.Status == session.StatusFailed:
		case rs.ApprovalPending(now) && rs.ApprovedBy == "":
			awaiting++
			requester = rs.RequestedBy
		case inc.Original != nil && inc.Original.Known:
			restore++
		default:
			unknown++ // denied with no original: restore would only report it
		}
	}
	switch {
	case d.rng.Float64() < 0.1:
		return d.pick(chaosResponders), "lockdown:deny"
	case failed > 0:
		return d.pick(chaosResponders), "lockdown:retry"
	case deny > 0:
		return d.pick(chaosResponders), "lockdown:deny"
	case awaiting > 0:
		var others []string
		for _, a := range chaosApprovers {
			if a != requester {
				others = append(others, a)
			}
		}
		return d.pick(others), "approve:restore"
	case restore > 0:
		return d.pick(chaosResponders), "lockdown:restore"
	case unknown > 0:
		return d.pick(chaosResponders), "lockdown:abort"
	}
	return "", ""
}

// checkUnknownListed: before the abort that leaves them denied, the card lists every open member
// with no known original (waiting, bounded, for the card to catch up with the store).
func (d *lockDriver) checkUnknownListed(ctx context.Context, l session.Lockdown, incs []session.Incident) {
	var want []string
	for _, inc := range incs {
		if inc.Open() && (inc.Original == nil || !inc.Original.Known) {
			want = append(want, inc.Key())
		}
	}
	if len(want) == 0 {
		return
	}
	head := fmt.Sprintf("*%d with no known original*", len(want))
	listed := d.poll(ctx, 30*time.Second, func() bool {
		m, ok := d.w.slack.Message(l.Channel, l.MessageTS)
		return ok && strings.Contains(string(m.Blocks), head) &&
			!slices.ContainsFunc(want, func(k string) bool { return !strings.Contains(string(m.Blocks), k) })
	})
	if !listed {
		m, _ := d.w.slack.Message(l.Channel, l.MessageTS)
		d.rec.problem("%s: the card does not list the %d member(s) with no known original %v (want %q):\n%s", l.ID, len(want), want, head, m.Blocks)
		return
	}
	d.rec.mu.Lock()
	d.rec.unknownOK++
	d.rec.mu.Unlock()
}

// finishLockdowns drives every lockdown seen, and any other open one, to its end (no kills), and
// returns the member incidents of them all, to be checked with the others.
func finishLockdowns(ctx context.Context, d *lockDriver) ([]string, error) {
	var errs []error
	if open, err := d.w.store.ListOpenLockdowns(ctx); err == nil {
		for _, l := range open {
			d.rec.add(l.ID)
		}
	} else {
		errs = append(errs, err)
	}
	var ids []string
	member := func(id string) {
		l, err := d.w.store.GetLockdown(ctx, id)
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, m := range l.Members {
			if m.IncidentID != "" && !slices.Contains(ids, m.IncidentID) {
				ids = append(ids, m.IncidentID)
			}
		}
	}
	for _, id := range slices.Clone(d.rec.ids) {
		member(id) // first: a lockdown that cannot be finished is still checked
		if err := d.drive(ctx, id); err != nil {
			errs = append(errs, err)
		}
		member(id) // members opened by the finish
	}
	return ids, errors.Join(errs...)
}

// newLockDriver is a lockdown driver with its own random sequence (stream s of the run's seed).
func newLockDriver(w *world, seed int64, s uint64, f *chaosFigures, rec *lockRecord, kill func(string)) *lockDriver {
	return &lockDriver{driver: &driver{w: w, rng: rand.New(rand.NewPCG(uint64(seed), s)), f: f, id: int(s)}, rec: rec, kill: kill}
}
