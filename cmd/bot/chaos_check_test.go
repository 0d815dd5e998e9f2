package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/session"
)

// The invariants a chaos run must keep, checked after every incident was finished, against the
// simulator's state and call log (what really happened on the PBX) and Redis.

// chaosCheck holds what the checks need: the world, the chaos users and every incident opened.
type chaosCheck struct {
	w     *world
	users []chaosUser
	incs  map[string][]session.Incident // user@domain → its incidents, oldest first
	out   []string                      // violations
	notes []string                      // what held but is worth a look
	// repeats counts the writes repeated by a resumed run that repeatOnResume allows.
	repeats int
}

// auditActions lists the actions of the entries about step, for a note.
func auditActions(entries []session.AuditEntry, step session.Step) string {
	var out []string
	for _, e := range entries {
		if e.Step == step {
			out = append(out, e.Action)
		}
	}
	return strings.Join(out, " ")
}

func (c *chaosCheck) violation(format string, args ...any) {
	c.out = append(c.out, fmt.Sprintf(format, args...))
}

// load reads every incident and groups them by user.
func (c *chaosCheck) load(ctx context.Context, ids []string) error {
	c.incs = map[string][]session.Incident{}
	for _, id := range ids {
		inc, err := c.w.store.Get(ctx, id)
		if err != nil {
			return fmt.Errorf("read %s: %w", id, err)
		}
		k := inc.User + "@" + inc.Domain
		c.incs[k] = append(c.incs[k], inc)
	}
	for _, l := range c.incs {
		sort.Slice(l, func(i, j int) bool { return l[i].CreatedAt.Before(l[j].CreatedAt) })
	}
	return nil
}

// stuck: every incident is closed (restored or aborted).
func (c *chaosCheck) stuck() {
	for _, l := range c.incs {
		for _, inc := range l {
			if inc.State == session.StateOpen {
				c.violation("%s (%s@%s) is stuck open: %s", inc.ID, inc.User, inc.Domain, fingerprint(inc))
			}
		}
	}
}

// cards: every incident has its card in Slack (without one nobody could act on it from Slack);
// a lockdown's members have the lockdown's.
func (c *chaosCheck) cards() {
	for _, l := range c.incs {
		for _, inc := range l {
			if inc.Lockdown != "" {
				continue // a lockdown's member: its card is the lockdown's (checked by lockdowns)
			}
			if _, ok := c.w.slack.Message(inc.Channel, inc.MessageTS); inc.MessageTS == "" || !ok {
				c.violation("%s (%s@%s) has no card in Slack (ts %q)", inc.ID, inc.User, inc.Domain, inc.MessageTS)
			}
		}
	}
}

// policies: every user's original dial policy is on the PBX again, or (the last incident was
// aborted, so the user stays denied) still kept by the store for the next incident.
func (c *chaosCheck) policies(ctx context.Context) {
	for _, u := range c.users {
		pu, _ := c.w.pbx.User(u.domain, u.user)
		live, _ := pu["dial-policy"].(string)
		l := c.incs[u.target()]
		restored := len(l) > 0 && l[len(l)-1].State == session.StateRestored
		if live == u.original {
			continue
		}
		if restored {
			c.violation("%s: restored, but the PBX has dial-policy %q, want the original %q", u.target(), live, u.original)
			continue
		}
		o, ok, err := c.w.store.UserOriginal(ctx, u.user, u.domain)
		if err != nil || !ok || !o.Known || o.Policy != u.original {
			c.violation("%s: PBX has %q and the store keeps %+v (%v): the original %q is lost", u.target(), live, o, err, u.original)
		}
	}
}

