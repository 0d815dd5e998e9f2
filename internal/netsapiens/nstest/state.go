package nstest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

const (
	fieldMAC      = "device-provisioning-mac-address"
	fieldLine     = "device-provisioning-line"
	fieldModel    = "device-models-model"
	fieldPhoneMod = "device-models-brand-and-model"
	fieldSIPPass  = "device-sip-registration-password"
	fieldRegState = "device-sip-registration-state"
	maxLines      = 8
)

// state is the simulated PBX. Every access holds Server.mu.
type state struct {
	domains  map[string]Domain         // by lower-case name
	users    map[string]map[string]any // by domain\x00user
	devices  map[string]map[string]any // by domain\x00device: device ids are unique per domain (they are AORs)
	phones   map[string]map[string]any // by domain\x00lower-case MAC
	policies []DialPolicy
	cdrs     []map[string]any
	calls    []map[string]any
	keys     map[string]APIKey
	clients  map[string]OAuthClient
	logins   map[string]Login
	access   map[string]*token
	refresh  map[string]*token
	revoked  []string
	portal   map[string]string // user@domain → portal password set through v1 (v1.go)
	emails   []SentEmail
}

type token struct {
	login    Login
	clientID string
	expires  time.Time
}

func key(parts ...string) string { return strings.Join(parts, "\x00") }

func newState(seed *Seed) *state {
	seed = cloneJSON(seed)
	st := &state{
		domains: map[string]Domain{}, users: map[string]map[string]any{}, devices: map[string]map[string]any{},
		phones: map[string]map[string]any{}, keys: map[string]APIKey{}, clients: map[string]OAuthClient{},
		logins: map[string]Login{}, access: map[string]*token{}, refresh: map[string]*token{},
		policies: seed.DialPolicies, cdrs: seed.CDRs, calls: seed.ActiveCalls,
	}
	for _, d := range seed.Domains {
		st.domains[strings.ToLower(d.Domain)] = d
	}
	for _, u := range seed.Users {
		u["domain"] = strings.ToLower(str(u["domain"]))
		st.users[key(strings.ToLower(str(u["domain"])), str(u["user"]))] = u
	}
	for _, d := range seed.Devices {
		// The phone entries are the truth about MAC links; see deviceView.
		delete(d, fieldMAC)
		delete(d, fieldLine)
		d["domain"] = strings.ToLower(str(d["domain"]))
		st.devices[key(strings.ToLower(str(d["domain"])), str(d["device"]))] = d
	}
	for _, p := range seed.Phones {
		p[fieldMAC] = strings.ToLower(str(p[fieldMAC]))
		p["domain"] = strings.ToLower(str(p["domain"]))
		st.phones[key(strings.ToLower(str(p["domain"])), str(p[fieldMAC]))] = p
	}
	for _, k := range seed.APIKeys {
		st.keys[k.Key] = k
	}
	for _, c := range seed.OAuthClients {
		st.clients[c.ClientID] = c
	}
	for _, l := range seed.Logins {
		st.logins[l.Username] = l
	}
	return st
}

// cloneJSON deep-copies through JSON, which also turns every number into float64, the
// form a test gets back from encoding/json.
func cloneJSON[T any](v T) T {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("nstest: copy state: %v", err))
	}
	var out T
	if err := json.Unmarshal(raw, &out); err != nil {
		panic(fmt.Sprintf("nstest: copy state: %v", err))
	}
	return out
}

func aor(device, domain string) string { return "sip:" + device + "@" + domain }

// phoneLink finds the phone line whose SIP URI is the device's AOR.
func (st *state) phoneLink(domain, device string) (phone map[string]any, line int) {
	want := aor(device, domain)
	var macs []string
	for k := range st.phones {
		if strings.HasPrefix(k, domain+"\x00") {
			macs = append(macs, k)
		}
	}
	sort.Strings(macs)
	for _, k := range macs {
		p := st.phones[k]
		for i := 1; i <= maxLines; i++ {
			if strings.EqualFold(str(p[fmt.Sprintf("device-provisioning-sip-uri-%d", i)]), want) {
				return p, i
			}
		}
	}
	return nil, 0
}

