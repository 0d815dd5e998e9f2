package slackfake_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/slackfake"
)

func btn(actionID, text, value string) string {
	return fmt.Sprintf(`{"type":"button","action_id":%q,"text":{"type":"plain_text","text":%q},"value":%q}`, actionID, text, value)
}

func actions(blockID string, elems ...string) string {
	return fmt.Sprintf(`{"type":"actions","block_id":%q,"elements":[%s]}`, blockID, strings.Join(elems, ","))
}

func section(text string) string {
	return fmt.Sprintf(`{"type":"section","text":{"type":"mrkdwn","text":%q}}`, text)
}

func confirmBtn(text string) string {
	return fmt.Sprintf(`{"type":"button","action_id":"a","text":{"type":"plain_text","text":"Go"},
		"confirm":{"title":{"type":"plain_text","text":"Sure?"},"text":{"type":"mrkdwn","text":%q},
		"confirm":{"type":"plain_text","text":"Yes"},"deny":{"type":"plain_text","text":"No"}}}`, text)
}

func TestValidateBlocks(t *testing.T) {
	x := func(n int) string { return strings.Repeat("x", n) }
	many := func(n int, f func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	arr := func(bs ...string) string { return "[" + strings.Join(bs, ",") + "]" }
	for _, tc := range []struct {
		name, blocks string
		want         []string // problems; nil = valid
	}{
		{"empty", `[]`, nil},
		{"card", arr(`{"type":"header","text":{"type":"plain_text","text":"INC-1"}}`, section("hi"), `{"type":"divider"}`,
			actions("b1", btn("step:deny", "Deny", "INC-1"), btn("abort", "Abort", "INC-1")),
			`{"type":"context","elements":[{"type":"mrkdwn","text":"as of 02:16"}]}`), nil},
		{"50 blocks", arr(many(50, func(int) string { return `{"type":"divider"}` })...), nil},
		{"51 blocks", arr(many(51, func(int) string { return `{"type":"divider"}` })...),
			[]string{"[ERROR] no more than 50 items allowed [json-pointer:/blocks]"}},
		{"section 3000", arr(section(x(3000))), nil},
		{"section 3001", arr(section(x(3001))),
			[]string{"[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"}},
		{"empty section text", arr(section("")),
			[]string{"[ERROR] must be more than 0 characters [json-pointer:/blocks/0/text/text]"}},
		{"header 151", arr(fmt.Sprintf(`{"type":"header","text":{"type":"plain_text","text":%q}}`, x(151))),
			[]string{"[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]"}},
		{"mrkdwn header", arr(`{"type":"header","text":{"type":"mrkdwn","text":"h"}}`),
			[]string{"[ERROR] must be one of [plain_text] [json-pointer:/blocks/0/text/type]"}},
		{"button text 76", arr(actions("b", btn("a", x(76), "v"))),
			[]string{"[ERROR] must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]"}},
		{"action_id 256", arr(actions("b", btn(x(256), "t", "v"))),
			[]string{"[ERROR] must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]"}},
		{"value 2001", arr(actions("b", btn("a", "t", x(2001)))),
			[]string{"[ERROR] must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]"}},
		{"duplicate block_id", arr(actions("b", btn("a", "t", "v")), actions("b", btn("c", "t", "v"))),
			[]string{`[ERROR] duplicate block_id "b" [json-pointer:/blocks/1/block_id]`}},
		{"duplicate action_id in a block", arr(actions("b", btn("a", "t", "v"), btn("a", "u", "v"))),
			[]string{`[ERROR] duplicate action_id "a" in this block [json-pointer:/blocks/0/elements/1/action_id]`}},
		{"same action_id in two blocks", arr(actions("b1", btn("a", "t", "v")), actions("b2", btn("a", "t", "v"))), nil},
		{"26 elements", arr(actions("b", many(26, func(i int) string { return btn(fmt.Sprint(i), "t", "v") })...)),
			[]string{"[ERROR] no more than 25 items allowed [json-pointer:/blocks/0/elements]"}},
		{"confirm text 300", arr(actions("b", confirmBtn(x(300)))), nil},
		{"confirm text 301", arr(actions("b", confirmBtn(x(301)))),
			[]string{"[ERROR] must be less than 301 characters [json-pointer:/blocks/0/elements/0/confirm/text/text]"}},
		{"bad style", arr(actions("b", `{"type":"button","action_id":"a","text":{"type":"plain_text","text":"t"},"style":"green"}`)),
			[]string{"[ERROR] must be one of [primary, danger] [json-pointer:/blocks/0/elements/0/style]"}},
		{"unknown block", arr(`{"type":"carrousel2"}`),
			[]string{`[ERROR] unsupported block type "carrousel2" [json-pointer:/blocks/0/type]`}},
		{"empty actions", arr(`{"type":"actions","elements":[]}`),
			[]string{"[ERROR] must provide at least 1 item [json-pointer:/blocks/0/elements]"}},
		{"section fields 11", arr(fmt.Sprintf(`{"type":"section","fields":[%s]}`,
			strings.Join(many(11, func(int) string { return `{"type":"mrkdwn","text":"f"}` }), ","))),
			[]string{"[ERROR] no more than 10 items allowed [json-pointer:/blocks/0/fields]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := slackfake.ValidateBlocks(json.RawMessage(tc.blocks))
			var got []string
			if err != nil {
				var be *slackfake.BlocksError
				if !errors.As(err, &be) || be.Code != "invalid_blocks" {
					t.Fatalf("error %v, want a *BlocksError invalid_blocks", err)
				}
				got = be.Problems
			}
			if d := cmp.Diff(got, tc.want); d != "" {
				t.Errorf("problems (-got +want):\n%s", d)
			}
		})
	}
}

// TestSlackGoBlocksAreValid keeps the validator honest: blocks built with slack-go's
// own constructors, within the limits, must pass.
func TestSlackGoBlocksAreValid(t *testing.T) {
	confirm := slack.NewConfirmationBlockObject(
		slack.NewTextBlockObject(slack.PlainTextType, "Restore?", false, false),
		slack.NewTextBlockObject(slack.MarkdownType, "Sets the policy back", false, false),
		slack.NewTextBlockObject(slack.PlainTextType, "Restore", false, false),
		slack.NewTextBlockObject(slack.PlainTextType, "Cancel", false, false)).WithStyle(slack.StyleDanger)
	restore := slack.NewButtonBlockElement("step:restore", "INC-1", slack.NewTextBlockObject(slack.PlainTextType, "Restore", true, false)).
		WithConfirm(confirm).WithStyle(slack.StyleDanger)
	blocks := []slack.Block{
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, "Compromised: 1001@acme.example", true, false)),
		slack.NewSectionBlock(nil, []*slack.TextBlockObject{slack.NewTextBlockObject(slack.MarkdownType, "*Policy*", false, false)}, nil),
		slack.NewDividerBlock(),
		slack.NewActionBlock("steps_v2", restore),
		slack.NewContextBlock("ctx", slack.NewTextBlockObject(slack.MarkdownType, "as of 02:16", false, false)),
	}
	raw, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	if err := slackfake.ValidateBlocks(raw); err != nil {
		t.Errorf("valid slack-go blocks refused: %v", err)
	}
}

