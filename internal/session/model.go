package session

import (
	"time"
)

// Step names the four runbook steps, in the order the runbook runs them.
type Step string

// The runbook's steps (DESIGN.md "The runbook, precisely").
const (
	StepDeny     Step = "deny"
	StepRecreate Step = "recreate"
	StepReset    Step = "reset"
	StepRestore  Step = "restore"
)

// Steps lists every step in runbook order.
var Steps = []Step{StepDeny, StepRecreate, StepReset, StepRestore}

// Valid reports whether s names one of the four steps.
func (s Step) Valid() bool {
	switch s {
	case StepDeny, StepRecreate, StepReset, StepRestore:
		return true
	}
	return false
}

// Status is where one step of an incident stands.
type Status string

// A step moves ready → (awaiting_approval →) running → done | warnings | failed; failed may go back to running
// (Retry) or awaiting_approval; a step that a closed incident never ran is skipped.
const (
	StatusReady    Status = "ready"
	StatusAwaiting Status = "awaiting_approval"
	StatusRunning  Status = "running"
	StatusDone     Status = "done"     // verified on the PBX
	StatusWarnings Status = "warnings" // done, but some sub-action could not be verified or was not possible
	StatusFailed   Status = "failed"
	StatusSkipped  Status = "skipped"
)

// Finished reports whether the step has reached an end state that allows the next steps (done or done with warnings).
func (s Status) Finished() bool { return s == StatusDone || s == StatusWarnings }

// State is the incident's lifecycle.
type State string

// An incident is open until a verified restore (restored) or an abort (aborted).
const (
	StateOpen     State = "open"
	StateRestored State = "restored"
	StateAborted  State = "aborted"
)

// Outcome of one sub-action of a step, as the card and the audit show it: never claim more than was seen.
type Outcome string

// Sub-action outcomes.
const (
	OutcomeVerified    Outcome = "verified"     // read back from the PBX
	OutcomeRequested   Outcome = "requested"    // the PBX accepted it but it cannot be read back
	OutcomeNotPossible Outcome = "not_possible" // the API offers no way to do it
	OutcomeFailed      Outcome = "failed"
	OutcomeSkipped     Outcome = "skipped"
)

// SubResult is one line of a step's result ("sessions: revocation requested").
type SubResult struct {
	Name    string  `json:"name"`
	Outcome Outcome `json:"outcome"`
	Detail  string  `json:"detail,omitempty"` // plain words, never a secret
}

