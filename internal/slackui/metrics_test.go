package slackui

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestEnvelopeSeries: the series looked up once per known envelope type are the vectors' own
// (what /metrics shows), and a type not known in advance still gets its series.
func TestEnvelopeSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	types := []string{"slash_commands", "interactive", "events_api", "something_new"}
	for _, typ := range types {
		m.envelope(typ).received.Inc()
		m.envelope(typ).ackedOK.Inc()
		m.envelope(typ).ackedOK.Inc()
		m.envelope(typ).ackedError.Inc()
	}
	got := map[string]float64{} // family{labels} → value, as scraped
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range s.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			got[key] = s.GetCounter().GetValue()
		}
	}
	for _, typ := range types {
		if n := got["compromised_slack_envelopes_received_total type="+typ]; n != 1 {
			t.Errorf("%s: %v received, want 1", typ, n)
		}
		ok := got["compromised_slack_envelopes_acked_total result=ok type="+typ]
		bad := got["compromised_slack_envelopes_acked_total result=error type="+typ]
		if ok != 2 || bad != 1 {
			t.Errorf("%s: %v acked ok and %v in error, want 2 and 1", typ, ok, bad)
		}
	}
}
