package evidence

import (
	"fmt"
	"strings"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// Minutes writes seconds as minutes with one decimal ("15.5 min").
func Minutes(secs int) string { return fmt.Sprintf("%.1f min", float64(secs)/60) }

// Money writes an amount in its currency ("USD 12.02").
func Money(v float64, currency string) string { return fmt.Sprintf("%s %.2f", currency, v) }

// PBXTime writes a time the PBX gave (a registration, a call start): "01:52 UTC" on now's day, else
// with the date (and the year when not now's); the PBX's own text when it is not an RFC 3339 time.
func PBXTime(at string, now time.Time) string {
	t, ok := parsePBXTime(at)
	if !ok {
		return at
	}
	t = t.UTC()
	y, m, d := now.UTC().Date()
	switch {
	case t.Year() != y:
		return t.Format("2 Jan 2006 15:04 UTC")
	case t.Month() != m || t.Day() != d:
		return t.Format("2 Jan 15:04 UTC")
	}
	return t.Format("15:04 UTC")
}

// RegistrationText is one device's registration in words: "registered from 203.0.113.5
// (Zoiper 5) at 01:52 UTC", or "not registered".
func RegistrationText(r session.Registration, now time.Time) string {
	if !r.Registered {
		return "not registered"
	}
	s := "registered"
	if r.IP != "" {
		s += " from " + r.IP
	}
	if r.UserAgent != "" {
		s += " (" + r.UserAgent + ")"
	}
	if r.At != "" {
		s += " at " + PBXTime(r.At, now)
	}
	return s
}

// Line is the evidence in one line of plain words, for the audit trail and the CLI.
func Line(ev session.Evidence) string {
	var parts []string
	if ev.Unavailable != "" {
		parts = append(parts, "call records unavailable: "+ev.Unavailable)
	} else {
		parts = append(parts,
			fmt.Sprintf("%d call(s) in the last hour, %d in 24 h", ev.Calls1h, ev.Calls24h),
			Minutes(ev.Seconds)+" outgoing",
			fmt.Sprintf("international %d (%s)", ev.International, Minutes(ev.InternationalSeconds)),
			fmt.Sprintf("premium %d (%s)", ev.Premium, Minutes(ev.PremiumSeconds)),
			"estimated cost at risk "+Money(ev.Cost, ev.Currency))
		if len(ev.Top) > 0 {
			var top []string
			for _, d := range ev.Top {
				top = append(top, fmt.Sprintf("%s %s %s %s", d.Number, d.Label, Minutes(d.Seconds), Money(d.Cost, ev.Currency)))
			}
			parts = append(parts, "top: "+strings.Join(top, "; "))
		}
	}
	switch {
	case ev.LiveUnavailable != "":
		parts = append(parts, "live calls unavailable: "+ev.LiveUnavailable)
	default:
		parts = append(parts, fmt.Sprintf("%d live call(s)", len(ev.LiveCalls)))
	}
	if ev.DevicesUnavailable != "" {
		parts = append(parts, "registrations unavailable: "+ev.DevicesUnavailable)
	}
	for _, r := range ev.Registrations {
		parts = append(parts, r.Device+" "+RegistrationText(r, ev.ReadAt))
	}
	return strings.Join(parts, " · ")
}

// GateProblems lists in plain words what keeps the restore gate unmet; none means it is met.
func GateProblems(g session.Gate, now time.Time) []string {
	var out []string
	switch {
	case g.CallsUnavailable != "":
		out = append(out, "the calls since containment could not be read ("+g.CallsUnavailable+")")
	case len(g.Risky) > 0:
		c := g.Risky[0]
		out = append(out, fmt.Sprintf("%d international or premium call(s) since containment (%s %s at %s)",
			len(g.Risky), c.Number, c.Label, PBXTime(c.At.Format(time.RFC3339), now)))
	}
	if g.DevicesUnavailable != "" {
		out = append(out, "the devices could not be read ("+g.DevicesUnavailable+")")
	}
	var silent []string
	for _, d := range g.Devices {
		if !d.Again {
			silent = append(silent, d.Device)
		}
	}
	if len(silent) > 0 {
		out = append(out, strings.Join(silent, ", ")+" not registered again with the new credentials")
	}
	return out
}
