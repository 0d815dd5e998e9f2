package evidence

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

func TestDefaultTableParses(t *testing.T) {
	r := Default()
	if r.Currency != "USD" || r.Source == "" || len(r.Entries) < 10 {
		t.Fatalf("default table: currency %q, source %q, %d rates", r.Currency, r.Source, len(r.Entries))
	}
}

func TestParseListsEveryProblem(t *testing.T) {
	_, err := Parse([]byte(`{"currency":"usd","home_country_code":"1","national_number_digits":10,
		"default_class":"intl","default_label":"x","default_per_minute":1,
		"rates":[{"prefix":"44","label":"UK","class":"international","per_minute":0.1},
		         {"prefix":"44","label":"","class":"premium","per_minute":-1},
		         {"prefix":"+4","label":"x","class":"premium","per_minute":1000}]}`))
	if err == nil {
		t.Fatal("a broken table parsed")
	}
	for _, want := range []string{`currency "usd"`, `default_class "intl"`, "prefix 44 is listed twice",
		"label is empty", "per_minute -1", `prefix "+4" is not 1–15 digits`, "per_minute 1000"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if _, err := Parse([]byte("not json")); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("bad JSON: %v", err)
	}
}

func TestNormalizeAndLookup(t *testing.T) {
	r := Default()
	for _, c := range []struct{ in, want, label string }{
		{"sip:011442079460000@acme.example", "442079460000", "United Kingdom"},
		{"+2348031234567", "2348031234567", "Nigeria"},
		{"00882123456789", "882123456789", "International networks"},
		{"2125550199", "12125550199", "US/Canada"},
		{"19005550100", "19005550100", "US premium (900)"},
		{"18765550100", "18765550100", "Jamaica"},
		{"6905551234", "16905551234", "US/Canada"},
		{"9991234567890", "9991234567890", "other international"},
	} {
		n, ok := r.Normalize(c.in)
		if !ok || n != c.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", c.in, n, ok, c.want)
			continue
		}
		if got := r.Lookup(n).Label; got != c.label {
			t.Errorf("Lookup(%s) = %q, want %q", n, got, c.label)
		}
	}
	for _, in := range []string{"1002", "*67", "sip:1001@acme.example", "abc1234567", ""} {
		if n, ok := r.Normalize(in); ok {
			t.Errorf("Normalize(%q) = %q: an internal number counted as external", in, n)
		}
	}
}

func cdr(number string, start time.Time, secs, typ int) netsapiens.CDR {
	return netsapiens.CDR{Number: &number, TimeStart: start.Unix(), Duration: secs, Type: typ}
}

