package lockdown

import (
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// TestMemberNoteAskedBy: a member awaiting approval says so in its note and gives who asked
// apart (the Slack answer shows a mention, the CLI the ID), not inside the note.
func TestMemberNoteAskedBy(t *testing.T) {
	inc := &session.Incident{State: session.StateOpen, Steps: map[session.Step]*session.StepState{
		session.StepRestore: {Status: session.StatusAwaiting, RequestedBy: "U0ALICE"}}}
	note, asked, attention := memberNote(inc, time.Now())
	if note != "restore awaits approval" || asked != "U0ALICE" || attention != 2 {
		t.Errorf("memberNote = %q, %q, %d; want %q, %q, 2", note, asked, attention, "restore awaits approval", "U0ALICE")
	}
}
