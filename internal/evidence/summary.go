package evidence

import (
	"cmp"
	"math"
	"net"
	"slices"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// Window is how far back the evidence reads the user's call records.
const Window = 24 * time.Hour

// TopN is how many destination numbers the evidence names.
const TopN = 3

// Input is what the PBX returned for one evidence read. A read that failed has its reason
// (plain words, no secret) instead of its data.
type Input struct {
	Phase string
	Now   time.Time

	CDRs       []netsapiens.CDR
	CDRsFailed string // why the call records could not be read; "" = they were

	Calls       []netsapiens.ActiveCall
	CallsFailed string

	Devices       []netsapiens.Device
	DevicesFailed string
}

// inbound is the CDR type the evidence leaves out of destinations, minutes and cost. The spec
// documents the type filter only as "Inbound, Outbound, On-net, Off-net, Missed, Received, or
// integer type 0,1,2,3"; 0 is taken as inbound (listed first), and every other type counts, so
// an unsure record errs towards a warning.
const inbound = 0

// Summarize computes the evidence of one read. It is a pure function of in and the table.
func (r *Rates) Summarize(in Input) session.Evidence {
	ev := session.Evidence{Phase: in.Phase, ReadAt: in.Now.UTC(), Currency: r.Currency,
		Unavailable: in.CDRsFailed, LiveUnavailable: in.CallsFailed, DevicesUnavailable: in.DevicesFailed}
	if in.CDRsFailed == "" {
		r.addCDRs(&ev, in.CDRs, in.Now)
	}
	for _, c := range in.Calls {
		call := session.EvidenceCall{Number: c.DialedNumber, Since: c.StartDatetime}
		if n, ok := r.Normalize(c.DialedNumber); ok {
			rate := r.Lookup(n)
			call.Number, call.Label, call.Class = n, rate.Label, rate.Class
		}
		ev.LiveCalls = append(ev.LiveCalls, call)
	}
	for _, d := range in.Devices {
		ev.Registrations = append(ev.Registrations, registration(d))
	}
	return ev
}

func (r *Rates) addCDRs(ev *session.Evidence, cdrs []netsapiens.CDR, now time.Time) {
	hour, day := now.Add(-time.Hour), now.Add(-Window)
	byNumber := map[string]*session.Destination{}
	cost := 0.0
	for _, c := range cdrs {
		start := c.Start()
		if start.Before(day) || start.After(now) {
			continue // outside the window (a PBX that ignores the range)
		}
		ev.Calls24h++
		if !start.Before(hour) {
			ev.Calls1h++
		}
		if c.Type == inbound {
			continue
		}
		n, ok := r.Normalize(dialled(c))
		if !ok {
			continue
		}
		rate := r.Lookup(n)
		secs := max(c.Duration, 0)
		callCost := float64(secs) / 60 * rate.PerMinute
		cost += callCost
		ev.Seconds += secs
		switch rate.Class {
		case session.ClassInternational:
			ev.International++
			ev.InternationalSeconds += secs
		case session.ClassPremium:
			ev.Premium++
			ev.PremiumSeconds += secs
		}
		d := byNumber[n]
		if d == nil {
			d = &session.Destination{Number: n, Label: rate.Label, Class: rate.Class}
			byNumber[n] = d
		}
		d.Calls++
		d.Seconds += secs
		d.Cost += callCost
	}
	ev.Cost = cents(cost)
	top := make([]session.Destination, 0, len(byNumber))
	for _, d := range byNumber {
		d.Cost = cents(d.Cost)
		top = append(top, *d)
	}
	slices.SortFunc(top, func(a, b session.Destination) int {
		return cmp.Or(cmp.Compare(b.Cost, a.Cost), cmp.Compare(b.Seconds, a.Seconds), cmp.Compare(a.Number, b.Number))
	})
	if len(top) > TopN {
		top = top[:TopN]
	}
	if len(top) > 0 {
		ev.Top = top
	}
}

// dialled is the number a record names: "number" (the other party), else the user part of
// orig_to_uri.
func dialled(c netsapiens.CDR) string {
	if c.Number != nil && *c.Number != "" {
		return *c.Number
	}
	return c.OrigToURI
}

func cents(v float64) float64 { return math.Round(v*100) / 100 }

// registration is a device's registration as the PBX reports it, the address without its port.
func registration(d netsapiens.Device) session.Registration {
	reg := session.Registration{Device: d.ID()}
	if d.RegistrationState != nil {
		reg.Registered = *d.RegistrationState == "registered"
	}
	if d.RegistrationIPAddress != nil {
		reg.IP = *d.RegistrationIPAddress
		if host, _, err := net.SplitHostPort(reg.IP); err == nil {
			reg.IP = host
		}
	}
	if d.RegistrationUserAgent != nil {
		reg.UserAgent = *d.RegistrationUserAgent
	}
	if d.RegistrationDatetime != nil {
		reg.At = *d.RegistrationDatetime
	}
	return reg
}

// Risky reports whether a class is one the restore gate watches (international or premium).
func Risky(class string) bool {
	return class == session.ClassInternational || class == session.ClassPremium
}

// GateInput is what the PBX returned for a restore gate check.
type GateInput struct {
	Now, Since  time.Time // Since: containment
	CDRs        []netsapiens.CDR
	CDRsFailed  string
	RecreatedAt time.Time // when recreate started; zero = the devices were not re-created
	Recreated   []string  // the re-created devices' ids
	Devices     []netsapiens.Device
	DevsFailed  string
}

// Gate computes the restore gate: the international and premium calls that started since
// containment, and whether each re-created device registered since it was re-created.
func (r *Rates) Gate(in GateInput) session.Gate {
	g := session.Gate{CheckedAt: in.Now.UTC(), Since: in.Since.UTC(), CallsUnavailable: in.CDRsFailed,
		RecreatedAt: in.RecreatedAt.UTC(), DevicesUnavailable: in.DevsFailed}
	if in.RecreatedAt.IsZero() {
		g.RecreatedAt, g.DevicesUnavailable = time.Time{}, ""
	}
	// The PBX's times are whole seconds (CDR time_start, registration datetimes): compare in
	// seconds, or a call or registration in the same second as containment or re-creation
	// would count as before it.
	since, recreated := in.Since.Truncate(time.Second), in.RecreatedAt.Truncate(time.Second)
	if in.CDRsFailed == "" {
		for _, c := range in.CDRs {
			if c.Type == inbound || c.Start().Before(since) {
				continue
			}
			n, ok := r.Normalize(dialled(c))
			if !ok {
				continue
			}
			if rate := r.Lookup(n); Risky(rate.Class) {
				g.Risky = append(g.Risky, session.GateCall{Number: n, Label: rate.Label, Class: rate.Class,
					At: c.Start(), Seconds: max(c.Duration, 0)})
			}
		}
	}
	if in.RecreatedAt.IsZero() || in.DevsFailed != "" {
		return g
	}
	byID := map[string]netsapiens.Device{}
	for _, d := range in.Devices {
		byID[d.ID()] = d
	}
	for _, id := range in.Recreated {
		gd := session.GateDevice{Registration: session.Registration{Device: id}}
		if d, ok := byID[id]; ok {
			gd.Registration = registration(d)
			at, ok := parsePBXTime(gd.At)
			gd.Again = gd.Registered && ok && !at.Before(recreated)
		}
		g.Devices = append(g.Devices, gd)
	}
	return g
}

// pbxTimeLayouts are the forms a registration time comes in: RFC 3339 (the spec's date-time),
// and the space-separated form older servers print.
var pbxTimeLayouts = []string{time.RFC3339, "2006-01-02 15:04:05", "2006-01-02T15:04:05"}

func parsePBXTime(s string) (time.Time, bool) {
	for _, l := range pbxTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