func TestSummarize(t *testing.T) {
	r := Default()
	now := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	ip, ua, at, reg := "203.0.113.5:5060", "Zoiper 5", "2026-12-01T01:52:00Z", "registered"
	ev := r.Summarize(Input{Phase: session.PhaseOpen, Now: now, CDRs: []netsapiens.CDR{
		cdr("2348031234567", now.Add(-10*time.Minute), 600, 1), // NG 10 min × 0.40 = 4.00
		cdr("2348031234567", now.Add(-30*time.Minute), 300, 1), // NG 5 min = 2.00
		cdr("882123456789", now.Add(-2*time.Hour), 120, 1),     // 2 min × 3.00 = 6.00
		cdr("12125550199", now.Add(-5*time.Hour), 90, 1),       // 1.5 min × 0.01 = 0.015
		cdr("442079460000", now.Add(-20*time.Hour), 60, 0),     // inbound: counted, not rated
		cdr("1002", now.Add(-40*time.Minute), 30, 2),           // an extension
		cdr("442079460000", now.Add(-25*time.Hour), 6000, 1),   // outside the window
	}, Calls: []netsapiens.ActiveCall{{DialedNumber: "0112348031234567", StartDatetime: "2026-12-01T01:58:00Z"}},
		Devices: []netsapiens.Device{{Device: strp("1001a"), RegistrationState: &reg, RegistrationIPAddress: &ip,
			RegistrationUserAgent: &ua, RegistrationDatetime: &at}}})
	want := session.Evidence{Phase: session.PhaseOpen, ReadAt: now, Currency: "USD",
		Calls1h: 3, Calls24h: 6, Seconds: 1110, International: 2, InternationalSeconds: 900, Premium: 1, PremiumSeconds: 120,
		Cost: 12.02,
		Top: []session.Destination{
			{Number: "2348031234567", Label: "Nigeria", Class: "international", Calls: 2, Seconds: 900, Cost: 6},
			{Number: "882123456789", Label: "International networks", Class: "premium", Calls: 1, Seconds: 120, Cost: 6},
			{Number: "12125550199", Label: "US/Canada", Class: "domestic", Calls: 1, Seconds: 90, Cost: 0.02},
		},
		LiveCalls:     []session.EvidenceCall{{Number: "2348031234567", Label: "Nigeria", Class: "international", Since: "2026-12-01T01:58:00Z"}},
		Registrations: []session.Registration{{Device: "1001a", Registered: true, IP: "203.0.113.5", UserAgent: "Zoiper 5", At: at}},
	}
	if d := cmp.Diff(want, ev); d != "" {
		t.Errorf("evidence (-want +got):\n%s", d)
	}

	failed := r.Summarize(Input{Phase: session.PhaseOpen, Now: now, CDRsFailed: "PBX error", CDRs: []netsapiens.CDR{
		cdr("2348031234567", now.Add(-10*time.Minute), 600, 1)}})
	if failed.Unavailable != "PBX error" || failed.Calls24h != 0 || failed.Cost != 0 {
		t.Errorf("failed read: %+v", failed)
	}
}

func strp(s string) *string { return &s }

func TestGate(t *testing.T) {
	r := Default()
	since := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	now := since.Add(time.Hour)
	reg, ip, ua := "registered", "198.51.100.7:5060", "Zoiper 5"
	after, before := since.Add(30*time.Minute).Format(time.RFC3339), since.Add(-time.Hour).Format(time.RFC3339)
	devs := []netsapiens.Device{
		{Device: strp("1001"), RegistrationState: &reg, RegistrationIPAddress: &ip, RegistrationUserAgent: &ua, RegistrationDatetime: &before},
		{Device: strp("1001a"), RegistrationState: &reg, RegistrationIPAddress: &ip, RegistrationUserAgent: &ua, RegistrationDatetime: &after},
	}
	g := r.Gate(GateInput{Now: now, Since: since, RecreatedAt: since.Add(10 * time.Minute), Recreated: []string{"1001", "1001a"},
		Devices: devs, CDRs: []netsapiens.CDR{
			cdr("2348031234567", since.Add(-5*time.Minute), 60, 1), // before containment
			cdr("12125550199", since.Add(5*time.Minute), 60, 1),    // domestic
			cdr("882123456789", since.Add(7*time.Minute), 60, 0),   // inbound
			cdr("882123456789", since.Add(9*time.Minute), 30, 1),   // premium, after
		}})
	if len(g.Risky) != 1 || g.Risky[0].Number != "882123456789" || g.Risky[0].Class != "premium" {
		t.Errorf("risky calls: %+v", g.Risky)
	}
	if len(g.Devices) != 2 || g.Devices[0].Again || !g.Devices[1].Again || g.Devices[1].IP != "198.51.100.7" {
		t.Errorf("devices: %+v", g.Devices)
	}
	want := []string{"1 international or premium call(s) since containment (882123456789 International networks at 02:09 UTC)",
		"1001 not registered again with the new credentials"}
	if d := cmp.Diff(want, GateProblems(g, now)); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
	met := r.Gate(GateInput{Now: now, Since: since, RecreatedAt: since.Add(10 * time.Minute), Recreated: []string{"1001a"}, Devices: devs})
	if p := GateProblems(met, now); len(p) != 0 {
		t.Errorf("a met gate has problems: %v", p)
	}
	failed := r.Gate(GateInput{Now: now, Since: since, CDRsFailed: "PBX error"})
	if p := GateProblems(failed, now); len(p) != 1 || !strings.Contains(p[0], "could not be read (PBX error)") {
		t.Errorf("an unread gate: %v", p)
	}
}
