package slackui

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/session"
)

const testID = "INC-7K2QXM"

func TestParseAction(t *testing.T) {
	tests := []struct {
		name, actionID, value string
		want                  Action
		wantErr               bool
	}{
		{"step deny", "step:deny", testID, Action{Kind: ActionStep, Step: session.StepDeny, IncidentID: testID}, false},
		{"step recreate", "step:recreate", testID, Action{Kind: ActionStep, Step: session.StepRecreate, IncidentID: testID}, false},
		{"step reset", "step:reset", testID, Action{Kind: ActionStep, Step: session.StepReset, IncidentID: testID}, false},
		{"step restore", "step:restore", testID, Action{Kind: ActionStep, Step: session.StepRestore, IncidentID: testID}, false},
		{"approve", "approve:restore", testID, Action{Kind: ActionApprove, Step: session.StepRestore, IncidentID: testID}, false},
		{"reject", "reject:deny", testID, Action{Kind: ActionReject, Step: session.StepDeny, IncidentID: testID}, false},
		{"force", "force:restore", testID, Action{Kind: ActionForceRestore, Step: session.StepRestore, IncidentID: testID}, false},
		{"credentials", "credentials", testID, Action{Kind: ActionCredentials, IncidentID: testID}, false},
		{"abort", "abort", testID, Action{Kind: ActionAbort, IncidentID: testID}, false},
		{"force other step", "force:deny", testID, Action{}, true},
		{"unknown step", "step:nuke", testID, Action{}, true},
		{"unknown kind", "run:deny", testID, Action{}, true},
		{"case matters", "STEP:deny", testID, Action{}, true},
		{"trailing", "step:deny:x", testID, Action{}, true},
		{"empty action", "", testID, Action{}, true},
		{"credentials with step", "credentials:deny", testID, Action{}, true},
		{"value lower case", "abort", strings.ToLower(testID), Action{}, true},
		{"value confusable", "abort", "INC-7K2QXO", Action{}, true},
		{"value empty", "abort", "", Action{}, true},
		{"value with space", "abort", " " + testID, Action{}, true},
		{"value json", "abort", `{"id":"INC-7K2QXM"}`, Action{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAction(tc.actionID, tc.value)
			if tc.wantErr {
				if !errors.Is(err, ErrUnknownAction) {
					t.Fatalf("ParseAction(%q, %q) error = %v, want ErrUnknownAction", tc.actionID, tc.value, err)
				}
			} else if err != nil {
				t.Fatalf("ParseAction(%q, %q): %v", tc.actionID, tc.value, err)
			}
			if diff := cmp.Diff(got, tc.want); diff != "" {
				t.Errorf("ParseAction(%q, %q) (-got +want):\n%s", tc.actionID, tc.value, diff)
			}
			if err == nil && got.ActionID() != tc.actionID {
				t.Errorf("ActionID() = %q, want %q (round trip)", got.ActionID(), tc.actionID)
			}
		})
	}
}

func TestParseActionErrorIsShort(t *testing.T) {
	_, err := ParseAction(strings.Repeat("a", 5000), testID)
	if err == nil || len(err.Error()) > 120 {
		t.Fatalf("error %q: want a short error", err)
	}
}

func TestActionsFrom(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    []Action
	}{
		{"one button", `{"type":"block_actions","actions":[{"action_id":"step:deny","block_id":"s:deny:v3","value":"INC-7K2QXM","type":"button"}]}`,
			[]Action{{Kind: ActionStep, Step: session.StepDeny, IncidentID: testID}}},
		{"bad ones dropped", `{"type":"block_actions","actions":[{"action_id":"step:x","block_id":"b1","value":"INC-7K2QXM"},{"action_id":"abort","block_id":"b2","value":"INC-7K2QXM"},{"action_id":"abort","block_id":"b3","value":"nope"}]}`,
			[]Action{{Kind: ActionAbort, IncidentID: testID}}},
		{"no actions", `{"type":"block_actions"}`, nil},
		{"null action", `{"type":"block_actions","actions":[null]}`, nil},
		{"attachment action ignored", `{"type":"interactive_message","actions":[{"name":"abort","value":"INC-7K2QXM"}]}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cb slack.InteractionCallback
			if err := json.Unmarshal([]byte(tc.payload), &cb); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			if diff := cmp.Diff(ActionsFrom(cb), tc.want); diff != "" {
				t.Errorf("ActionsFrom (-got +want):\n%s", diff)
			}
		})
	}
}

func FuzzParseAction(f *testing.F) {
	for _, s := range [][2]string{{"step:deny", testID}, {"approve:restore", testID}, {"force:restore", "inc-7k2qxm"},
		{"credentials", testID}, {"abort", ""}, {"reject:", testID}, {":", ":"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, actionID, value string) {
		a, err := ParseAction(actionID, value)
		if err != nil {
			if !errors.Is(err, ErrUnknownAction) {
				t.Fatalf("error %v does not match ErrUnknownAction", err)
			}
			return
		}
		checkAction(t, a)
		if a.ActionID() != actionID || a.IncidentID != value {
			t.Fatalf("accepted (%q, %q) as %+v", actionID, value, a)
		}
	})
}

func checkAction(t *testing.T, a Action) {
	t.Helper()
	if !idPattern.MatchString(a.IncidentID) {
		t.Fatalf("accepted incident ID %q", a.IncidentID)
	}
	switch a.Kind {
	case ActionStep, ActionApprove, ActionReject:
		if !a.Step.Valid() {
			t.Fatalf("accepted step %q", a.Step)
		}
	case ActionForceRestore:
		if a.Step != session.StepRestore {
			t.Fatalf("force on step %q", a.Step)
		}
	case ActionCredentials, ActionAbort:
		if a.Step != "" {
			t.Fatalf("%s with step %q", a.Kind, a.Step)
		}
	default:
		t.Fatalf("accepted kind %q", a.Kind)
	}
}

func FuzzDecodeBlockActions(f *testing.F) {
	for _, s := range []string{
		`{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"step:deny","block_id":"s:deny:v1","value":"INC-7K2QXM","type":"button"}]}`,
		`{"type":"block_actions","actions":[{"action_id":"abort","value":"INC-7K2QXM"},{"action_id":"x"}]}`,
		`{"type":"block_actions","actions":[null,{}]}`,
		`{"type":"interactive_message","actions":[{"name":"a","value":"b"}]}`,
		`{"type":"view_submission","view":{"state":{"values":{}}}}`,
		`[]`, `null`, `{"actions":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var cb slack.InteractionCallback
		if err := json.Unmarshal(data, &cb); err != nil {
			return
		}
		for _, a := range ActionsFrom(cb) {
			checkAction(t, a)
		}
	})
}