func TestValidateBlocksFormat(t *testing.T) {
	for _, in := range []string{`{"type":"divider"}`, `"x"`, `[1]`, `[`} {
		var be *slackfake.BlocksError
		if err := slackfake.ValidateBlocks(json.RawMessage(in)); !errors.As(err, &be) || be.Code != "invalid_blocks_format" {
			t.Errorf("%s: %v, want invalid_blocks_format", in, err)
		}
	}
}

// FuzzValidateBlocks: any input gives nil or a *BlocksError with at least one problem,
// never a panic, and the verdict does not depend on whitespace.
func FuzzValidateBlocks(f *testing.F) {
	f.Add(`[{"type":"section","text":{"type":"mrkdwn","text":"hi"}}]`)
	f.Add(`[{"type":"actions","block_id":"b","elements":[{"type":"button","action_id":"a","text":{"type":"plain_text","text":"t"}}]}]`)
	f.Fuzz(func(t *testing.T, in string) {
		err := slackfake.ValidateBlocks(json.RawMessage(in))
		if err != nil {
			var be *slackfake.BlocksError
			if !errors.As(err, &be) || len(be.Problems) == 0 {
				t.Fatalf("error %v is not a *BlocksError with problems", err)
			}
		}
		var v any
		if json.Unmarshal([]byte(in), &v) != nil {
			return
		}
		indented, _ := json.MarshalIndent(v, "", "  ")
		if err2 := slackfake.ValidateBlocks(indented); (err == nil) != (err2 == nil) {
			t.Fatalf("verdict changed with whitespace: %v vs %v", err, err2)
		}
	})
}
