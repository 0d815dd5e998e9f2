package remediate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// Progress keys of deny.
const (
	progDenyPolicy  = "policy"       // PolicySet: the deny PUT was accepted; PolicyVerified: read back (contained)
	progCallsEnded  = "calls-ended"  // live calls ended so far (all runs of this step)
	progCallsRemain = "calls-remain" // live calls still up at the last re-list
)

// samePolicy compares dial policy names as the store does (SaveOriginal).
func samePolicy(a, b string) bool {
	return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}

// denyPolicy is the incident's deny policy (recorded by deny), else the configured one.
func (e *Engine) denyPolicy(inc *session.Incident) string {
	if inc.DenyPolicy != "" {
		return inc.DenyPolicy
	}
	return e.cfg.DenyPolicy
}

// deny contains the user at the floor of three PBX round trips: read the user, record the
// original (write-ahead), PUT the deny policy, read it back. The deny policy's existence and
// rules come from the per-domain cache (policycache.go), looked up while the user is read. Once
// the read-back agrees, the step records PolicyVerified (the card shows "contained") and only
// then ends the user's live calls, re-lists them and finishes; a runner that dies meanwhile is
// resumed by Reconcile, which reads the user again (no second PUT) and ends the calls.
//
// The critical path (user read, policy lookup, PUT, verify) goes before every other waiting
// PBX request (netsapiens.Critical); the live-call work after it goes after every user's
// critical path and every open's user read, before cards' fill-ins and evidence
// (netsapiens.FollowUp: priority.go says why), so in a burst or a lockdown one user's calls
// list never delays another user's containment. A resumed run whose containment was already
// verified only re-checks it: FollowUp as well.
func (r *runner) deny() (stepResult, error) {
	e := r.e
	pctx := r.pctx
	crit := netsapiens.Critical
	if r.prog(progDenyPolicy) == string(PolicyVerified) {
		crit = netsapiens.FollowUp
	}
	r.pctx = netsapiens.WithPriority(pctx, crit)
	deny := e.denyPolicy(&r.inc)
	policy := r.lookupPolicy(deny)
	u, err := r.readUser()
	if err != nil {
		return stepResult{}, fmt.Errorf("read user: %w", err)
	}
	if r.inc.Original == nil {
		// Write-ahead: the original is durable before the PUT that overwrites it. The store keeps
		// the first record and never records the deny policy as an original. Its audit line is
		// written with it: one fsync before the PUT, not two.
		o := session.Original{Policy: u.DialPolicy, Known: u.DialPolicy != "" && !samePolicy(u.DialPolicy, deny)}
		inc, err := r.lease.SaveOriginal(r.ctx, o, deny, func(inc *session.Incident) []session.AuditEntry {
			orig := "unknown (already in " + deny + ")"
			if inc.Original.Known {
				orig = inc.Original.Policy
			}
			return []session.AuditEntry{r.stepLine("original", "", orig, "original dial permission recorded before any change")}
		})
		if err != nil && !errors.Is(err, session.ErrNotReplicated) {
			return stepResult{}, fmt.Errorf("record original dial policy: %w", err)
		}
		r.inc = inc
		e.notify(r.ctx, inc.ID)
		if err != nil {
			return stepResult{}, fmt.Errorf("record original dial policy: %w", err)
		}
	} else if err := r.lease.Replicated(r.ctx); err != nil {
		// A retry after a refused wait: the record is stored, but maybe on the primary only.
		return stepResult{}, fmt.Errorf("original dial policy: %w", err)
	}
	if d := e.denyPolicy(&r.inc); d != deny {
		deny, policy = d, r.lookupPolicy(d) // an earlier run recorded another deny policy
	}

	info, err := policy()
	if err != nil {
		return stepResult{}, fmt.Errorf("read deny policy: %w", err)
	}
	if !info.exists && !r.planNote(fmt.Sprintf("the deny policy %q does not exist: deny would fail", deny)) {
		return stepResult{}, errorf(ErrDenyPolicyMissing, "PBX refused: dial policy %q does not exist in %s or system-wide",
			deny, r.domain())
	}
	var subs []session.SubResult
	status := session.StatusDone
	switch {
	case info.rulesErr != nil:
		subs = append(subs, session.SubResult{Name: "deny policy rules", Outcome: session.OutcomeFailed,
			Detail: "could not read its rules: " + UserMessage(info.rulesErr)})
		status = session.StatusWarnings
	case len(info.permits) > 0:
		r.planNote(fmt.Sprintf("warning: %q has a permit rule (%s)", deny, info.permits[0]))
		subs = append(subs, session.SubResult{Name: "deny policy rules", Outcome: session.OutcomeFailed,
			Detail: fmt.Sprintf("%q has permit rule(s) for %s: some calls still go through", deny, joinComma(info.permits))})
		status = session.StatusWarnings
	}

	put := !samePolicy(u.DialPolicy, deny)
	if put {
		err := r.write("put user dial-policy", func(ctx context.Context) error {
			return e.pbx.UpdateUser(ctx, r.domain(), r.user(), netsapiens.UserUpdate{DialPolicy: &deny})
		})
		if err != nil {
			return stepResult{}, fmt.Errorf("set dial policy %q: %w", deny, err)
		}
	} else {
		r.planCall(PlannedCall{Method: "—", Path: userPath(r.domain(), r.user()), Before: u.DialPolicy, After: deny,
			Note: "already in the deny policy: no PUT; the original is recorded as unknown unless a previous incident kept it"})
	}
	// The read-back goes out at once; the record of the accepted PUT is written meanwhile.
	var got netsapiens.User
	var recErr error
	domain, user := r.domain(), r.user() // r.inc changes under the record
	r.alongside(func() { got, err = e.pbx.GetUser(r.pctx, domain, user) }, func() {
		if put {
			recErr = r.record(progDenyPolicy, string(PolicySet),
				auditLine(r.stepLine("policy", u.DialPolicy, deny, "dial permission set (PUT accepted)")))
		}
	})
	if recErr != nil {
		return stepResult{}, recErr
	}
	if err != nil {
		return stepResult{}, fmt.Errorf("verify dial policy: %w", err)
	}
	if !samePolicy(got.DialPolicy, deny) {
		return stepResult{}, errorf(ErrVerify, "the PBX accepted the change but the user's dial permission reads %q, not %q",
			got.DialPolicy, deny)
	}
	// Contained: the card says so now, before the live calls are dealt with.
	if r.prog(progDenyPolicy) != string(PolicyVerified) {
		if err := r.progress(progDenyPolicy, string(PolicyVerified)); err != nil {
			return stepResult{}, err
		}
	}
	if r.opts.Contained != nil {
		r.opts.Contained()
	}
	subs = append([]session.SubResult{{Name: "dial permission", Outcome: session.OutcomeVerified,
		Detail: fmt.Sprintf("%s (read back)", deny)}}, subs...)

	r.pctx = netsapiens.WithPriority(pctx, netsapiens.FollowUp) // contained: the live calls come after every user's PUT and open
	if r.opts.Continue != nil && r.dry == nil {
		return stepResult{rest: func() (stepResult, error) { return r.denyCalls(status, subs, deny) }}, nil
	}
	return r.denyCalls(status, subs, deny)
}

