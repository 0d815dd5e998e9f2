package nstest

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

//go:embed seed/demo.json
var demoSeedJSON []byte

// Seed is the starting state of a simulated PBX. API objects (users, devices, phones,
// CDRs, active calls) are kept as the JSON objects the API returns, with the v45
// kebab-case names, so a test can add or change any documented field.
type Seed struct {
	Resellers    []Reseller       `json:"resellers"`
	Domains      []Domain         `json:"domains"`
	Users        []map[string]any `json:"users"`   // User objects; "domain" and "user" required
	Devices      []map[string]any `json:"devices"` // Device objects; "domain", "user" and "device" required
	Phones       []map[string]any `json:"phones"`  // NdpPhone objects; "domain" and the MAC required
	DialPolicies []DialPolicy     `json:"dial-policies"`
	CDRs         []map[string]any `json:"cdrs"`         // CdrU objects; the owner is "uid" (user@domain)
	ActiveCalls  []map[string]any `json:"active-calls"` // ActiveCall objects; owner "call-orig-user"@"call-orig-domain"
	APIKeys      []APIKey         `json:"api-keys"`     // the first one is Server.APIKey
	OAuthClients []OAuthClient    `json:"oauth-clients"`
	Logins       []Login          `json:"logins"`
}

// Reseller is a reseller account.
type Reseller struct {
	Reseller    string `json:"reseller"`
	Description string `json:"description"`
}

// Domain is a domain and the reseller that owns it.
type Domain struct {
	Domain      string `json:"domain"`
	Reseller    string `json:"reseller"`
	Description string `json:"description"`
}

// DialPolicy is a dial permission table; Domain "*" marks a system-level policy.
type DialPolicy struct {
	DialPolicy  string           `json:"dialpolicy"`
	Domain      string           `json:"domain"`
	Description string           `json:"description"`
	Permissions []map[string]any `json:"permissions"` // Permission objects
}

// APIKey is an API key and its scope. Domain "*" means every domain of Reseller.
// HomeDomain is what "~" means in a {domain} path segment (empty: "~" is refused).
type APIKey struct {
	Key         string `json:"key"`
	KeyID       string `json:"key-id"`
	Description string `json:"description"`
	Reseller    string `json:"reseller"`
	Domain      string `json:"domain"`
	User        string `json:"user"`
	UserScope   string `json:"user-scope"`
	ReadOnly    string `json:"readonly"`
	HomeDomain  string `json:"home-domain"`
}

// OAuthClient is a client allowed to use POST /tokens.
type OAuthClient struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// Login is a portal login for the OAuth password grant. Scope "Reseller" or "Super User"
// reaches every domain of the login domain's reseller; any other scope only its own domain.
type Login struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Domain   string `json:"domain"`
	User     string `json:"user"`
	Scope    string `json:"scope"`
}

// DemoSeed returns a fresh copy of the embedded demo tenant (reseller demo-reseller,
// domains acme.example and globex.example). It panics only if the embedded file is broken,
// which the package tests rule out.
func DemoSeed() *Seed {
	s, err := parseSeed(demoSeedJSON)
	if err != nil {
		panic(fmt.Sprintf("nstest: embedded demo seed: %v", err))
	}
	return s
}

// LoadSeed reads a seed in the demo.json format. It returns an error when the JSON does
// not parse or an object lacks the fields that identify it.
func LoadSeed(r io.Reader) (*Seed, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read seed: %w", err)
	}
	return parseSeed(raw)
}

func parseSeed(raw []byte) (*Seed, error) {
	var s Seed
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("parse seed: %w", err)
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Seed) check() error {
	var errs []error
	domains := map[string]bool{}
	for _, d := range s.Domains {
		if d.Domain == "" {
			errs = append(errs, errors.New("seed: a domain has no name"))
		}
		domains[d.Domain] = true
	}
	for i, u := range s.Users {
		if str(u["user"]) == "" || !domains[str(u["domain"])] {
			errs = append(errs, fmt.Errorf("seed: users[%d] needs user and a known domain", i))
		}
	}
	for i, d := range s.Devices {
		if str(d["device"]) == "" || str(d["user"]) == "" || !domains[str(d["domain"])] {
			errs = append(errs, fmt.Errorf("seed: devices[%d] needs device, user and a known domain", i))
		}
	}
	for i, p := range s.Phones {
		if str(p[fieldMAC]) == "" || !domains[str(p["domain"])] {
			errs = append(errs, fmt.Errorf("seed: phones[%d] needs %s and a known domain", i, fieldMAC))
		}
	}
	for i, k := range s.APIKeys {
		if k.Key == "" {
			errs = append(errs, fmt.Errorf("seed: api-keys[%d] has no key", i))
		}
	}
	return errors.Join(errs...)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
