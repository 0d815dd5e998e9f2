package lockdown

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// Summary is a lockdown at one glance, read from its members' incidents: what the card shows.
type Summary struct {
	Total   int // members
	Opened  int // members whose incident exists
	Devices int // devices of the members, as last read (or snapshotted)
	// Steps counts the members by each step's status.
	Steps map[session.Step]map[session.Status]int
	// Contained counts members whose deny reached "contained" (verified in the deny policy).
	Contained int
	// Open, Restored, Aborted count the members' incidents by state.
	Open, Restored, Aborted int
	// Failures lists every member whose step failed, sorted by user@domain.
	Failures []Failure
	// Held lists the members whose restore the restore gate holds (overgate.go), sorted; they
	// are not in Failures.
	Held []Held
	// Unknown lists members denied with no known original: restore cannot put one back, so
	// they stay in the deny policy until someone chooses one on the member's incident.
	Unknown []string
	// Missing lists "user@domain: device" for devices deleted and not re-created; MissingToken
	// is what a restore's or abort's confirmation must carry while any are missing.
	Missing      []string
	MissingUsers int
	MissingToken string
	// Awaiting, per step with pending approval requests: how many, who asked, until when.
	Awaiting map[session.Step]Awaiting
	// Running counts members with a step running now.
	Running int
	// Evidence adds up the members' fraud evidence (evidence.go).
	Evidence EvidenceTotals
}

// Failure is one member whose step failed.
type Failure struct {
	Key, IncidentID string
	Step            session.Step
	Message         string
}

// Awaiting describes the approval requests of one step.
type Awaiting struct {
	N           int
	OverGate    int // of those, restores asked over the restore gate
	RequestedBy string
	Expires     time.Time
}

// Summary reads l's members' incidents and counts them. A member whose incident cannot be read
// counts as not opened. Errors: store errors other than a missing incident.
func (e *Engine) Summary(ctx context.Context, l session.Lockdown) (Summary, error) {
	return e.summary(ctx, l, nil)
}

// summary is Summary; seen, if set, is given each member's incident as read (nil: not opened).
func (e *Engine) summary(ctx context.Context, l session.Lockdown, seen func(i int, inc *session.Incident)) (Summary, error) {
	s := Summary{Total: len(l.Members), Steps: map[session.Step]map[session.Status]int{}, Awaiting: map[session.Step]Awaiting{}}
	for _, st := range session.Steps {
		s.Steps[st] = map[session.Status]int{}
	}
	now := e.now()
	var tokens []string
	for i, m := range l.Members {
		if m.IncidentID == "" {
			continue
		}
		inc, err := e.store.Get(ctx, m.IncidentID)
		if errors.Is(err, session.ErrNotFound) {
			continue
		}
		if err != nil {
			return s, err
		}
		if seen != nil {
			seen(i, &inc)
		}
		s.Opened++
		s.add(&inc, now)
		if inc.Open() {
			if names, tok := remediate.DevicesMissing(&inc); tok != "" {
				s.MissingUsers++
				tokens = append(tokens, inc.Key()+"="+tok)
				for _, n := range names {
					s.Missing = append(s.Missing, inc.Key()+": "+n)
				}
			}
		}
	}
	if len(tokens) > 0 {
		sort.Strings(tokens)
		sum := sha256.Sum256([]byte(strings.Join(tokens, "\x00")))
		s.MissingToken = hex.EncodeToString(sum[:4])
	}
	sort.Slice(s.Failures, func(i, j int) bool { return s.Failures[i].Key < s.Failures[j].Key })
	sort.Slice(s.Held, func(i, j int) bool { return s.Held[i].Key < s.Held[j].Key })
	sort.Strings(s.Unknown)
	sort.Strings(s.Missing)
	return s, nil
}

// add counts one member's incident.
func (s *Summary) add(inc *session.Incident, now time.Time) {
	switch inc.State {
	case session.StateOpen:
		s.Open++
	case session.StateRestored:
		s.Restored++
	case session.StateAborted:
		s.Aborted++
	}
	switch {
	case len(inc.Devices) > 0:
		s.Devices += len(inc.Devices)
	case inc.Live != nil:
		s.Devices += len(inc.Live.Devices)
	}
	s.Evidence.add(inc)
	deny := inc.Step(session.StepDeny)
	if def, _ := remediate.Def(session.StepDeny); deny.Status.Finished() || def.Reached != nil && def.Reached(deny) != "" {
		s.Contained++
	}
	for _, step := range session.Steps {
		st := inc.Step(step)
		s.Steps[step][st.Status]++
		switch {
		case st.Status == session.StatusRunning:
			s.Running++
		case st.Status == session.StatusFailed && st.ErrKind == remediate.KindOriginalUnknown:
			// Listed in Unknown: the user stays in the deny policy.
		case step == session.StepRestore && gateHeld(inc):
			s.Held = append(s.Held, heldOf(inc, now))
		case st.Status == session.StatusFailed:
			s.Failures = append(s.Failures, Failure{Key: inc.Key(), IncidentID: inc.ID, Step: step, Message: st.ErrMessage})
		case st.ApprovalPending(now):
			a := s.Awaiting[step]
			a.N++
			if step == session.StepRestore && remediate.RequestedOverGate(inc) {
				a.OverGate++
			}
			a.RequestedBy = st.RequestedBy
			if a.Expires.IsZero() || st.ApprovalExpires.Before(a.Expires) {
				a.Expires = st.ApprovalExpires
			}
			s.Awaiting[step] = a
		}
	}
	if inc.Open() && deny.Status.Finished() && (inc.Original == nil || !inc.Original.Known) {
		s.Unknown = append(s.Unknown, inc.Key())
	}
}
