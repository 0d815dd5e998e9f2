package nstest_test

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
)

// subsetSchema returns a schema of the committed spec subset.
func subsetSchema(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("spec/v45-subset.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	s, ok := doc.Components.Schemas[name]
	if !ok {
		t.Fatalf("schema %s is not in the subset", name)
	}
	return s
}

// jsonType is the spec's type name of a decoded JSON value.
func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64:
		if v == float64(int64(v)) {
			return "integer"
		}
		return "number"
	}
	return "object"
}

// TestAddCDRIsACdrU checks that a record added by the hook is what the spec's CdrU says: every
// required field, no other, each of its type.
func TestAddCDRIsACdrU(t *testing.T) {
	s, base := start(t, nstest.Options{})
	now := time.Now().UTC().Truncate(time.Second)
	s.AddCDR(nstest.CDR{Domain: "ACME.example", User: "1001", Number: "2348031234567", Start: now.Add(-time.Minute), Seconds: 42, Type: 1})
	r := mustCall(t, "GET", base+"/domains/acme.example/users/1001/cdrs?datetime-start="+
		now.Add(-time.Hour).Format(time.RFC3339)+"&datetime-end="+now.Format(time.RFC3339), s.APIKey(), nil)
	got := r.list(t)
	if len(got) != 1 {
		t.Fatalf("cdrs = %v", got)
	}
	schema := subsetSchema(t, "CdrU")
	props := schema["properties"].(map[string]any)
	for _, f := range schema["required"].([]any) {
		if _, ok := got[0][f.(string)]; !ok {
			t.Errorf("required field %s missing", f)
		}
	}
	for k, v := range got[0] {
		p, ok := props[k].(map[string]any)
		if !ok {
			t.Errorf("field %s is not in CdrU", k)
			continue
		}
		var types []string
		switch ty := p["type"].(type) {
		case string:
			types = []string{ty}
		case []any:
			for _, x := range ty {
				types = append(types, x.(string))
			}
		}
		if !slices.Contains(types, jsonType(v)) {
			t.Errorf("field %s = %v is %s, the spec says %v", k, v, jsonType(v), types)
		}
	}
	if got[0]["duration"] != float64(42) || got[0]["uid"] != "1001@acme.example" || got[0]["number"] != "2348031234567" {
		t.Errorf("record = %v", got[0])
	}
}

// TestRegisterDevice: a device registers with its current password only, and the API then
// reports the registration in the Device schema's fields.
func TestRegisterDevice(t *testing.T) {
	s, base := start(t, nstest.Options{})
	if err := s.RegisterDevice("acme.example", "1001a", "not-the-password", "203.0.113.5:5060", "Zoiper 5"); !errors.Is(err, nstest.ErrRegistrationRefused) {
		t.Fatalf("wrong password: %v", err)
	}
	if err := s.RegisterDevice("acme.example", "1001a", "DemoSoftPh0ne1aa", "203.0.113.5:5060", "Zoiper 5"); err != nil {
		t.Fatal(err)
	}
	d := mustCall(t, "GET", base+"/domains/acme.example/users/1001/devices/1001a", s.APIKey(), nil).obj(t)
	props := subsetSchema(t, "Device")["properties"].(map[string]any)
	for _, f := range []string{"device-sip-registration-state", "device-sip-registration-ip-address",
		"device-sip-registration-user-agent", "device-sip-registration-datetime"} {
		if _, ok := props[f]; !ok {
			t.Errorf("%s is not a Device field in the spec", f)
		}
	}
	if d["device-sip-registration-state"] != "registered" || d["device-sip-registration-ip-address"] != "203.0.113.5:5060" ||
		d["device-sip-registration-user-agent"] != "Zoiper 5" {
		t.Errorf("device = %v", d)
	}
	if _, err := time.Parse(time.RFC3339, d["device-sip-registration-datetime"].(string)); err != nil {
		t.Errorf("registration datetime: %v", err)
	}
}
