package slackui

import (
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/evidence"
)

// evidence is the lockdown card's fraud evidence: the members' totals of the last 24 h and the
// members with the most cost at risk (each user's own figures are on their incident: status).
// Nothing until some member's evidence has been read.
func (r *lockdownRenderer) evidence() []slack.Block {
	t := r.s.Evidence
	if t.Users == 0 {
		return nil
	}
	lines := []string{fmt.Sprintf("*Fraud evidence* (last 24 h, %d of %d users read) · %d calls · %s outgoing · international %d · premium %d · *estimated cost at risk %s*",
		t.Users, r.s.Total, t.Calls24h, evidence.Minutes(t.Seconds), t.Intl, t.Premium, esc(evidence.Money(t.Cost, t.Currency)))}
	if t.Unavailable > 0 {
		lines = append(lines, fmt.Sprintf("_evidence unavailable for %d user(s): the PBX did not give their call records_", t.Unavailable))
	}
	if len(t.Top) > 0 {
		lines = append(lines, "*Top users by cost at risk*")
		for _, u := range t.Top {
			lines = append(lines, fmt.Sprintf("• %s · %s · %s · %d international/premium call(s) (%s)", esc(u.Key),
				esc(evidence.Money(u.Cost, t.Currency)), evidence.Minutes(u.Seconds), u.Risky, esc(u.IncidentID)))
		}
	}
	return []slack.Block{slack.NewSectionBlock(mrkdwn(short(strings.Join(lines, "\n"), maxSectionText)), nil, nil)}
}
