package remediate_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// The runbook table and the store's list of steps name the same steps in the same order.
func TestRunbookMatchesSteps(t *testing.T) {
	var names []session.Step
	for _, d := range remediate.Runbook() {
		names = append(names, d.Step)
		if d.Title == "" {
			t.Errorf("%s has no title", d.Step)
		}
	}
	if !slices.Equal(names, session.Steps) {
		t.Errorf("runbook %v, session.Steps %v", names, session.Steps)
	}
	if _, ok := remediate.Def("reboot"); ok {
		t.Error(`Def("reboot") found a step`)
	}
}

// Deny comes first; the rest wait for it, whatever else has run.
func TestWaitingOrder(t *testing.T) {
	inc := session.Incident{Steps: map[session.Step]*session.StepState{}}
	for _, s := range session.Steps {
		want := session.StepDeny
		if s == session.StepDeny {
			want = ""
		}
		if got := remediate.Waiting(&inc, s); got != want {
			t.Errorf("before deny: Waiting(%s) = %q, want %q", s, got, want)
		}
	}
	inc.Steps[session.StepDeny] = &session.StepState{Step: session.StepDeny, Status: session.StatusWarnings}
	for _, s := range session.Steps {
		if got := remediate.Waiting(&inc, s); got != "" {
			t.Errorf("after deny: Waiting(%s) = %q", s, got)
		}
	}
}

// A device counts as back once it is re-linked, not when it is only re-created.
func TestRecreateCount(t *testing.T) {
	d, _ := remediate.Def(session.StepRecreate)
	if d.Count == nil {
		t.Fatal("recreate has no Count")
	}
	inc := session.Incident{Devices: []session.DeviceSnapshot{{Device: "a"}, {Device: "b"}, {Device: "c"}, {Device: "d"}}}
	st := session.StepState{Progress: map[string]string{
		"device/a": string(remediate.DeviceDeleted), "device/b": string(remediate.DeviceCreated),
		"device/c": string(remediate.DeviceLinked), "device/d": string(remediate.DeviceVerified),
		"calls-ended": "3",
	}}
	if done, total := d.Count(&inc, &st); done != 2 || total != 4 {
		t.Errorf("Count = %d of %d, want 2 of 4", done, total)
	}
	if !slices.Equal(d.Vocabulary, []remediate.Progress{remediate.DeviceDeleted, remediate.DeviceCreated,
		remediate.DeviceLinked, remediate.DeviceVerified}) {
		t.Errorf("recreate vocabulary = %v", d.Vocabulary)
	}
}

// Kinds are typed values shared with the Slack layer.
func TestKindOf(t *testing.T) {
	if k := remediate.KindOf(&remediate.DriftError{}); k != remediate.KindDrift {
		t.Errorf("KindOf(drift) = %q", k)
	}
	if k := remediate.KindOf(errors.New("boom")); k != remediate.KindInternal {
		t.Errorf("KindOf(boom) = %q", k)
	}
	if k := remediate.KindOf(nil); k != remediate.KindNone {
		t.Errorf("KindOf(nil) = %q", k)
	}
}