// StepState is everything the store knows about one step of one incident.
type StepState struct {
	Step   Step   `json:"step"`
	Status Status `json:"status"`
	// Attempts counts how often the step was started (ready/failed → running).
	Attempts int `json:"attempts,omitempty"`

	RequestedBy string    `json:"requested_by,omitempty"` // actor of record: Slack user ID, or "cli:<name>"
	RequestedAt time.Time `json:"requested_at,omitzero"`
	// Approval, when the step is in APPROVAL_STEPS.
	ApprovalExpires time.Time `json:"approval_expires,omitzero"`
	ApprovedBy      string    `json:"approved_by,omitempty"`
	ApprovedAt      time.Time `json:"approved_at,omitzero"`
	RejectedBy      string    `json:"rejected_by,omitempty"`
	RejectedAt      time.Time `json:"rejected_at,omitzero"`
	// Force is set for a restore that overrides a detected drift (force:restore).
	Force bool `json:"force,omitempty"`

	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Lease of the runner while running: whoever holds Fence may write; the lease ends at LeaseUntil.
	LeaseOwner string    `json:"lease_owner,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	Fence      int64     `json:"fence,omitempty"`

	// Progress records what a running step has already done on the PBX, so a resumed runner
	// continues instead of repeating (e.g. "device/1001a" → "deleted").
	Progress map[string]string `json:"progress,omitempty"`

	Summary    string      `json:"summary,omitempty"` // one line for the card ("verified · 1 live call ended")
	SubResults []SubResult `json:"sub_results,omitempty"`
	ErrKind    ErrKind     `json:"err_kind,omitempty"` // netsapiens kind or engine reason: not_found, drift, …
	ErrMessage string      `json:"err_message,omitempty"`
	SkipReason string      `json:"skip_reason,omitempty"`

	// PriorStatus is the status before an approval request (ready or failed), to return to on Reject.
	PriorStatus Status `json:"prior_status,omitempty"`
}

// Approved reports whether the step awaits approval and a second person approved it.
func (st *StepState) Approved() bool { return st.Status == StatusAwaiting && st.ApprovedBy != "" }

// ApprovalPending reports whether the step awaits an answer that can still be given at now (an
// expired request stays stored as awaiting until it is asked again or rejected).
func (st *StepState) ApprovalPending(now time.Time) bool {
	return st.Status == StatusAwaiting && st.ApprovedBy == "" && now.Before(st.ApprovalExpires)
}

// Busy reports whether asking for the step at now can do nothing: it is running, finished or
// skipped, or it awaits an answer that can still be given (an expired request may be asked anew).
func (st *StepState) Busy(now time.Time) bool {
	switch st.Status {
	case StatusRunning, StatusDone, StatusWarnings, StatusSkipped:
		return true
	}
	return st.ApprovalPending(now)
}

// Original is the user's dial policy before the bot set the deny policy.
type Original struct {
	Policy     string    `json:"policy"`
	Known      bool      `json:"known"` // false: the user was already in the deny policy and no original was on record
	RecordedAt time.Time `json:"recorded_at,omitzero"`
	Source     string    `json:"source,omitempty"` // incident ID that recorded it
}

// DeviceSnapshot is what the bot must keep of one device to re-create it exactly: a whitelist
// of writable fields (kebab-case names as the API spells them, JSON values), never a raw API body.
// Secrets are not in Fields: the old SIP password only as an HMAC, provisioning credentials only
// sealed (AES-256-GCM under SNAPSHOT_KEY) or not at all.
type DeviceSnapshot struct {
	Device       string            `json:"device"`
	Fields       map[string]any    `json:"fields"`
	PasswordHMAC string            `json:"password_hmac,omitempty"`
	Sealed       map[string]string `json:"sealed,omitempty"` // field name → sealed value (see Sealer)
	// Unsealable lists credential fields that had a value but could not be kept (no SNAPSHOT_KEY):
	// the card tells the engineer to enter them on the phone again.
	Unsealable []string `json:"unsealable,omitempty"`
	// Phone link: the MAC entry and line the device's AOR was on, if any.
	PhoneMAC  string `json:"phone_mac,omitempty"`
	PhoneLine int    `json:"phone_line,omitempty"`
	// MACProvisioned devices pick their new credentials up from the provisioning server, so their new
	// password is not delivered to the engineer.
	MACProvisioned bool `json:"mac_provisioned,omitempty"`
	// From is the incident that took this snapshot, for a device carried over from an earlier
	// incident of the user that deleted it and never re-created it ("" = this incident). Sealed
	// values and PasswordHMAC are bound to that incident's ID (see BoundTo).
	From string `json:"from,omitempty"`
}

// BoundTo returns the incident ID that d's sealed values and password HMAC are bound to, when
// d is part of incident current's snapshot.
func (d DeviceSnapshot) BoundTo(current string) string {
	if d.From != "" {
		return d.From
	}
	return current
}

// LiveDevice is a device as last read from the PBX, for the card.
type LiveDevice struct {
	Device     string `json:"device"`
	Model      string `json:"model,omitempty"`
	MAC        string `json:"mac,omitempty"`
	Registered bool   `json:"registered"`
	UserAgent  string `json:"user_agent,omitempty"`
}

// Live is the last state read from the PBX, honestly dated.
type Live struct {
	ReadAt      time.Time    `json:"read_at"`
	DisplayName string       `json:"display_name,omitempty"`
	DialPolicy  string       `json:"dial_policy"`
	Devices     []LiveDevice `json:"devices,omitempty"`
	EmailMasked string       `json:"email_masked,omitempty"` // j•••@acme.example, never the full address
	ActiveCalls int          `json:"active_calls"`
	// Pending says Devices and ActiveCalls are not read yet: the open stored the user read alone
	// so that the card could be posted, and reads them in the background (remediate's
	// OpenRequest.CardFirst); the card shows "reading…" meanwhile.
	Pending bool `json:"pending,omitempty"`
	// ReadErr is why Devices and ActiveCalls could not be read ("" = they were, or are pending):
	// the card says so instead of showing none.
	ReadErr string `json:"read_error,omitempty"`
	// Tries counts the background re-reads of Devices and ActiveCalls since the open's (the
	// engine's maintenance pass retries a read that failed or was interrupted, a few times), and
	// TriedAt is when the last one began (zero = none).
	Tries   int       `json:"tries,omitempty"`
	TriedAt time.Time `json:"tried_at,omitzero"`
}

// Incident is one response to one compromised user, as stored.
type Incident struct {
	ID     string `json:"id"`     // INC-7K2QXM
	User   string `json:"user"`   // as the PBX returns it
	Domain string `json:"domain"` // lower-cased
	Reason string `json:"reason,omitempty"`

	OpenedBy string `json:"opened_by"`         // Slack user ID or "cli:<name>"
	Channel  string `json:"channel,omitempty"` // where the card is
	// Lockdown is the lockdown that opened this incident as a member (LCK-…): its card is the
	// lockdown's, so the incident never gets a card of its own ("" = an incident with a card).
	Lockdown  string    `json:"lockdown,omitempty"`
	MessageTS string    `json:"message_ts,omitempty"` // the card's ts (thread root for the audit)
	CreatedAt time.Time `json:"created_at"`

	State     State     `json:"state"`
	ClosedBy  string    `json:"closed_by,omitempty"`
	ClosedAt  time.Time `json:"closed_at,omitzero"`
	CloseNote string    `json:"close_note,omitempty"`

	// DenyPolicy is the policy name the deny step set (NS_DENY_POLICY at the time).
	DenyPolicy string           `json:"deny_policy,omitempty"`
	Original   *Original        `json:"original,omitempty"` // write-once per incident
	Devices    []DeviceSnapshot `json:"devices,omitempty"`  // write-once per incident
	// DevicesAt is when Devices was recorded (zero: not yet; a user with no devices has a time and no Devices).
	DevicesAt time.Time `json:"devices_at,omitzero"`
	// Kept lists the devices an earlier incident of the user deleted and never re-created, as
	// the store kept them for the user (Store.UserDevices) when this incident opened: the card
	// shows them, and recreate re-creates those still missing from the PBX.
	Kept     []DeviceSnapshot         `json:"kept,omitempty"`
	Steps    map[Step]*StepState      `json:"steps"`
	Live     *Live                    `json:"live,omitempty"`
	Delivery map[string]DeliveryState `json:"delivery,omitempty"` // secret delivery per device/"pin"
	// EmailAtOpen is the masked e-mail address when the incident was opened (reset shows if it changed).
	EmailAtOpen string `json:"email_at_open,omitempty"`
	// Evidence is the latest fraud evidence read (at open, then at containment; evidence.go).
	Evidence *Evidence `json:"evidence,omitempty"`
	// Gate is the restore gate as last checked (evidence.go).
	Gate *Gate `json:"gate,omitempty"`

	// Version increases with every stored change; renders of an older version never overwrite a newer card.
	Version int64 `json:"version"`
	// RemindedAt is the last reminder posted while the user stays in the deny policy.
	RemindedAt time.Time `json:"reminded_at,omitzero"`
}

// DeliveryState says whether a secret reached the engineer (an ephemeral message can fail).
type DeliveryState struct {
	Delivered bool      `json:"delivered"`
	At        time.Time `json:"at,omitzero"`
	Error     string    `json:"error,omitempty"`
}

// Key returns the canonical user@domain of the incident.
func (i *Incident) Key() string { return i.User + "@" + i.Domain }

// Step returns the state of one step (never nil for a stored incident).
func (i *Incident) Step(s Step) *StepState {
	if st, ok := i.Steps[s]; ok && st != nil {
		return st
	}
	return &StepState{Step: s, Status: StatusReady}
}

// Open reports whether the incident is still open.
func (i *Incident) Open() bool { return i.State == StateOpen }

// AuditEntry is one line of the append-only audit stream of an incident (and of the global stream).
type AuditEntry struct {
	Seq        int64  `json:"seq"`
	IncidentID string `json:"incident_id,omitempty"`
	// IncidentSeq, in the global chain, is the entry's Seq in its incident's chain (0: a global-only entry).
	IncidentSeq int64     `json:"incident_seq,omitempty"`
	At          time.Time `json:"at"`
	Actor       string    `json:"actor"`          // Slack user ID, "cli:<name>", or "bot"
	Action      string    `json:"action"`         // e.g. "step.deny.done", "approval.requested", "refused.unauthorized"
	Step        Step      `json:"step,omitempty"` // when the event is about a step
	Before      string    `json:"before,omitempty"`
	After       string    `json:"after,omitempty"`
	Detail      string    `json:"detail,omitempty"` // plain words; never a secret
	PrevMAC     string    `json:"prev_mac"`         // the previous entry's MAC ("" for the first)
	MAC         string    `json:"mac"`              // HMAC-SHA256 (AUDIT_KEY) or SHA-256 over the entry and PrevMAC
}
