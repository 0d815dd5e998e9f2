package slackui

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/remediate"
)

// maxPlanCallLines bounds the calls listed per step (many devices): the rest is summarised.
const maxPlanCallLines = 30

// PlanBlocks renders a dry run (`/compromised plan`) for the ephemeral answer: per step, every
// PBX write it would make with before → after. The engine's plan shows secrets only as a mask,
// and everything from the PBX is escaped here, so the answer never holds a secret or a mention.
func PlanBlocks(p remediate.Plan) []slack.Block {
	head := fmt.Sprintf("*Dry run for %s@%s* — nothing was changed. As read from the PBX at %s.",
		esc(short(p.User, 40)), esc(short(p.Domain, 80)), clockAt(p.ReadAt, p.ReadAt))
	bs := []slack.Block{slack.NewSectionBlock(mrkdwn(head), nil, nil)}
	for i, st := range p.Steps {
		title := fmt.Sprintf("%d *%s*", i+1, stepTitle(st.Step))
		var lines []string
		for _, c := range st.Calls {
			l := fmt.Sprintf("`%s %s` %s → %s", codeSafe(short(c.Method, 10)), codeSafe(short(c.Path, 200)),
				orDash(esc(short(c.Before, 200))), orDash(esc(short(c.After, 200))))
			if c.Note != "" {
				l += " _(" + esc(short(c.Note, 200)) + ")_"
			}
			lines = append(lines, l)
		}
		if len(lines) == 0 {
			lines = append(lines, "no PBX write")
		}
		if st.Note != "" {
			lines = append(lines, "⚠️ "+esc(short(st.Note, 300)))
		}
		body := joinCapped(title, lines, maxPlanCallLines, maxSectionText, "calls")
		bs = append(bs, slack.NewSectionBlock(mrkdwn(body), nil, nil))
	}
	bs = append(bs, slack.NewContextBlock("", mrkdwn(strings.TrimSpace(
		"Passwords and PINs are shown as ••••••: they are generated when the step runs and shown only to the person who runs it."))))
	return bs
}
