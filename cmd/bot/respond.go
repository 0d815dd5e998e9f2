package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"regexp"
	"strings"

	"github.com/mattn/go-isatty"

	"github.com/compromised-responder/bot/internal/lockdown"
	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

const respondUsage = `usage: bot respond <command> [arguments] [flags]      (flags may stand before or after the arguments)

  open <user>@<domain> [--reason TEXT] [--channel C…]   open an incident (or name the user's open one)
  run <INC-…|user@domain> deny|recreate|reset|restore|credentials [--force] [--policy NAME] [--over-gate]
                                      run a step, or ask for approval where APPROVAL_STEPS says so
  approve <INC-…> <step>              approve another actor's request; the step runs at once
  reject <INC-…> <step>               answer a request with no (the requester may withdraw it)
  abort <INC-…> [--reason TEXT] [--confirm-missing]   close without restoring (the user stays denied)
  status <INC-…|user@domain>          the incident, with the live state read again from the PBX
  status <LCK-…>                      a lockdown: its progress and every member's state
  plan <INC-…|user@domain>            dry run: every change the runbook would make; no writes
  list                                open incidents

  --actor NAME     who you are, recorded as cli:NAME (default: the OS user)
  --channel C…     open: a running bot serve posts the card there as soon as Slack answers; every
                   event, the CLI's included, then appears in the card's thread
  --force          run restore: overwrite a dial permission changed by hand since deny
  --policy NAME    run restore: the policy to restore when the original is unknown
  --over-gate      run restore: restore although the restore gate is not met (RESTORE_GATE; audited
                   as restored over the gate)
  --reveal         print new secrets (SIP passwords, the PIN) even when stdout is not a terminal
  --confirm-missing  run restore, abort: close although devices are deleted and not re-created
                   (refused without it, naming them); their snapshot is kept for the user's next incident

  The same engine, Redis state and audit chain as the Slack app, configured by the same environment
  (REDIS_URL, NS_*, APPROVAL_STEPS, AUDIT_KEY, SNAPSHOT_KEY, …); no Slack token is needed. New
  secrets go to stdout only, and only when it is a terminal or with --reveal.

  Exit status: 0 done, 1 failed, 2 usage (or no such incident/user), 3 awaiting approval,
  4 refused (self-approval, wrong state, step order, closed incident).
`

// actorName is what --actor accepts: the name part of "cli:<name>".
var actorName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)

// secretSteps make new credentials; the CLI only runs them where it can show them.
var secretSteps = map[string]bool{"recreate": true, "reset": true, "credentials": true}

// responder is one `bot respond` invocation.
type responder struct {
	eng    *remediate.Engine
	store  *session.Store
	actor  string // cli:<name>
	out    io.Writer
	reveal bool // secrets may be printed on out
}

func (r *responder) say(format string, a ...any) { fmt.Fprintf(r.out, format+"\n", a...) }

