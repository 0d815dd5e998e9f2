package lockdown

import (
	"cmp"
	"slices"

	"github.com/compromised-responder/bot/internal/session"
)

// TopUsers is how many members the lockdown card names by cost at risk.
const TopUsers = 5

// EvidenceTotals adds up the members' fraud evidence (each incident's latest read, remediate's
// evidence.go): the domain's totals and the members with the most cost at risk.
type EvidenceTotals struct {
	Users       int // members with evidence read
	Unavailable int // of those, members whose call records could not be read
	Calls24h    int
	Seconds     int
	Intl        int
	Premium     int
	Cost        float64
	Currency    string
	Top         []UserCost // by cost, then minutes, at most TopUsers
}

// UserCost is one member's share.
type UserCost struct {
	Key        string // user@domain
	IncidentID string
	Cost       float64
	Seconds    int
	Risky      int // international and premium calls
}

// add counts one member's incident.
func (t *EvidenceTotals) add(inc *session.Incident) {
	ev := inc.Evidence
	if ev == nil {
		return
	}
	t.Users++
	if ev.Unavailable != "" {
		t.Unavailable++
		return
	}
	t.Calls24h += ev.Calls24h
	t.Seconds += ev.Seconds
	t.Intl += ev.International
	t.Premium += ev.Premium
	t.Cost += ev.Cost
	if t.Currency == "" {
		t.Currency = ev.Currency
	}
	if ev.Cost <= 0 && ev.International+ev.Premium == 0 {
		return
	}
	t.Top = append(t.Top, UserCost{Key: inc.Key(), IncidentID: inc.ID, Cost: ev.Cost, Seconds: ev.Seconds,
		Risky: ev.International + ev.Premium})
	slices.SortFunc(t.Top, func(a, b UserCost) int {
		return cmp.Or(cmp.Compare(b.Cost, a.Cost), cmp.Compare(b.Seconds, a.Seconds), cmp.Compare(a.Key, b.Key))
	})
	if len(t.Top) > TopUsers {
		t.Top = t.Top[:TopUsers]
	}
}