// followWorkers is how many deny runs continued after "contained" (RunOptions.Continue) do
// their live-call work at once. It goes at netsapiens.FollowUp, after every other user's
// containment and every open's user read, so under a burst most of it waits anyway: a
// goroutine parked for each (a Slack job's whole stack) was ≈ 100 of them at the peak of a
// 100-incident burst. Sixteen keep the PBX's slots fed when nothing else waits.
const followWorkers = 16

// denyCalls is deny's work after "contained": it ends the user's live calls and sums the step
// up (status and subs so far, the deny policy set).
func (r *runner) denyCalls(status session.Status, subs []session.SubResult, deny string) (stepResult, error) {
	ended, remain, last, err := r.endCalls()
	if err != nil {
		return stepResult{}, err
	}
	callsSub := session.SubResult{Name: "live calls", Outcome: session.OutcomeVerified,
		Detail: fmt.Sprintf("%d ended, none left", ended)}
	if remain > 0 {
		callsSub.Outcome, callsSub.Detail = session.OutcomeFailed, fmt.Sprintf("%d ended, %d still up", ended, remain)
		status = session.StatusWarnings
	}
	subs = append(subs, callsSub)
	summary := fmt.Sprintf("verified · %d live call(s) ended", ended)
	if remain > 0 {
		summary += fmt.Sprintf(" · %d still up", remain)
	}
	before := "unknown"
	if r.inc.Original != nil && r.inc.Original.Known {
		before = r.inc.Original.Policy
	}
	return stepResult{status: status, summary: summary, subs: subs, before: before, after: deny,
		known: knownReads{calls: last, callsRead: true}}, nil
}

// userRead is deny's read of the user, sent while the step starts (readUserEarly): one Redis
// write (the start and its audit lines) fewer before the PBX's first answer.
type userRead struct {
	cancel context.CancelFunc
	answer chan userAnswer // buffered: the read never blocks on a run that dropped it
}

type userAnswer struct {
	u   netsapiens.User
	err error
}