// runRespond is the CLI fallback when Slack is down: the runbook from a terminal, with the same
// engine, state, approvals and audit as the Slack app.
//
// Authorization: the CLI trusts whoever can run it with the deployment's Redis and PBX
// credentials, as an operator (such a person could call the PBX API directly anyway); RESPONDERS
// and APPROVERS are Slack IDs and do not apply. What still holds is the approval rule: a step in
// APPROVAL_STEPS needs a second, distinct actor, and the requester cannot approve. The actor names
// are given by the operator (--actor), so the audit records who said they acted, from which OS
// account being up to the host's own logs.
func runRespond(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("respond", flag.ContinueOnError)
	actor := fs.String("actor", "", "who you are, recorded as cli:NAME (default: the OS user)")
	reason := fs.String("reason", "", "open: why; abort: a note")
	channel := fs.String("channel", "", "open: the channel for the card (C…)")
	force := fs.Bool("force", false, "run restore: overwrite a drifted dial permission")
	overGate := fs.Bool("over-gate", false, "run restore: restore although the restore gate is not met")
	policy := fs.String("policy", "", "run restore: the policy to restore when the original is unknown")
	reveal := fs.Bool("reveal", false, "print new secrets even when stdout is not a terminal")
	missingOK := fs.Bool("confirm-missing", false, "run restore, abort: close although devices are deleted and not re-created (their snapshot is kept for the user)")
	pos, done, err := parseCLI(fs, args, respondUsage, stdout, stderr)
	if done || err != nil {
		return err
	}
	if len(pos) == 0 {
		fmt.Fprint(stderr, respondUsage)
		return exitf(exitUsage, "respond: name a command (open, run, approve, reject, abort, status, plan, list)")
	}
	cmd, pos := pos[0], pos[1:]
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := checkRespondArgs(cmd, pos, set); err != nil {
		return err
	}
	if set["channel"] && !channelIDPatten.MatchString(*channel) {
		return exitf(exitUsage, "respond: --channel must be a channel ID (C…/G…), got %q", *channel)
	}
	name, err := actorOf(*actor, getenv)
	if err != nil {
		return err
	}
	r := &responder{actor: "cli:" + name, out: stdout, reveal: *reveal || isTerminal(stdout)}
	if step := stepArg(cmd, pos); secretSteps[step] && !r.reveal {
		return exitf(exitUsage, "respond: %s makes new secrets and stdout is not a terminal: run it in a terminal, "+
			"or add --reveal to print them to stdout (never to stderr or a log)", step)
	}

	// list reads Redis only; every other command may reach the PBX (through the engine).
	cfg, err := cliConfig("respond", getenv, cmd != "list")
	if err != nil {
		return err
	}
	log := cliLogger(cfg, stderr)
	store, rdb, err := openCLIStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer rdb.Close()
	r.store = store
	if cmd == "list" {
		return r.list(ctx)
	}
	pbx, err := netsapiens.New(netsapiensConfig(cfg, log))
	if err != nil {
		return fmt.Errorf("netsapiens client: %w", err)
	}
	// The same lease as serve's: a step whose CLI was interrupted is resumed by a running
	// `bot serve` within 10 s.
	ecfg, err := engineConfig(cfg, "cli-"+replicaID(), log, nil)
	if err != nil {
		return err
	}
	if r.eng, err = remediate.New(pbx, store, ecfg); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	defer r.eng.Wait() // the evidence an open or a deny reads in the background is stored before exit

	switch cmd {
	case "open":
		return r.open(ctx, pos[0], *reason, *channel)
	case "run":
		return r.run(ctx, pos[0], pos[1], remediate.RunOptions{Force: *force, RestorePolicy: *policy, OverGate: *overGate}, *missingOK)
	case "approve":
		return r.approve(ctx, pos[0], session.Step(pos[1]))
	case "reject":
		return r.reject(ctx, pos[0], session.Step(pos[1]))
	case "abort":
		return r.abort(ctx, pos[0], *reason, *missingOK)
	case "status":
		if id, ok, err := lockdownRef(pos[0]); ok {
			if err != nil {
				return err
			}
			lk, err := lockdown.New(pbx, r.eng, store, lockdown.Config{DenyPolicy: cfg.NSDenyPolicy, Logger: log})
			if err != nil {
				return fmt.Errorf("lockdowns: %w", err)
			}
			return r.lockdownStatus(ctx, lk, id) // respondlockdown.go
		}
		return r.status(ctx, pos[0])
	default: // plan
		return r.plan(ctx, pos[0])
	}
}

