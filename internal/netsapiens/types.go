package netsapiens

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// Version is the reply of GET /version.
type Version struct {
	APIVersion  string `json:"apiversion"`
	Hostname    string `json:"hostname"`
	CurrentTime string `json:"current-time,omitempty"`
}

// User is the part of the v2 User resource the bot reads (GET /domains/{d}/users/{u}).
type User struct {
	Domain                 string `json:"domain"`
	User                   string `json:"user"`
	FirstName              string `json:"name-first-name,omitempty"`
	LastName               string `json:"name-last-name,omitempty"`
	LoginUsername          string `json:"login-username,omitempty"`
	EmailAddress           string `json:"email-address,omitempty"` // ";"-separated list
	Scope                  string `json:"user-scope,omitempty"`
	Site                   string `json:"site,omitempty"`
	Department             string `json:"department,omitempty"`
	DialPolicy             string `json:"dial-policy,omitempty"`
	DialPlan               string `json:"dial-plan,omitempty"`
	VoicemailPIN           Secret `json:"voicemail-login-pin,omitempty"`
	VoicemailEnabled       string `json:"voicemail-enabled,omitempty"`
	AccountStatus          string `json:"account-status,omitempty"`
	CallerIDNumber         string `json:"caller-id-number,omitempty"`
	CallerIDName           string `json:"caller-id-name,omitempty"`
	RecordingConfiguration string `json:"recording-configuration,omitempty"`
	PresenceStatus         string `json:"user-presence-status,omitempty"`
	CreatedDatetime        string `json:"created-datetime,omitempty"`
	LastModifiedDatetime   string `json:"last-modified-datetime,omitempty"`
}

// Format prints the user with the PIN redacted, for every fmt verb. (Without it, a
// mismatched verb on a *User nested in another value makes fmt print the PIN raw.)
func (u User) Format(f fmt.State, verb rune) {
	type plain User // drops the methods, so this does not recurse
	if u.VoicemailPIN != "" {
		u.VoicemailPIN = redacted
	}
	if verb == 'v' && f.Flag('#') {
		fmt.Fprintf(f, "netsapiens.User%+v", plain(u))
		return
	}
	if verb == 'v' && f.Flag('+') {
		fmt.Fprintf(f, "%+v", plain(u))
		return
	}
	fmt.Fprintf(f, "%v", plain(u))
}

// MarshalZerologObject logs the user's identity and policy, never the PIN.
func (u User) MarshalZerologObject(e *zerolog.Event) {
	e.Str("user", u.User).Str("domain", u.Domain).Str("dial_policy", u.DialPolicy)
}

// UserUpdate is a partial PUT of a user: only the non-nil fields are sent, so the PBX
// leaves every other field unchanged.
type UserUpdate struct {
	DialPolicy   *string `json:"dial-policy,omitempty"`
	VoicemailPIN *Secret `json:"voicemail-login-pin,omitempty"`
}

// DialPolicy is a dial policy (permission table). SystemLevel is true when it was found
// through the system-level GET /dialpolicy/{p} rather than the domain's.
type DialPolicy struct {
	Name        string `json:"dialpolicy"`
	Domain      string `json:"domain"`
	Description string `json:"description"`
	SystemLevel bool   `json:"-"`
}

// Permission is one rule of a dial policy.
type Permission struct {
	DialPolicy      string `json:"dialpolicy"`
	Domain          string `json:"domain,omitempty"`
	Match           string `json:"permission-match"`
	Mode            string `json:"permission-mode"` // "permit" or "deny"
	Reason          string `json:"permission-reason"`
	CreatedDatetime string `json:"created-datetime,omitempty"`
	ID              string `json:"permission-id"`
}

// Permits reports whether the rule lets matching calls through (mode "permit").
func (p Permission) Permits() bool { return p.Mode == "permit" }

// ActiveCall is a live call of a user (GET …/users/{u}/calls).
type ActiveCall struct {
	CoreServer     string `json:"core-server,omitempty"`
	SessionID      string `json:"call-session-id,omitempty"`
	OrigCallID     string `json:"call-orig-call-id,omitempty"`
	OrigMatchURI   string `json:"call-orig-match-uri,omitempty"`
	OrigUser       string `json:"call-orig-user,omitempty"`
	OrigDomain     string `json:"call-orig-domain,omitempty"`
	OrigURI        string `json:"call-orig-uri,omitempty"`
	OrigName       string `json:"call-orig-name,omitempty"`
	CallerIDNumber string `json:"caller-id-number,omitempty"`
	DialedNumber   string `json:"call-dialed-number,omitempty"`
	ByAction       string `json:"call-by-action,omitempty"`
	ByUser         string `json:"call-by-user,omitempty"`
	ByDomain       string `json:"call-by-domain,omitempty"`
	ByCallID       string `json:"call-by-call-id,omitempty"`
	TermCallID     string `json:"call-term-call-id,omitempty"`
	TermUser       string `json:"call-term-user,omitempty"`
	TermDomain     string `json:"call-term-domain,omitempty"`
	TermURI        string `json:"call-term-uri,omitempty"`
	StartDatetime  string `json:"call-start-datetime,omitempty"`
	AnswerDatetime string `json:"call-answer-datetime,omitempty"`
	OrigInfo       string `json:"call-orig-info,omitempty"`
	TermOrigInfo   string `json:"term-orig-info,omitempty"`
	AudioCodec     string `json:"call-audio-codec,omitempty"`
}

// ID returns the call id to pass to EndCall: the originating leg's call id, or the
// session id when the PBX gave none.
func (c ActiveCall) ID() string {
	if c.OrigCallID != "" {
		return c.OrigCallID
	}
	return c.SessionID
}

// CDR is one call detail record of a user (GET …/users/{u}/cdrs), kept as evidence.
// Times are Unix seconds as the PBX sends them.
type CDR struct {
	UID           string  `json:"uid"`
	Domain        string  `json:"domain"`
	ID            string  `json:"cdr_id"`
	Type          int     `json:"type"`
	TimeStart     int64   `json:"time_start"`
	TimeAnswer    int64   `json:"time_answer"`
	TimeRelease   int64   `json:"time_release"`
	Duration      int     `json:"duration"`
	OrigToURI     string  `json:"orig_to_uri"`
	Number        *string `json:"number"`
	Name          *string `json:"name"`
	OnNet         int     `json:"onnet"`
	Hide          int     `json:"hide"`
	Tag           string  `json:"tag"`
	ExpectedTrace bool    `json:"expected_trace"`
}

// Start returns the call's start time.
func (c CDR) Start() time.Time { return time.Unix(c.TimeStart, 0).UTC() }
