package lockdown

import (
	"fmt"
	"testing"

	"github.com/compromised-responder/bot/internal/session"
)

func TestEvidenceTotals(t *testing.T) {
	var tot EvidenceTotals
	for i, cost := range []float64{1.5, 12.02, 0, 7, 3, 30, 0.5} {
		ev := &session.Evidence{Currency: "USD", Calls24h: 2, Seconds: 60 * (i + 1), International: 1, Cost: cost}
		if cost == 0 {
			ev.International = 0
		}
		tot.add(&session.Incident{ID: fmt.Sprintf("INC-%06d", i), User: fmt.Sprint(1000 + i), Domain: "acme.example", Evidence: ev})
	}
	tot.add(&session.Incident{User: "2000", Domain: "acme.example", Evidence: &session.Evidence{Unavailable: "PBX error"}})
	tot.add(&session.Incident{User: "2001", Domain: "acme.example"}) // not read yet
	if tot.Users != 8 || tot.Unavailable != 1 || tot.Calls24h != 14 || tot.Intl != 6 || fmt.Sprintf("%.2f", tot.Cost) != "54.02" || tot.Currency != "USD" {
		t.Errorf("totals: %+v", tot)
	}
	var keys []string
	for _, u := range tot.Top {
		keys = append(keys, u.Key)
	}
	if fmt.Sprint(keys) != "[1005@acme.example 1001@acme.example 1003@acme.example 1004@acme.example 1000@acme.example]" {
		t.Errorf("top users: %v", keys)
	}
}