// checkRespondArgs checks the number of arguments of cmd and that every flag given applies to it.
func checkRespondArgs(cmd string, pos []string, set map[string]bool) error {
	want := map[string]int{"open": 1, "run": 2, "approve": 2, "reject": 2, "abort": 1, "status": 1, "plan": 1, "list": 0}
	n, ok := want[cmd]
	if !ok {
		return exitf(exitUsage, "respond: unknown command %q (open, run, approve, reject, abort, status, plan, list)", cmd)
	}
	if len(pos) != n {
		return exitf(exitUsage, "respond %s: takes %d argument(s), got %d (see bot respond -h)", cmd, n, len(pos))
	}
	only := map[string][]string{"reason": {"open", "abort"}, "channel": {"open"}, "force": {"run"}, "policy": {"run"}, "over-gate": {"run"},
		"confirm-missing": {"run", "abort"}}
	for f, cmds := range only {
		if set[f] && !contains(cmds, cmd) {
			return exitf(exitUsage, "respond %s: --%s applies only to %s", cmd, f, strings.Join(cmds, " and "))
		}
	}
	if step := stepArg(cmd, pos); step != "" && !session.Step(step).Valid() && !(cmd == "run" && step == "credentials") {
		return exitf(exitUsage, "respond %s: unknown step %q (deny, recreate, reset, restore%s)", cmd, step,
			map[bool]string{true: ", credentials"}[cmd == "run"])
	}
	if (set["force"] || set["policy"] || set["over-gate"]) && stepArg(cmd, pos) != "restore" {
		return exitf(exitUsage, "respond run: --force, --policy and --over-gate apply only to restore")
	}
	return nil
}

