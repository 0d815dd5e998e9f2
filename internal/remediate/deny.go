package remediate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// Progress keys of deny.
const (
	progDenyPolicy  = "policy"       // PolicySet: the deny PUT was accepted
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

// deny: snapshot the original policy (write-once), check the deny policy exists, PUT it, verify
// by GET; then end the user's live calls, re-list them and record how many were ended.
func (r *runner) deny() (stepResult, error) {
	e := r.e
	deny := e.denyPolicy(&r.inc)
	u, err := e.pbx.GetUser(r.pctx, r.domain(), r.user())
	if err != nil {
		return stepResult{}, fmt.Errorf("read user: %w", err)
	}
	if r.inc.Original == nil {
		// Write-ahead: the original is durable before the PUT that overwrites it. The store keeps
		// the first record and never records the deny policy as an original.
		o := session.Original{Policy: u.DialPolicy, Known: u.DialPolicy != "" && !samePolicy(u.DialPolicy, deny)}
		inc, err := r.lease.SaveOriginal(r.ctx, o, deny)
		if err != nil && !errors.Is(err, session.ErrNotReplicated) {
			return stepResult{}, fmt.Errorf("record original dial policy: %w", err)
		}
		r.inc = inc
		orig := "unknown (already in " + deny + ")"
		if inc.Original.Known {
			orig = inc.Original.Policy
		}
		r.auditStep("original", "", orig, "original dial permission recorded before any change")
		e.notify(r.ctx, inc.ID)
		if err != nil {
			return stepResult{}, fmt.Errorf("record original dial policy: %w", err)
		}
	} else if err := r.lease.Replicated(r.ctx); err != nil {
		// A retry after a refused wait: the record is stored, but maybe on the primary only.
		return stepResult{}, fmt.Errorf("original dial policy: %w", err)
	}
	deny = e.denyPolicy(&r.inc)

	if _, err := e.pbx.GetDialPolicy(r.pctx, r.domain(), deny); err != nil {
		if !errors.Is(err, netsapiens.ErrNotFound) {
			return stepResult{}, fmt.Errorf("read deny policy: %w", err)
		}
		if !r.planNote(fmt.Sprintf("the deny policy %q does not exist: deny would fail", deny)) {
			return stepResult{}, errorf(ErrDenyPolicyMissing, "PBX refused: dial policy %q does not exist in %s or system-wide",
				deny, r.domain())
		}
	}
	var subs []session.SubResult
	status := session.StatusDone
	perms, err := e.pbx.ListDialPolicyPermissions(r.pctx, r.domain(), deny)
	switch {
	case err != nil:
		subs = append(subs, session.SubResult{Name: "deny policy rules", Outcome: session.OutcomeFailed,
			Detail: "could not read its rules: " + UserMessage(err)})
		status = session.StatusWarnings
	default:
		var permits []string
		for _, p := range perms {
			if p.Permits() {
				permits = append(permits, p.Match)
			}
		}
		if len(permits) > 0 {
			r.planNote(fmt.Sprintf("warning: %q has a permit rule (%s)", deny, permits[0]))
			subs = append(subs, session.SubResult{Name: "deny policy rules", Outcome: session.OutcomeFailed,
				Detail: fmt.Sprintf("%q has permit rule(s) for %s: some calls still go through", deny, joinComma(permits))})
			status = session.StatusWarnings
		}
	}

	if !samePolicy(u.DialPolicy, deny) {
		err := r.write("put user dial-policy", func(ctx context.Context) error {
			return e.pbx.UpdateUser(ctx, r.domain(), r.user(), netsapiens.UserUpdate{DialPolicy: &deny})
		})
		if err != nil {
			return stepResult{}, fmt.Errorf("set dial policy %q: %w", deny, err)
		}
		if err := r.progress(progDenyPolicy, string(PolicySet)); err != nil {
			return stepResult{}, err
		}
		r.auditStep("policy", u.DialPolicy, deny, "dial permission set (PUT accepted)")
	} else {
		r.planCall(PlannedCall{Method: "—", Path: userPath(r.domain(), r.user()), Before: u.DialPolicy, After: deny,
			Note: "already in the deny policy: no PUT; the original is recorded as unknown unless a previous incident kept it"})
	}
	got, err := e.pbx.GetUser(r.pctx, r.domain(), r.user())
	if err != nil {
		return stepResult{}, fmt.Errorf("verify dial policy: %w", err)
	}
	if !samePolicy(got.DialPolicy, deny) {
		return stepResult{}, errorf(ErrVerify, "the PBX accepted the change but the user's dial permission reads %q, not %q",
			got.DialPolicy, deny)
	}
	subs = append([]session.SubResult{{Name: "dial permission", Outcome: session.OutcomeVerified,
		Detail: fmt.Sprintf("%s (read back)", deny)}}, subs...)

	ended, remain, err := r.endCalls()
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
	return stepResult{status: status, summary: summary, subs: subs, before: before, after: deny}, nil
}

// endCalls lists the user's live calls, ends each, and re-lists them. The count of ended calls
// adds up over resumed runs.
func (r *runner) endCalls() (ended, remain int, err error) {
	e := r.e
	ended, _ = strconv.Atoi(r.prog(progCallsEnded))
	calls, err := e.pbx.ListCalls(r.pctx, r.domain(), r.user())
	if err != nil {
		return 0, 0, fmt.Errorf("list live calls: %w", err)
	}
	for _, c := range calls {
		id := c.ID()
		if id == "" {
			continue
		}
		err := r.write("end call", func(ctx context.Context) error {
			return e.pbx.EndCall(ctx, r.domain(), r.user(), id)
		})
		if errors.Is(err, netsapiens.ErrNotFound) {
			continue // it ended by itself meanwhile
		}
		if err != nil {
			return 0, 0, fmt.Errorf("end live call: %w", err)
		}
		ended++
		if err := r.progress(progCallsEnded, strconv.Itoa(ended)); err != nil {
			return 0, 0, err
		}
		r.auditStep("call", "live call to "+c.DialedNumber, "ended", "")
	}
	left, err := e.pbx.ListCalls(r.pctx, r.domain(), r.user())
	if err != nil {
		return 0, 0, fmt.Errorf("re-list live calls: %w", err)
	}
	remain = 0
	for _, c := range left {
		if c.ID() != "" {
			remain++
		}
	}
	if remain > 0 {
		if err := r.progress(progCallsRemain, strconv.Itoa(remain)); err != nil {
			return 0, 0, err
		}
	}
	return ended, remain, nil
}
