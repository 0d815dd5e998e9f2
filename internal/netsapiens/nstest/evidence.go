package nstest

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Test hooks for the fraud evidence: call records and SIP registrations happen on a real PBX
// without any API call, so tests make them happen here. Seeds can hold both too ("cdrs", and
// the device-sip-registration-* fields of "devices").

// CDR is one call record to add with AddCDR: a call by the user to Number that started at
// Start and lasted Seconds (answered 4 s after it started). Type is the CdrU type (1 = an
// outgoing call in the demo seed).
type CDR struct {
	Domain, User string
	Number       string
	Start        time.Time
	Seconds      int
	Type         int
}

// AddCDR records a finished call as a CdrU object with every field the spec requires, and
// returns its cdr_id.
func (s *Server) AddCDR(c CDR) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	domain := strings.ToLower(c.Domain)
	id := fmt.Sprintf("cdr-sim-%d", len(s.st.cdrs)+1) // records are never removed: unique
	start := c.Start.Unix()
	s.st.cdrs = append(s.st.cdrs, map[string]any{
		"uid": c.User + "@" + domain, "domain": domain, "cdr_id": id, "type": float64(c.Type),
		"time_start": float64(start), "time_answer": float64(start + 4), "time_release": float64(start + 4 + int64(c.Seconds)),
		"duration": float64(c.Seconds), "orig_to_uri": "sip:" + c.Number + "@" + domain, "number": c.Number, "name": nil,
		"onnet": float64(0), "hide": float64(0), "tag": "", "expected_trace": false,
	})
	return id
}

// ErrRegistrationRefused is RegisterDevice's answer to a wrong SIP password.
var ErrRegistrationRefused = errors.New("nstest: SIP registration refused: wrong password")

// RegisterDevice registers a device as a SIP client would, from ip (host:port) with
// userAgent, now: with the device's current password only (an attacker holding the old one
// is refused with ErrRegistrationRefused). It panics if the device does not exist, because a
// test that registers a missing device is wrong.
func (s *Server) RegisterDevice(domain, device, password, ip, userAgent string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	domain = strings.ToLower(domain)
	dev := s.st.devices[key(domain, device)]
	if dev == nil {
		panic(fmt.Sprintf("nstest: RegisterDevice: device %s@%s does not exist", device, domain))
	}
	if str(dev[fieldSIPPass]) != password {
		return ErrRegistrationRefused
	}
	now := s.now().UTC()
	dev[fieldRegState] = "registered"
	dev["device-sip-registration-ip-address"] = ip
	dev["device-sip-registration-contact"] = "sip:" + device + "@" + ip
	dev["device-sip-registration-user-agent"] = userAgent
	dev["device-sip-registration-datetime"] = now.Format(time.RFC3339)
	dev["device-sip-registration-expires-datetime"] = now.Add(time.Hour).Format(time.RFC3339)
	return nil
}