// deviceView is the Device object a GET returns: the stored fields plus what the PBX
// computes (AOR, owner's name, the MAC link read from the phone entries).
func (st *state) deviceView(d map[string]any) map[string]any {
	v := cloneJSON(d)
	domain, dev, user := str(d["domain"]), str(d["device"]), str(d["user"])
	v["device-sip-registration-uri"] = aor(dev, domain)
	v["login-username"] = dev + "@" + domain
	if u := st.users[key(domain, user)]; u != nil {
		v["name-full-name"] = strings.TrimSpace(str(u["name-first-name"]) + " " + str(u["name-last-name"]))
	}
	if p, line := st.phoneLink(domain, dev); p != nil {
		v[fieldMAC] = p[fieldMAC]
		v[fieldLine] = float64(line)
		v[fieldModel] = p[fieldPhoneMod]
	}
	if _, ok := v[fieldRegState]; !ok {
		v[fieldRegState] = "unregistered"
	}
	return v
}

func (st *state) userDevices(domain, user string) []map[string]any {
	var out []map[string]any
	for _, d := range st.devices {
		if str(d["domain"]) == domain && (user == "" || str(d["user"]) == user) {
			out = append(out, st.deviceView(d))
		}
	}
	sort.Slice(out, func(i, j int) bool { return str(out[i]["device"]) < str(out[j]["device"]) })
	return out
}

func (st *state) domainPhones(domain string) []map[string]any {
	var out []map[string]any
	for k, p := range st.phones {
		if strings.HasPrefix(k, domain+"\x00") {
			out = append(out, cloneJSON(p))
		}
	}
	sort.Slice(out, func(i, j int) bool { return str(out[i][fieldMAC]) < str(out[j][fieldMAC]) })
	return out
}

func (st *state) userCalls(domain, user string) []map[string]any {
	var out []map[string]any
	for _, c := range st.calls {
		if strings.EqualFold(str(c["call-orig-domain"]), domain) && str(c["call-orig-user"]) == user {
			out = append(out, cloneJSON(c))
		}
	}
	return out
}

// User returns a copy of the user as GET returns it, and whether it exists.
func (s *Server) User(domain, user string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.users[key(strings.ToLower(domain), user)]
	if !ok {
		return nil, false
	}
	return cloneJSON(u), true
}

// Devices returns the user's devices as GET returns them, sorted by device id.
func (s *Server) Devices(domain, user string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.userDevices(strings.ToLower(domain), user)
}

// Phones returns the domain's phone (MAC) entries, sorted by MAC.
func (s *Server) Phones(domain string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.domainPhones(strings.ToLower(domain))
}

// SetUserField changes one field of a user directly, without validation (e.g. someone
// changing dial-policy in the portal mid-incident). It panics if the user does not exist,
// because a test that sets up a missing user is wrong.
func (s *Server) SetUserField(domain, user, field string, value any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.st.users[key(strings.ToLower(domain), user)]
	if !ok {
		panic(fmt.Sprintf("nstest: SetUserField: user %s@%s does not exist", user, domain))
	}
	u[field] = cloneJSON(value)
}

// AddActiveCall starts a live call from the user to the number to (an ActiveCall the
// runbook must end with DELETE …/calls/{callID}).
func (s *Server) AddActiveCall(domain, user, callID, to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	domain = strings.ToLower(domain)
	now := s.now().UTC().Format(time.RFC3339)
	s.st.calls = append(s.st.calls, map[string]any{
		"core-server": "core1.pbx.example", "call-session-id": "sess-" + callID,
		"call-orig-call-id": callID, "call-orig-match-uri": aor(user, domain),
		"call-orig-user": user, "call-orig-domain": domain, "call-orig-uri": aor(user, domain),
		"call-orig-name": user, "caller-id-number": user, "call-dialed-number": to,
		"call-by-action": "", "call-by-user": "", "call-by-domain": "", "call-by-call-id": "",
		"call-term-call-id": "term-" + callID, "call-term-user": to, "call-term-domain": "",
		"call-term-uri": "sip:" + to + "@carrier.example", "call-start-datetime": now,
		"call-answer-datetime": now, "call-orig-info": "", "term-orig-info": "", "call-audio-codec": "PCMU",
	})
}

// ActiveCalls returns the user's live calls.
func (s *Server) ActiveCalls(domain, user string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.userCalls(strings.ToLower(domain), user)
}

// RevokedJWTs returns the uids revoked with DELETE /jwt/{uid}, in order.
func (s *Server) RevokedJWTs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.st.revoked...)
}

// Emails returns the emails sent with POST …/users/{u}/email, in order.
func (s *Server) Emails() []SentEmail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SentEmail(nil), s.st.emails...)
}

// Tokens returns every OAuth access and refresh token issued so far (for a test's secret scan).
func (s *Server) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for t := range s.st.access {
		out = append(out, t)
	}
	for t := range s.st.refresh {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
