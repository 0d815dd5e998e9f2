// Package evidence turns what the PBX shows of a user's calls (call detail records, live
// calls, device registrations) into the fraud evidence an incident card shows: calls in the
// last hour and day, international and premium destinations, the top destinations, minutes
// and an estimated cost at risk. The destinations are classified by prefix from a rate table:
// the one committed here (rates.json, its source in its "_source" field) or RATES_FILE.
// Everything here is a pure function of its inputs; the reads are remediate's.
package evidence

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/compromised-responder/bot/internal/session"
)

//go:embed rates.json
var defaultRatesJSON []byte

// Rate is one prefix of the rate table.
type Rate struct {
	Prefix    string  `json:"prefix"` // E.164 digits, country code first, no "+"
	Label     string  `json:"label"`
	Class     string  `json:"class"` // session.ClassDomestic, ClassInternational or ClassPremium
	PerMinute float64 `json:"per_minute"`
}

// Rates is a validated rate table.
type Rates struct {
	Source        string   `json:"_source"`
	Currency      string   `json:"currency"`
	HomeCC        string   `json:"home_country_code"`
	NationalLen   int      `json:"national_number_digits"`
	IntlPrefixes  []string `json:"international_prefixes"`
	DefaultClass  string   `json:"default_class"`
	DefaultLabel  string   `json:"default_label"`
	DefaultPerMin float64  `json:"default_per_minute"`
	Entries       []Rate   `json:"rates"`
}

// MinExternalDigits is the shortest number treated as a call off the PBX: shorter ones are
// extensions and feature codes (the shortest E.164 numbers have 7 digits with the country code).
const MinExternalDigits = 7

// maxPerMinute bounds a rate: a larger one is a typo (cents written as units, a misplaced point).
const maxPerMinute = 100

var (
	digitsRE   = regexp.MustCompile(`^[0-9]{1,15}$`)
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	intlRE     = regexp.MustCompile(`^(\+|[0-9]{1,4})$`)
)

// Default returns the committed rate table. It panics only if the embedded file is broken,
// which the package tests rule out.
func Default() *Rates {
	r, err := Parse(defaultRatesJSON)
	if err != nil {
		panic(fmt.Sprintf("evidence: embedded rate table: %v", err))
	}
	return r
}

// Parse parses and validates a rate table: every prefix digits and unique, a label, a known
// class and a rate of 0–100 per minute each; a currency code; the home country code and
// international prefixes well formed. The error lists every problem.
func Parse(raw []byte) (*Rates, error) {
	var r Rates
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !currencyRE.MatchString(r.Currency) {
		bad("currency %q is not a 3-letter code such as USD", r.Currency)
	}
	if !digitsRE.MatchString(r.HomeCC) || len(r.HomeCC) > 3 {
		bad("home_country_code %q is not 1–3 digits", r.HomeCC)
	}
	if r.NationalLen < 4 || r.NationalLen > 14 {
		bad("national_number_digits %d is not 4–14", r.NationalLen)
	}
	for _, p := range r.IntlPrefixes {
		if !intlRE.MatchString(p) {
			bad("international prefix %q is not 1–4 digits or +", p)
		}
	}
	if !validClass(r.DefaultClass) {
		bad("default_class %q is not domestic, international or premium", r.DefaultClass)
	}
	if strings.TrimSpace(r.DefaultLabel) == "" {
		bad("default_label is empty")
	}
	if !validRate(r.DefaultPerMin) {
		bad("default_per_minute %v is not 0–%d", r.DefaultPerMin, maxPerMinute)
	}
	if len(r.Entries) == 0 {
		bad("no rates")
	}
	seen := map[string]bool{}
	for i, e := range r.Entries {
		switch {
		case !digitsRE.MatchString(e.Prefix):
			bad("rates[%d]: prefix %q is not 1–15 digits", i, e.Prefix)
		case seen[e.Prefix]:
			bad("rates[%d]: prefix %s is listed twice", i, e.Prefix)
		}
		seen[e.Prefix] = true
		if strings.TrimSpace(e.Label) == "" {
			bad("rates[%d] (%s): label is empty", i, e.Prefix)
		}
		if !validClass(e.Class) {
			bad("rates[%d] (%s): class %q is not domestic, international or premium", i, e.Prefix, e.Class)
		}
		if !validRate(e.PerMinute) {
			bad("rates[%d] (%s): per_minute %v is not 0–%d", i, e.Prefix, e.PerMinute, maxPerMinute)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Longest prefix first, so that the first match is the most specific.
	slices.SortStableFunc(r.Entries, func(a, b Rate) int { return len(b.Prefix) - len(a.Prefix) })
	slices.SortStableFunc(r.IntlPrefixes, func(a, b string) int { return len(b) - len(a) })
	return &r, nil
}

func validClass(c string) bool {
	return c == session.ClassDomestic || c == session.ClassInternational || c == session.ClassPremium
}

func validRate(v float64) bool { return v >= 0 && v <= maxPerMinute && !math.IsNaN(v) }

// Normalize turns a dialled number as the PBX records it ("sip:011234…@domain", "+44…",
// "2125550199") into E.164 digits with the country code first. ok is false for what is not
// a call off the PBX: an extension, a feature code, anything that is not digits.
func (r *Rates) Normalize(dialled string) (number string, ok bool) {
	s := strings.TrimSpace(dialled)
	s = strings.TrimPrefix(s, "sip:")
	if at := strings.IndexByte(s, '@'); at >= 0 {
		s = s[:at]
	}
	for _, p := range r.IntlPrefixes {
		if strings.HasPrefix(s, p) && len(s) > len(p) {
			s = s[len(p):]
			if !digitsRE.MatchString(s) || len(s) < MinExternalDigits {
				return "", false
			}
			return s, true
		}
	}
	if !digitsRE.MatchString(s) || len(s) < MinExternalDigits {
		return "", false
	}
	if len(s) == r.NationalLen {
		return r.HomeCC + s, true // a national number without its country code
	}
	return s, true
}

// Lookup returns the rate of a normalised number: its longest matching prefix, else the
// table's default.
func (r *Rates) Lookup(number string) Rate {
	for _, e := range r.Entries {
		if strings.HasPrefix(number, e.Prefix) {
			return e
		}
	}
	return Rate{Label: r.DefaultLabel, Class: r.DefaultClass, PerMinute: r.DefaultPerMin}
}
