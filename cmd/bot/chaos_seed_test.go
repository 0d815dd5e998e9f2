package main

import (
	"fmt"
	"maps"
	"strconv"

	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
)

// The chaos tenant: chaosDomains domains of chaosPerDomain users, each with a desk phone line (a
// device linked to a MAC entry) and a soft phone, copied from 1001@acme.example of the demo seed,
// and an original dial policy that differs from user to user (so a restore that put back the wrong
// one is seen).
const (
	chaosDomains   = 5
	chaosPerDomain = 4
)

var chaosPolicies = []string{"US and Canada", "International"}

// chaosUser is one user of the chaos tenant and what the seed gave it.
type chaosUser struct {
	user, domain string
	original     string           // the seeded dial policy
	devices      []map[string]any // the seeded devices (as in the seed, before the PBX adds computed fields)
	mac          string           // the desk phone's MAC; line 1 is the user's first device
}

func (u chaosUser) target() string { return u.user + "@" + u.domain }

// chaosSeed is the demo tenant plus the chaos domains, and the chaos users in domain-interleaved order.
func chaosSeed() (*nstest.Seed, []chaosUser) {
	seed := nstest.DemoSeed()
	var tmplUser map[string]any
	for _, u := range seed.Users {
		if u["user"] == "1001" && u["domain"] == "acme.example" {
			tmplUser = u
		}
	}
	var tmplDevs []map[string]any
	for _, d := range seed.Devices {
		if d["user"] == "1001" && d["domain"] == "acme.example" {
			tmplDevs = append(tmplDevs, d)
		}
	}
	var tmplPhone map[string]any
	for _, p := range seed.Phones {
		if p["device-provisioning-sip-uri-1"] == "sip:1001@acme.example" {
			tmplPhone = p
		}
	}
	var users []chaosUser
	for d := range chaosDomains {
		dom := fmt.Sprintf("chaos%d.example", d)
		seed.Domains = append(seed.Domains, nstest.Domain{Domain: dom, Reseller: "demo-reseller", Description: "chaos run"})
	}
	for u := range chaosPerDomain {
		for d := range chaosDomains {
			dom, user := fmt.Sprintf("chaos%d.example", d), strconv.Itoa(3001+u)
			cu := chaosUser{user: user, domain: dom, original: chaosPolicies[(d+u)%len(chaosPolicies)],
				mac: fmt.Sprintf("0004f2c0%02x%02x", d, u)}
			m := maps.Clone(tmplUser)
			m["domain"], m["user"], m["dial-plan"], m["dial-policy"] = dom, user, dom, cu.original
			m["login-username"], m["email-address"] = user+"@"+dom, "u"+user+"@"+dom
			seed.Users = append(seed.Users, m)
			for i, td := range tmplDevs {
				dev := maps.Clone(td)
				id := user + []string{"", "a", "b"}[i]
				dev["domain"], dev["user"], dev["device"] = dom, user, id
				dev["device-sip-registration-password"] = fmt.Sprintf("ChaosSip%s%sPw%d", id, dom[:6], i)
				delete(dev, "device-provisioning-mac-address")
				delete(dev, "device-provisioning-line")
				seed.Devices = append(seed.Devices, dev)
				cu.devices = append(cu.devices, dev)
			}
			ph := maps.Clone(tmplPhone)
			ph["device-provisioning-mac-address"], ph["domain"] = cu.mac, dom
			ph["device-provisioning-sip-uri-1"] = "sip:" + user + "@" + dom
			seed.Phones = append(seed.Phones, ph)
			users = append(users, cu)
		}
	}
	return seed, users
}