// devices: every device any incident snapshotted, and every seeded device, exists on the PBX
// with the snapshot's settings and phone line, or is kept by the store (deleted by an aborted
// incident, to be re-created by the next one).
func (c *chaosCheck) devices(ctx context.Context) {
	for _, u := range c.users {
		live := map[string]map[string]any{}
		for _, d := range c.w.pbx.Devices(u.domain, u.user) {
			live[d["device"].(string)] = d
		}
		kept := map[string]bool{}
		ks, err := c.w.store.UserDevices(ctx, u.user, u.domain)
		if err != nil {
			c.violation("%s: read the kept devices: %v", u.target(), err)
		}
		for _, k := range ks {
			kept[k.Device] = true
		}
		for _, d := range u.devices {
			if id := d["device"].(string); live[id] == nil && !kept[id] {
				c.violation("%s: seeded device %s is neither on the PBX nor kept", u.target(), id)
			}
		}
		for _, inc := range c.incs[u.target()] {
			for _, snap := range inc.Devices {
				lv := live[snap.Device]
				switch {
				case lv == nil && kept[snap.Device]:
					continue
				case lv == nil:
					c.violation("%s: device %s of %s's snapshot is lost", u.target(), snap.Device, inc.ID)
					continue
				}
				for _, f := range slices.Sorted(maps.Keys(snap.Fields)) {
					if !jsonEqual(lv[f], snap.Fields[f]) {
						c.violation("%s: device %s has %s = %v, %s's snapshot %v", u.target(), snap.Device, f, lv[f], inc.ID, snap.Fields[f])
					}
				}
				mac, _ := lv["device-provisioning-mac-address"].(string)
				line, _ := lv["device-provisioning-line"].(float64)
				if snap.PhoneMAC != "" && (normMAC(mac) != normMAC(snap.PhoneMAC) || int(line) != snap.PhoneLine) {
					c.violation("%s: device %s is on phone %q line %v, %s's snapshot %q line %d", u.target(), snap.Device, mac, line, inc.ID, snap.PhoneMAC, snap.PhoneLine)
				}
			}
		}
	}
}

func normMAC(s string) string {
	return strings.ToLower(strings.NewReplacer(":", "", "-", "").Replace(s))
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	var va, vb any
	_ = json.Unmarshal(ja, &va)
	_ = json.Unmarshal(jb, &vb)
	return reflect.DeepEqual(va, vb)
}

// pinField is the user field reset sets.
const pinField = "voicemail-login-pin"

// repeatOnResume says why a write may run once more when its run is resumed, or "" when it may
// not. A kill between a PBX write and its progress record cannot be avoided (the PBX and Redis
// share no transaction), so the resumed runner makes that write again unless it can read the
// PBX to see it landed. Two writes are repeated on purpose, and both are harmless to repeat:
// reset's PIN (the killed runner's PIN was never delivered, so a fresh one is set and delivered)
// and the session revocation (idempotent: revoking again ends nothing that should live; recording
// it before the DELETE instead would skip the revocation after a kill). Every other write (the
// policy PUTs, device deletes and creates, phone re-links, the reset email) must never repeat.
func repeatOnResume(what string) string {
	switch {
	case strings.Contains(what, pinField):
		return "a resumed reset sets a fresh PIN (the killed runner's was never delivered)"
	case strings.HasPrefix(what, "DELETE /jwt/"):
		return "a resumed reset revokes the sessions again (idempotent; its progress record follows the DELETE)"
	}
	return ""
}