// stepArg is the step a command names ("" for none).
func stepArg(cmd string, pos []string) string {
	switch cmd {
	case "run", "approve", "reject":
		if len(pos) == 2 {
			return pos[1]
		}
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// actorOf is the actor's name: --actor, else the OS user.
func actorOf(flagValue string, getenv func(string) string) (string, error) {
	name := flagValue
	if name == "" {
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
		if name == "" {
			name = getenv("USER")
		}
		if i := strings.LastIndexAny(name, `\/`); i >= 0 { // DOMAIN\user
			name = name[i+1:]
		}
	}
	if !actorName.MatchString(name) {
		return "", exitf(exitUsage, "respond: --actor must be 1–32 of A-Z a-z 0-9 . _ - (recorded as cli:NAME), got %q", name)
	}
	return name, nil
}

// isTerminal reports whether w is a terminal (the only place a secret may appear uninvited).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// respondErr turns an engine error into the command's exit status and plain words.
func respondErr(what string, err error) error {
	code := exitFailed
	switch remediate.KindOf(err) {
	case remediate.KindInvalid, remediate.KindNoIncident, remediate.KindUserNotFound:
		code = exitUsage
	case remediate.KindStepOrder, remediate.KindClosed, remediate.KindAlreadyRunning, remediate.KindAlreadyDone,
		remediate.KindAwaiting, remediate.KindNotAwaiting, remediate.KindBadTransition, remediate.KindSelfApproval,
		remediate.KindExpired:
		code = exitRefused
	case remediate.KindInternal:
		// UserMessage hides internal details from Slack; the operator at the terminal gets them
		// (they never hold a secret: the engine and store scrub what they wrap).
		return &exitError{code: code, err: fmt.Errorf("%s: %w", what, err)}
	}
	return &exitError{code: code, err: fmt.Errorf("%s: %s", what, remediate.UserMessage(err))}
}

// resolve finds the incident a reference names: an incident ID, or user@domain (its open incident).
func (r *responder) resolve(ctx context.Context, ref string) (session.Incident, error) {
	if user, domain, ok := splitTarget(ref); ok {
		inc, err := r.store.FindOpen(ctx, user, domain)
		if errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrInvalid) {
			return inc, exitf(exitUsage, "no open incident for %s", ref)
		}
		if err != nil {
			return inc, respondErr("find the incident of "+ref, err)
		}
		return inc, nil
	}
	id, ok := session.NormalizeID(ref)
	if !ok {
		return session.Incident{}, exitf(exitUsage, "%q is neither an incident ID (INC-…) nor user@domain", ref)
	}
	inc, err := r.store.Get(ctx, id)
	if err != nil {
		return inc, respondErr(id, err)
	}
	return inc, nil
}

// splitTarget splits user@domain at its last @.
func splitTarget(s string) (user, domain string, ok bool) {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 || i == len(s)-1 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

func (r *responder) open(ctx context.Context, target, reason, channel string) error {
	user, domain, ok := splitTarget(target)
	if !ok {
		return exitf(exitUsage, "respond open: name the user as user@domain, got %q", target)
	}
	inc, created, err := r.eng.Open(ctx, remediate.OpenRequest{User: user, Domain: domain, Reason: reason, Actor: r.actor, Channel: channel})
	if err != nil {
		return respondErr("open", err)
	}
	if !created {
		r.say("%s is already open for %s (opened by %s at %s); nothing was opened.", inc.ID, inc.Key(), inc.OpenedBy, ts(inc.CreatedAt))
		r.printIncident(inc)
		return nil
	}
	r.say("%s opened for %s by %s", inc.ID, inc.Key(), r.actor)
	if channel != "" {
		if err := r.store.MarkCardPending(ctx, inc.ID); err != nil {
			return respondErr("record the card for "+channel, err)
		}
		r.say("  card: a running bot serve posts it in %s as soon as Slack answers, with every step run here in its thread", channel)
	}
	r.printIncident(inc)
	r.say("next: bot respond run %s deny", inc.ID)
	return nil
}

func (r *responder) run(ctx context.Context, ref, step string, o remediate.RunOptions, missingOK bool) error {
	inc, err := r.resolve(ctx, ref)
	if err != nil {
		return err
	}
	if missingOK {
		// The confirmation names the devices missing as this command read them.
		_, o.ConfirmMissing = remediate.DevicesMissing(&inc)
	}
	var res remediate.Result
	if step == "credentials" {
		res, err = r.eng.Credentials(ctx, inc.ID, r.actor)
		if err == nil {
			r.say("  credentials rotated for %d device(s)", len(res.Secrets))
		}
		r.secrets(res.Secrets, r.actor)
		if err != nil {
			return respondErr("credentials", err)
		}
		return nil
	}
	s := session.Step(step)
	if s == session.StepRestore && inc.Open() {
		for _, other := range []session.Step{session.StepRecreate, session.StepReset} {
			if st := inc.Step(other); !st.Status.Finished() && st.Status != session.StatusRunning {
				r.say("  warning: %s has not run: the stolen credentials may still work; it is recorded as skipped", other)
			}
		}
	}
	res, err = r.eng.Request(ctx, inc.ID, s, r.actor, o)
	if err == nil && res.Awaiting {
		st := res.Incident.Step(s)
		r.say("  %-9s awaiting approval (requested by %s, expires %s)", s, r.actor, ts(st.ApprovalExpires))
		r.say("  another actor approves with: bot respond approve %s %s --actor NAME", inc.ID, s)
		return exitf(exitAwaiting, "%s %s awaits another actor's approval", inc.ID, s)
	}
	return r.stepDone(res, s, r.actor, err)
}

func (r *responder) approve(ctx context.Context, ref string, s session.Step) error {
	inc, err := r.resolve(ctx, ref)
	if err != nil {
		return err
	}
	requester := inc.Step(s).RequestedBy
	res, err := r.eng.Approve(ctx, inc.ID, s, r.actor)
	if err == nil || res.Incident.Step(s).ApprovedBy == r.actor {
		r.say("  %-9s approved by %s (requested by %s)", s, r.actor, requester)
	}
	if errors.Is(err, remediate.ErrSelfApproval) {
		// As from Slack, the attempt goes to the audit (and so to the card's thread).
		if _, aerr := r.store.Append(ctx, session.AuditEntry{IncidentID: inc.ID, Actor: r.actor, Action: "refused.self_approval",
			Step: s, Detail: "the requester may not approve their own request"}); aerr != nil {
			r.say("  (the refusal could not be audited: %v)", aerr)
		}
	}
	if errors.Is(err, remediate.ErrSelfApproval) || errors.Is(err, remediate.ErrNotAwaiting) || errors.Is(err, remediate.ErrExpired) {
		return respondErr("approve "+string(s), err)
	}
	return r.stepDone(res, s, requester, err)
}

// stepDone prints what a step run verified (like the drill) and its secrets, and returns the
// command's result.
func (r *responder) stepDone(res remediate.Result, s session.Step, requester string, err error) error {
	if res.Incident.ID != "" {
		if st := res.Incident.Step(s); st.Status != session.StatusReady && (err == nil || st.Status == session.StatusFailed) {
			r.printStep(st)
		}
	}
	r.secrets(res.Secrets, requester)
	if err != nil {
		return respondErr(string(s), err)
	}
	if res.Incident.State == session.StateRestored {
		r.say("%s closed: the original dial permission is restored and verified", res.Incident.ID)
	}
	return nil
}

func (r *responder) reject(ctx context.Context, ref string, s session.Step) error {
	inc, err := r.resolve(ctx, ref)
	if err != nil {
		return err
	}
	inc, err = r.eng.Reject(ctx, inc.ID, s, r.actor)
	if err != nil {
		return respondErr("reject "+string(s), err)
	}
	r.say("  %-9s request rejected by %s; the step is %s again", s, r.actor, inc.Step(s).Status)
	return nil
}

func (r *responder) abort(ctx context.Context, ref, note string, missingOK bool) error {
	inc, err := r.resolve(ctx, ref)
	if err != nil {
		return err
	}
	confirm := ""
	if missingOK {
		_, confirm = remediate.DevicesMissing(&inc)
	}
	inc, err = r.eng.Abort(ctx, inc.ID, r.actor, note, confirm)
	if err != nil {
		return respondErr("abort", err)
	}
	r.say("%s aborted by %s: closed without restoring", inc.ID, r.actor)
	if inc.Step(session.StepDeny).Status.Finished() && !inc.Step(session.StepRestore).Status.Finished() {
		r.say("  %s stays in %s; the original dial permission is kept for the next incident", inc.Key(), inc.DenyPolicy)
	}
	return nil
}

func (r *responder) status(ctx context.Context, ref string) error {
	inc, err := r.resolve(ctx, ref)
	if err != nil {
		return err
	}
	if inc.Open() {
		fresh, err := r.eng.Refresh(ctx, inc.ID)
		if err != nil {
			r.say("(the PBX could not be read: %s; showing the last stored state)", remediate.UserMessage(err))
		} else {
			inc = fresh
		}
	}
	r.printIncident(inc)
	return nil
}

func (r *responder) plan(ctx context.Context, ref string) error {
	user, domain, ok := splitTarget(ref)
	if !ok {
		inc, err := r.resolve(ctx, ref)
		if err != nil {
			return err
		}
		user, domain = inc.User, inc.Domain
	}
	p, err := r.eng.Plan(ctx, user, domain)
	if err != nil {
		return respondErr("plan", err)
	}
	r.say("Plan for %s@%s (read %s; nothing was changed)", p.User, p.Domain, ts(p.ReadAt))
	for _, s := range p.Steps {
		r.say("  %s", s.Step)
		for _, c := range s.Calls {
			line := fmt.Sprintf("    %-6s %s  %s → %s", c.Method, c.Path, orNone(c.Before), orNone(c.After))
			if c.Note != "" {
				line += "  (" + c.Note + ")"
			}
			r.say("%s", line)
		}
		if s.Note != "" {
			r.say("    note: %s", s.Note)
		}
	}
	return nil
}

func (r *responder) list(ctx context.Context) error {
	open, err := r.store.ListOpen(ctx)
	if err != nil {
		return respondErr("list", err)
	}
	if len(open) == 0 {
		r.say("no open incidents")
		return nil
	}
	for _, inc := range open {
		var steps []string
		for _, s := range session.Steps {
			steps = append(steps, string(s)+" "+string(inc.Step(s).Status))
		}
		r.say("%s  %-28s opened %s by %s · %s", inc.ID, inc.Key(), ts(inc.CreatedAt), inc.OpenedBy, strings.Join(steps, " · "))
	}
	return nil
}
