package nstest

import (
	"fmt"
	"maps"
	"strconv"
)

// AddDomain adds a domain of n users to s (for lockdown tests and benchmarks): users
// first, first+1, … (as decimal user names), each a copy of the demo's 1001@acme.example with
// the given dial policy and one softphone device "<user>a" (no MAC, so recreate gives it a new
// SIP password to deliver). It returns the users as user@domain, in order. It panics when s
// has no 1001@acme.example to copy (a test's own mistake).
func (s *Seed) AddDomain(domain string, n, first int, policy string) []string {
	var tmplUser, tmplDev map[string]any
	for _, u := range s.Users {
		if u["domain"] == "acme.example" && u["user"] == "1001" {
			tmplUser = u
		}
	}
	for _, d := range s.Devices {
		if d["domain"] == "acme.example" && d["device"] == "1001a" {
			tmplDev = d
		}
	}
	if tmplUser == nil || tmplDev == nil {
		panic("nstest: AddDomain needs the demo's 1001@acme.example and its device 1001a")
	}
	s.Domains = append(s.Domains, Domain{Domain: domain, Reseller: "demo-reseller", Description: "bulk test domain"})
	out := make([]string, 0, n)
	for i := range n {
		user := strconv.Itoa(first + i)
		u := maps.Clone(tmplUser)
		u["domain"], u["user"], u["dial-plan"], u["dial-policy"] = domain, user, domain, policy
		u["login-username"], u["email-address"] = user+"@"+domain, "u"+user+"@"+domain
		u["voicemail-login-pin"] = fmt.Sprintf("%06d", 100000+i*7%900000)
		s.Users = append(s.Users, u)
		d := maps.Clone(tmplDev)
		d["domain"], d["user"], d["device"] = domain, user, user+"a"
		d["device-sip-registration-password"] = fmt.Sprintf("BulkSip%sPw0rd%04d", user, i)
		s.Devices = append(s.Devices, d)
		out = append(out, user+"@"+domain)
	}
	return out
}