// writes: no PBX write ran twice for one step run. Every applied write of the call log is given
// to the user's incident that was open at the time (the latest opened before it) and to the step
// that makes it; each distinct write (method, path, what it set) may appear at most as often as
// that step was started in that incident (its "step.<s>.started" audit entries): a resumed run
// that repeated a write its killed predecessor had made shows up as one more. It returns the
// number of writes checked. The exceptions are the two writes repeatOnResume names.
func (c *chaosCheck) writes(ctx context.Context, calls []nstest.Call) int {
	owner := map[string]string{} // MAC → user@domain
	for _, u := range c.users {
		owner[u.mac] = u.target()
	}
	runs, resumes := map[string]map[session.Step]int{}, map[string]map[session.Step]int{}
	for _, l := range c.incs {
		for _, inc := range l {
			entries, err := c.w.store.Audit(ctx, inc.ID)
			if err != nil {
				c.violation("%s: read the audit: %v", inc.ID, err)
			}
			r, res := map[session.Step]int{}, map[session.Step]int{}
			for _, e := range entries {
				switch {
				case e.Action == "step."+string(e.Step)+".started":
					r[e.Step]++
				case e.Action == "step."+string(e.Step)+".resumed":
					res[e.Step]++
				}
			}
			resumes[inc.ID] = res
			// Begin counts every run in Attempts; the "started" entry is appended after it, so a
			// kill (or Redis going away) in between leaves a run without one: noted, not hidden.
			for _, s := range session.Steps {
				if a := inc.Step(s).Attempts; a > r[s] {
					c.notes = append(c.notes, fmt.Sprintf("%s: %d run(s) of %s, %d step.%s.started entries (%s)",
						inc.ID, a, s, r[s], s, auditActions(entries, s)))
					r[s] = a
				}
			}
			runs[inc.ID] = r
		}
	}
	count := map[[3]string]int{}
	checked := 0
	for _, call := range calls {
		if !call.Applied {
			continue
		}
		target, step, what := classifyWrite(call, owner)
		if target == "" {
			continue // not a chaos user's (the demo tenant is not used)
		}
		var inc *session.Incident
		for i, cand := range c.incs[target] {
			if !cand.CreatedAt.After(call.At) {
				inc = &c.incs[target][i]
			}
		}
		if inc == nil {
			c.violation("%s %s wrote to %s before any incident was open", call.Method, call.Path, target)
			continue
		}
		checked++
		k := [3]string{inc.ID, string(step), what}
		count[k]++
		n, limit, why := count[k], runs[inc.ID][step], repeatOnResume(what)
		if why != "" {
			limit += resumes[inc.ID][step] // one more per resume, and only for these writes
		}
		switch {
		case n > limit:
			c.violation("%s: %s ran %d times in %d run(s) of %s (%d resumed)", inc.ID, what, n, runs[inc.ID][step], step, resumes[inc.ID][step])
		case n > runs[inc.ID][step]:
			c.repeats++
			c.notes = append(c.notes, fmt.Sprintf("%s: %s ran %d times in %d run(s) of %s: %s", inc.ID, what, n, runs[inc.ID][step], step, why))
		}
	}
	return checked
}

// classifyWrite names the user a write is for, the step that makes it and the write itself.
func classifyWrite(c nstest.Call, macOwner map[string]string) (target string, step session.Step, what string) {
	seg := strings.Split(strings.Trim(c.Path, "/"), "/")
	what = c.Method + " " + c.Path
	var body map[string]any
	_ = json.Unmarshal(c.Body, &body)
	switch {
	case len(seg) == 2 && seg[0] == "jwt":
		return seg[1], session.StepReset, what
	case len(seg) == 4 && seg[0] == "domains" && seg[2] == "phones":
		return macOwner[normMAC(seg[3])], session.StepRecreate, what
	case len(seg) < 4 || seg[0] != "domains" || seg[2] != "users":
		return "", "", what
	}
	target = seg[3] + "@" + seg[1]
	if len(seg) == 4 {
		if p, ok := body["dial-policy"].(string); ok {
			what += " dial-policy=" + p
			if p == "Deny All" {
				return target, session.StepDeny, what
			}
			return target, session.StepRestore, what
		}
		return target, session.StepReset, what + " " + strings.Join(slices.Sorted(maps.Keys(body)), ",")
	}
	switch seg[4] {
	case "devices":
		if dev, ok := body["device"].(string); ok {
			what += " device=" + dev
		}
		return target, session.StepRecreate, what
	case "calls":
		return target, session.StepDeny, what
	default:
		return target, session.StepReset, what
	}
}

// audit: `bot audit --verify-all` verifies every chain.
func (c *chaosCheck) audit() string {
	r := c.w.cli(c.w.cliEnv(), "audit", "--verify-all")
	if r.code != exitOK {
		c.violation("bot audit --verify-all exited %d:\n%s%s", r.code, r.out, r.err)
	}
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	return lines[len(lines)-1]
}