// readUserEarly sends deny's read of the user of inc while the step's start is being written
// (session.BeginOptions.Starting). It is a read, and only the run that wins the start takes its
// answer (a start that fails drops it): that run's Begin found no deny running, so the user's
// dial policy read now is the one it would read after the start (a PUT of an earlier attempt came
// before its Fail, and so before this start; and with no original recorded yet no attempt has
// reached a PUT). It goes at the priority the run would read at: deny's critical path, or
// FollowUp for a Retry of a containment verified already.
func (e *Engine) readUserEarly(ctx context.Context, inc *session.Incident) *userRead {
	prio := netsapiens.Critical
	if inc.Step(session.StepDeny).Progress[progDenyPolicy] == string(PolicyVerified) {
		prio = netsapiens.FollowUp
	}
	// Detached from the caller like the step's own calls (execute); dropped with the run.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	pctx := netsapiens.WithPriority(netsapiens.WithLogTag(rctx, inc.ID), prio)
	rd := &userRead{cancel: cancel, answer: make(chan userAnswer, 1)}
	domain, user := inc.Domain, inc.User
	go func() {
		u, err := e.pbx.GetUser(pctx, domain, user)
		rd.answer <- userAnswer{u, err}
	}()
	return rd
}

// drop gives up the read (its run did not start, or has ended).
func (rd *userRead) drop() {
	if rd != nil {
		rd.cancel()
	}
}

// readUser is deny's read of the user: the early one when the run has it, else one now.
func (r *runner) readUser() (netsapiens.User, error) {
	rd := r.early
	if rd == nil {
		return r.e.pbx.GetUser(r.pctx, r.domain(), r.user())
	}
	r.early = nil // a run reads the user early once
	select {
	case a := <-rd.answer:
		return a.u, a.err
	case <-r.ctx.Done():
		return netsapiens.User{}, context.Cause(r.ctx)
	}
}

// lookupPolicy starts the lookup of the deny policy in the incident's domain and returns its
// answer's wait. A dry run reads the PBX itself, in order (its stand-in is one goroutine's).
func (r *runner) lookupPolicy(name string) func() (policyInfo, error) {
	if r.dry != nil {
		return func() (policyInfo, error) { return readPolicy(r.pctx, r.e.pbx, r.domain(), name) }
	}
	type answer struct {
		info policyInfo
		err  error
	}
	ch := make(chan answer, 1)
	ctx, domain := r.pctx, r.domain() // the runner changes r.inc meanwhile
	go func() {
		info, err := r.e.policies.get(ctx, r.e.pbx, domain, name)
		ch <- answer{info, err}
	}()
	return func() (policyInfo, error) {
		a := <-ch
		return a.info, a.err
	}
}

// alongside runs a and b at the same time and returns when both have; a dry run runs them one
// after the other (its stand-ins are one goroutine's).
func (r *runner) alongside(a, b func()) {
	if r.dry != nil {
		a()
		b()
		return
	}
	var wg sync.WaitGroup
	wg.Go(b)
	a()
	wg.Wait()
}

// endCalls lists the user's live calls, ends each, and re-lists them. The list is taken after the
// verified PUT, so when it shows no call to end it is the answer and there is nothing to re-list
// (a call placed after it meets the deny policy). The count of ended calls adds up over resumed
// runs; last is the latest list (the live calls now).
func (r *runner) endCalls() (ended, remain int, last []netsapiens.ActiveCall, err error) {
	e := r.e
	ended, _ = strconv.Atoi(r.prog(progCallsEnded))
	calls, err := e.pbx.ListCalls(r.pctx, r.domain(), r.user())
	if err != nil {
		return 0, 0, nil, fmt.Errorf("list live calls: %w", err)
	}
	tried := 0
	for _, c := range calls {
		id := c.ID()
		if id == "" {
			continue
		}
		tried++
		err := r.write("end call", func(ctx context.Context) error {
			return e.pbx.EndCall(ctx, r.domain(), r.user(), id)
		})
		if errors.Is(err, netsapiens.ErrNotFound) {
			continue // it ended by itself meanwhile
		}
		if err != nil {
			return 0, 0, nil, fmt.Errorf("end live call: %w", err)
		}
		ended++
		if err := r.record(progCallsEnded, strconv.Itoa(ended),
			auditLine(r.stepLine("call", "live call to "+c.DialedNumber, "ended", ""))); err != nil {
			return 0, 0, nil, err
		}
	}
	if tried == 0 {
		return ended, 0, calls, nil
	}
	left, err := e.pbx.ListCalls(r.pctx, r.domain(), r.user())
	if err != nil {
		return 0, 0, nil, fmt.Errorf("re-list live calls: %w", err)
	}
	remain = 0
	for _, c := range left {
		if c.ID() != "" {
			remain++
		}
	}
	if remain > 0 {
		if err := r.progress(progCallsRemain, strconv.Itoa(remain)); err != nil {
			return 0, 0, nil, err
		}
	}
	return ended, remain, left, nil
}
