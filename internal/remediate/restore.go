package remediate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// progRestore records that restore's PUT was accepted.
const progRestore = "policy"

// restore: compare the live policy with the deny policy and the original; PUT the original only
// while the user is still in the deny policy (or with force), verify by GET, then close the
// incident (which also forgets the user's last known original).
func (r *runner) restore() (stepResult, error) {
	e := r.e
	deny := e.denyPolicy(&r.inc)
	// Force and an explicit policy belong to the click (or approved request) that asked for them:
	// Begin records this run's force on the step (a takeover keeps it, a Retry starts without
	// it), and the chosen policy is per-run progress.
	force := r.opts.Force || r.inc.Step(session.StepRestore).Force
	explicit := r.opts.RestorePolicy
	if explicit == "" {
		explicit = r.prog(r.runKey(progPolicy))
	}
	if r.opts.RestorePolicy != "" && r.prog(r.runKey(progPolicy)) != r.opts.RestorePolicy {
		if err := r.progress(r.runKey(progPolicy), r.opts.RestorePolicy); err != nil {
			return stepResult{}, err
		}
	}

	orig := r.inc.Original
	target := ""
	switch {
	case explicit != "":
		if _, err := e.pbx.GetDialPolicy(r.pctx, r.domain(), explicit); err != nil {
			if errors.Is(err, netsapiens.ErrNotFound) {
				return stepResult{}, errorf(ErrInvalid, "dial policy %q does not exist in %s or system-wide", explicit, r.domain())
			}
			return stepResult{}, fmt.Errorf("read policy %q: %w", explicit, err)
		}
		if samePolicy(explicit, deny) {
			return stepResult{}, errorf(ErrInvalid, "%q is the deny policy; choose the policy the user should have", explicit)
		}
		target = explicit
		switch {
		case orig != nil && orig.Known && !samePolicy(orig.Policy, explicit):
			r.auditStep("target", orig.Policy, explicit, "explicit policy chosen by "+r.actor+" instead of the recorded original")
		case orig == nil || !orig.Known:
			r.auditStep("target", "unknown", explicit, "policy to restore chosen by "+r.actor+" (the original was unknown)")
		}
	case orig != nil && orig.Known && orig.Policy != "":
		target = orig.Policy
	default:
		return stepResult{}, errorf(ErrOriginalUnknown,
			"the original dial permission is unknown (the user was already in %q when the incident began); choose the policy to restore", deny)
	}

	if err := r.gate(); err != nil {
		return stepResult{}, err
	}
	u, err := e.pbx.GetUser(r.pctx, r.domain(), r.user())
	if err != nil {
		return stepResult{}, fmt.Errorf("read user: %w", err)
	}
	live := u.DialPolicy
	switch {
	case samePolicy(live, target):
		// Already restored (by an interrupted run of ours, or by hand): verify and close.
	case samePolicy(live, deny) || force:
		if !samePolicy(live, deny) {
			r.auditStep("drift", live, target, "forced restore over a drifted dial permission")
		}
		err := r.write("put user dial-policy", func(ctx context.Context) error {
			return e.pbx.UpdateUser(ctx, r.domain(), r.user(), netsapiens.UserUpdate{DialPolicy: &target})
		})
		if err != nil {
			return stepResult{}, fmt.Errorf("restore dial policy %q: %w", target, err)
		}
		if err := r.record(progRestore, string(PolicySet),
			auditLine(r.stepLine("policy", live, target, "dial permission set (PUT accepted)"))); err != nil {
			return stepResult{}, err
		}
	default:
		// The card's Force restore dialog names the live policy: store what was just read.
		r.refreshLive()
		return stepResult{}, &DriftError{Live: live, Original: target, Deny: deny}
	}
	got, err := e.pbx.GetUser(r.pctx, r.domain(), r.user())
	if err != nil {
		return stepResult{}, fmt.Errorf("verify dial policy: %w", err)
	}
	if !samePolicy(got.DialPolicy, target) {
		return stepResult{}, errorf(ErrVerify, "the PBX accepted the change but the user's dial permission reads %q, not %q",
			got.DialPolicy, target)
	}
	sub := session.SubResult{Name: "dial permission", Outcome: session.OutcomeVerified, Detail: target + " (read back)"}
	var subs []session.SubResult
	subs = append(subs, sub)
	for _, s := range []session.Step{session.StepRecreate, session.StepReset} {
		if !r.inc.Step(s).Status.Finished() {
			subs = append(subs, session.SubResult{Name: string(s), Outcome: session.OutcomeSkipped,
				Detail: "restored before " + string(s) + ": the stolen credentials may still work"})
		}
	}
	return stepResult{status: session.StatusDone, summary: "verified · dial permission back to " + target,
		subs: subs, before: live, after: target, close: true}, nil
}

// refreshLive stores the live state read now (not in a dry run), so that what the card shows
// next, the Force restore dialog included, is what the PBX holds; a failed read is only logged.
func (r *runner) refreshLive() {
	if r.e.dry {
		return
	}
	if _, err := r.e.Refresh(r.ctx, r.inc.ID); err != nil {
		r.e.log.Warn().Err(err).Str("incident", r.inc.ID).Msg("refresh the live state after a drift")
	}
}

// RequestedPolicy is the policy a pending restore request asks for (chosen because the original
// was unknown, or instead of it), or "": what the approver's dialog and the card name.
func RequestedPolicy(inc *session.Incident) string {
	return inc.Step(session.StepRestore).Progress[progPolicy]
}

// PolicyChoice is a dial policy restore may set when the original is unknown.
type PolicyChoice struct {
	Name   string
	System bool // system-wide, not the domain's own
}

// RestoreChoices lists the dial policies restore may set for the incident's user when its
// original is unknown (the card's restore_original dialog): the domain's own first, then the
// system-wide ones (GetDialPolicy looks in that order, so a name in both is listed once, as the
// domain's), each in the PBX's order. Every deny policy is left out: the incident's, the
// configured one and any the bot set for this user before (issue 10, sequences 5 and 8).
// Errors: ErrNotFound, the store's and the PBX's errors (wrapped).
func (e *Engine) RestoreChoices(ctx context.Context, id string) ([]PolicyChoice, error) {
	inc, err := e.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	deny := []string{e.denyPolicy(&inc), e.cfg.DenyPolicy}
	kept, err := e.store.DenyPolicies(ctx, inc.User, inc.Domain)
	if err != nil {
		return nil, fmt.Errorf("read the deny policies set before: %w", err)
	}
	deny = append(deny, kept...)
	pols, err := e.pbx.ListDialPolicies(ctx, inc.Domain)
	if err != nil {
		return nil, fmt.Errorf("list the dial policies of %s: %w", inc.Domain, err)
	}
	seen := map[string]bool{}
	var out []PolicyChoice
	for _, sys := range []bool{false, true} {
		for _, p := range pols {
			k := strings.ToLower(strings.TrimSpace(p.Name))
			if p.SystemLevel != sys || seen[k] || slices.ContainsFunc(deny, func(d string) bool { return samePolicy(d, p.Name) }) ||
				netsapiens.ValidatePolicyName(p.Name) != nil {
				continue
			}
			seen[k] = true
			out = append(out, PolicyChoice{Name: p.Name, System: sys})
		}
	}
	return out, nil
}
