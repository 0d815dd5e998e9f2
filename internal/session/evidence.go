package session

import "time"

// Evidence phases: when the fraud evidence was read.
const (
	PhaseOpen        = "open"        // when the incident opened
	PhaseContainment = "containment" // after deny verified Deny All and ended the live calls
)

// Destination classes of the rate table (internal/evidence).
const (
	ClassDomestic      = "domestic"
	ClassInternational = "international"
	ClassPremium       = "premium"
)

// Evidence is what the PBX showed of possible toll fraud at one moment: the user's call
// records of the last 24 h, its live calls and its devices' registrations. It is figures and
// phone numbers (evidence, not secrets) computed by internal/evidence; the card and the audit
// bundle show it as stored.
type Evidence struct {
	Phase  string    `json:"phase"` // PhaseOpen or PhaseContainment
	ReadAt time.Time `json:"read_at"`
	// Unavailable says why the call records could not be read ("" = they were): the figures
	// below are then empty, and the card says "evidence unavailable".
	Unavailable string `json:"unavailable,omitempty"`

	Calls1h  int `json:"calls_1h"`  // call records that started in the hour before ReadAt
	Calls24h int `json:"calls_24h"` // … in the 24 h before ReadAt
	// Seconds of outgoing calls to external numbers in the 24 h, all classes and the two risky ones.
	Seconds              int `json:"seconds"`
	International        int `json:"international"` // outgoing calls to international destinations
	InternationalSeconds int `json:"international_seconds"`
	Premium              int `json:"premium"` // outgoing calls to premium destinations
	PremiumSeconds       int `json:"premium_seconds"`
	// Cost is the estimated cost at risk of the 24 h's outgoing external calls at the rate
	// table's per-minute rates, in Currency.
	Cost     float64       `json:"cost"`
	Currency string        `json:"currency,omitempty"`
	Top      []Destination `json:"top,omitempty"` // the top three destination numbers by cost, then minutes

	LiveCalls []EvidenceCall `json:"live_calls,omitempty"`
	// LiveUnavailable / DevicesUnavailable say why those reads failed ("" = they did not).
	LiveUnavailable    string         `json:"live_unavailable,omitempty"`
	Registrations      []Registration `json:"registrations,omitempty"`
	DevicesUnavailable string         `json:"devices_unavailable,omitempty"`
}

// Destination is one dialled number's share of the evidence.
type Destination struct {
	Number  string  `json:"number"` // as normalised (country code first, no "+")
	Label   string  `json:"label"`  // the rate table's label, e.g. "Nigeria"
	Class   string  `json:"class"`  // ClassDomestic, ClassInternational, ClassPremium
	Calls   int     `json:"calls"`
	Seconds int     `json:"seconds"`
	Cost    float64 `json:"cost"`
}

// EvidenceCall is one live call as the PBX listed it.
type EvidenceCall struct {
	Number string `json:"number"`
	Label  string `json:"label,omitempty"`
	Class  string `json:"class,omitempty"`
	Since  string `json:"since,omitempty"` // call-start-datetime as the PBX gave it
}

// Registration is one device's SIP registration as the PBX reports it.
type Registration struct {
	Device     string `json:"device"`
	Registered bool   `json:"registered"`
	IP         string `json:"ip,omitempty"` // device-sip-registration-ip-address without the port
	UserAgent  string `json:"user_agent,omitempty"`
	At         string `json:"at,omitempty"` // device-sip-registration-datetime as the PBX gave it
}

// Gate is the restore gate as last checked: whether any international or premium call started
// since containment, and whether each re-created device has registered again (with its new
// credentials: the old ones no longer exist on the PBX) since it was re-created. An unmet gate
// needs the explicit "restore over the gate" path; internal/evidence says what is unmet.
type Gate struct {
	CheckedAt time.Time `json:"checked_at"`
	Since     time.Time `json:"since"` // containment: when deny finished
	// CallsUnavailable / DevicesUnavailable say why a read failed (the gate is then unmet).
	CallsUnavailable   string       `json:"calls_unavailable,omitempty"`
	Risky              []GateCall   `json:"risky,omitempty"` // international and premium calls since Since
	RecreatedAt        time.Time    `json:"recreated_at,omitzero"`
	Devices            []GateDevice `json:"devices,omitempty"` // the re-created devices (none before recreate)
	DevicesUnavailable string       `json:"devices_unavailable,omitempty"`
}

// GateCall is one international or premium call since containment.
type GateCall struct {
	Number  string    `json:"number"`
	Label   string    `json:"label"`
	Class   string    `json:"class"`
	At      time.Time `json:"at"`
	Seconds int       `json:"seconds"`
}

// GateDevice is one re-created device and whether it registered again since it was re-created.
type GateDevice struct {
	Registration
	Again bool `json:"again"` // registered since the re-creation
}
