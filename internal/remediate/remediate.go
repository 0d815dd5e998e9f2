// Package remediate is the runbook engine: the four steps of the provider procedure (deny,
// recreate, reset, restore) as idempotent, resumable operations over two small interfaces, a
// PBX and a store.
//
// The guarantees it exists for: the original dial permission and the device settings are
// written to the store before the first PBX write that would destroy them (write-ahead); every
// step run goes through an atomic ready → running transition with a fenced lease, so no step
// runs twice and a runner that lost its lease stops before its next PBX write; every write is
// read back (verify after write) and a step result says what was verified, not what was
// attempted; a runner that died is picked up by Reconcile from its recorded progress. Secrets
// (new SIP passwords, the voicemail PIN) only ever travel in the returned Result.
package remediate

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/evidence"
	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// PBX is the part of the NetSapiens client (*netsapiens.Client) the engine calls.
type PBX interface {
	GetUser(ctx context.Context, domain, user string) (netsapiens.User, error)
	UpdateUser(ctx context.Context, domain, user string, u netsapiens.UserUpdate) error
	GetDialPolicy(ctx context.Context, domain, name string) (netsapiens.DialPolicy, error)
	ListDialPolicies(ctx context.Context, domain string) ([]netsapiens.DialPolicy, error)
	// The deny policy cache reads a domain's own policy and the system-level one apart
	// (policycache.go): the system's is the same for every domain.
	GetDomainDialPolicy(ctx context.Context, domain, name string) (netsapiens.DialPolicy, error)
	GetSystemDialPolicy(ctx context.Context, name string) (netsapiens.DialPolicy, error)
	ListDomainDialPolicyPermissions(ctx context.Context, domain, name string) ([]netsapiens.Permission, error)
	ListSystemDialPolicyPermissions(ctx context.Context, name string) ([]netsapiens.Permission, error)
	ListDevices(ctx context.Context, domain, user string) ([]netsapiens.Device, error)
	GetDevice(ctx context.Context, domain, user, device string) (netsapiens.Device, error)
	CreateDevice(ctx context.Context, domain, user string, d netsapiens.Device) (netsapiens.Device, error)
	UpdateDevice(ctx context.Context, domain, user, device string, d netsapiens.Device) error
	DeleteDevice(ctx context.Context, domain, user, device string) error
	ListPhones(ctx context.Context, domain string) ([]netsapiens.Phone, error)
	UpdatePhone(ctx context.Context, domain string, p netsapiens.Phone) error
	RevokeJWT(ctx context.Context, domain, user string) error
	SendEmail(ctx context.Context, domain, user, template, subject string) error
	ListCalls(ctx context.Context, domain, user string) ([]netsapiens.ActiveCall, error)
	EndCall(ctx context.Context, domain, user, callID string) error
	ListCDRs(ctx context.Context, domain, user string, from, to time.Time, limit int) ([]netsapiens.CDR, error)
	SetPortalPassword(ctx context.Context, domain, user string, pwd netsapiens.Secret) error
}

// Store is the part of the incident store (*session.Store) the engine calls. A running step's
// writes go through the Lease that Begin and TakeOver hand out, not through the store.
type Store interface {
	Open(ctx context.Context, inc session.Incident) (session.Incident, bool, error)
	Get(ctx context.Context, id string) (session.Incident, error)
	Update(ctx context.Context, id string, fn func(*session.Incident) error) (session.Incident, error)
	Discard(ctx context.Context, id string) error
	CloseKeeping(ctx context.Context, id string, state session.State, by, note string, keep session.KeepFunc) (session.Incident, error)
	ListOpen(ctx context.Context) ([]session.Incident, error)
	UserOriginal(ctx context.Context, user, domain string) (session.Original, bool, error)
	UserDevices(ctx context.Context, user, domain string) ([]session.DeviceSnapshot, error)
	DenyPolicies(ctx context.Context, user, domain string) ([]string, error)
	Append(ctx context.Context, e session.AuditEntry) (session.AuditEntry, error)

	Begin(ctx context.Context, id string, step session.Step, opt session.BeginOptions) (*session.Run, session.Incident, error)
	ExpiredLeases(ctx context.Context) ([]session.Lease, error)
	TakeOver(ctx context.Context, stale session.Lease, owner string, ttl time.Duration) (*session.Run, error)

	RequestApproval(ctx context.Context, id string, step session.Step, by string, ttl time.Duration, force bool) (session.Incident, error)
	Approve(ctx context.Context, id string, step session.Step, by string) (session.Incident, error)
	Reject(ctx context.Context, id string, step session.Step, by string) (session.Incident, error)
}

// Lease is one runner's hold on its running step (*session.Run): every write a step makes to
// the store goes through it, fenced, and CheckFence comes before every PBX write.
type Lease interface {
	Lease() session.Lease
	CheckFence(ctx context.Context) error
	Renew(ctx context.Context) error
	Progress(ctx context.Context, key, value string) (session.Incident, error)
	// Record, Finish, Fail and SaveOriginal write the audit lines they are given with the record
	// they describe, in one write (session.Lines).
	Record(ctx context.Context, key, value string, lines session.Lines) (session.Incident, error)
	Finish(ctx context.Context, status session.Status, summary string, subs []session.SubResult, lines session.Lines) (session.Incident, error)
	Fail(ctx context.Context, kind Kind, msg string, lines session.Lines) (session.Incident, error)
	SaveOriginal(ctx context.Context, o session.Original, denyPolicy string, lines session.Lines) (session.Incident, error)
	SaveDevices(ctx context.Context, devs []session.DeviceSnapshot) (session.Incident, error)
	// Replicated waits until the replicas hold the incident's writes so far: before the PBX write
	// a write-ahead record protects, when a retry finds the record stored already.
	Replicated(ctx context.Context) error
}

// Keyring seals the credentials a device snapshot keeps and makes HMACs of old secrets
// (*session.Keyring: no Redis, built from SNAPSHOT_KEY and AUDIT_KEY).
type Keyring interface {
	Seal(incidentID, field, plaintext string) (string, error)
	Unseal(incidentID, field, sealed string) (string, error)
	SecretHMAC(incidentID, field, value string) string
	SecretMatches(incidentID, field, value, mac string) (bool, error)
}

// Notifier is told after every stored change of an incident, so the Slack layer can re-render
// the card and post the new audit lines. It must not block for long.
type Notifier interface {
	Changed(ctx context.Context, incidentID string)
}

// Defaults for the zero values of Config.
const (
	// DefaultDenyPolicy is the dial policy that blocks all calls (NS_DENY_POLICY's default).
	DefaultDenyPolicy  = "Deny All"
	DefaultPINLength   = 6
	DefaultApprovalTTL = time.Hour
	// DefaultLeaseTTL is a running step's lease, renewed while it runs: short, so that a step
	// whose process died is resumed within 10 s (lease + reconcile period).
	DefaultLeaseTTL = 5 * time.Second
	// DefaultEmailSubject is the reset email's subject (NS_RESET_EMAIL_SUBJECT's default).
	DefaultEmailSubject = "Your voice account password must be reset"
	// maxResumes bounds how often Reconcile takes over one step run whose runners keep dying,
	// so that a step that crashes its runner is failed with a reason instead of looping.
	maxResumes = 5
)

// Config configures an Engine. The zero value of every field has a default, except Owner
// (which also defaults, to "remediate").
type Config struct {
	DenyPolicy         string // NS_DENY_POLICY; "" = DefaultDenyPolicy
	PINLength          int    // PIN_LENGTH; 0 = 6; must be 4–12
	ResetEmailTemplate string // NS_RESET_EMAIL_TEMPLATE; "" = no reset email
	ResetEmailSubject  string // NS_RESET_EMAIL_SUBJECT; "" = DefaultEmailSubject
	// ApprovalSteps lists the steps that need a second person's approval (APPROVAL_STEPS).
	ApprovalSteps []session.Step
	ApprovalTTL   time.Duration // APPROVAL_TTL; 0 = 1h
	LeaseTTL      time.Duration // a running step's lease, renewed while it runs; 0 = DefaultLeaseTTL
	// PolicyTTL is how long deny trusts what it read of the deny policy in a domain (that it
	// exists, its permit rules); 0 = DefaultPolicyTTL.
	PolicyTTL time.Duration
	Owner     string // this replica's name in leases, e.g. hostname+pid
	Logger    zerolog.Logger
	Now       func() time.Time // nil = time.Now
	Notifier  Notifier         // may be nil
	// Keys seals snapshot credentials and compares old secrets; nil = no keys (nothing sealed,
	// old and new secrets compared in memory only).
	Keys     Keyring
	Observer Observer // may be nil
	// RepairEvery is how often, across replicas, Reconcile repairs the store's indexes;
	// 0 = DefaultRepairEvery.
	RepairEvery time.Duration
	// Evidence is the rate table of the fraud evidence read at open and at containment
	// (evidence.go); nil = no evidence reads.
	Evidence *evidence.Rates
	// RestoreGate holds restore until the restore gate is met, or the restore is asked to go
	// over it (gate.go; RESTORE_GATE). It needs Evidence.
	RestoreGate bool
	// PortalPassword: reset sets a random portal password through the v1 API
	// (NS_V1_PORTAL_PASSWORD), delivered like the PIN; off, the card says to reset it in the
	// Manager Portal.
	PortalPassword bool
}

// Engine runs the runbook. It is safe for concurrent use; several Engines (replicas) may
// share one store.
type Engine struct {
	pbx   PBX
	store Store
	cfg   Config
	log   zerolog.Logger
	now   func() time.Time
	// policies keeps the deny policy's existence and rules per domain (policycache.go).
	policies *policyCache

	// hook, set only by tests (export_test.go), is called before (after=false) and after
	// (after=true) every PBX write; an error stops the runner there as if its process died.
	hook func(step session.Step, op string, after bool) error
	// renewEvery overrides the lease renewal interval (tests); 0 = LeaseTTL/3.
	renewEvery time.Duration
	// dry is set on the copy of the Engine that Plan runs the steps with: no audit line, no
	// notification (the dry run leaves the store as it was).
	dry bool
	// bg counts the background evidence reads (evidence.go), for Wait; a pointer, so that the
	// dry run's copy of the Engine shares it.
	bg *sync.WaitGroup
	// fills holds the background reads (the opens' devices and live calls, the evidence, the
	// restore gate) waiting for one of a few goroutines (openfill.go); a pointer, shared like bg.
	fills *fillQueue
	// follows holds the deny runs continued after "contained" (RunOptions.Continue), shared
	// like bg.
	follows *fillQueue
}

// New returns an Engine. Errors: ErrInvalid (wrapped) for a nil PBX or store, a PIN length
// outside 4–12, a deny policy name the API would refuse, or an unknown approval step.
func New(pbx PBX, store Store, cfg Config) (*Engine, error) {
	if pbx == nil || store == nil {
		return nil, fmt.Errorf("remediate: pbx and store are required: %w", ErrInvalid)
	}
	if cfg.DenyPolicy == "" {
		cfg.DenyPolicy = DefaultDenyPolicy
	}
	if err := netsapiens.ValidatePolicyName(cfg.DenyPolicy); err != nil {
		return nil, fmt.Errorf("remediate: deny policy: %w: %w", ErrInvalid, err)
	}
	if cfg.PINLength == 0 {
		cfg.PINLength = DefaultPINLength
	}
	if cfg.PINLength < 4 || cfg.PINLength > 12 {
		return nil, fmt.Errorf("remediate: PIN length %d is not 4–12: %w", cfg.PINLength, ErrInvalid)
	}
	if cfg.ResetEmailSubject == "" {
		cfg.ResetEmailSubject = DefaultEmailSubject
	}
	for _, s := range cfg.ApprovalSteps {
		if _, ok := Def(s); !ok {
			return nil, fmt.Errorf("remediate: approval step %q: %w", s, ErrInvalid)
		}
	}
	if cfg.ApprovalTTL <= 0 {
		cfg.ApprovalTTL = DefaultApprovalTTL
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.RepairEvery <= 0 {
		cfg.RepairEvery = DefaultRepairEvery
	}
	if cfg.PolicyTTL <= 0 {
		cfg.PolicyTTL = DefaultPolicyTTL
	}
	if cfg.Owner == "" {
		cfg.Owner = "remediate"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Keys == nil {
		none, err := session.NewKeyring(nil, nil)
		if err != nil {
			return nil, fmt.Errorf("remediate: keyring: %w", err)
		}
		cfg.Keys = none
	}
	return &Engine{pbx: pbx, store: store, cfg: cfg, log: cfg.Logger, now: cfg.Now,
		policies: newPolicyCache(cfg.PolicyTTL, cfg.Now), bg: &sync.WaitGroup{}, fills: &fillQueue{},
		follows: &fillQueue{limit: followWorkers}}, nil
}

// needsApproval reports whether step is in Config.ApprovalSteps.
func (e *Engine) needsApproval(step session.Step) bool {
	return slices.Contains(e.cfg.ApprovalSteps, step)
}

// notify tells the Notifier, if any, that the incident changed.
func (e *Engine) notify(ctx context.Context, id string) {
	if e.cfg.Notifier != nil && id != "" && !e.dry {
		e.cfg.Notifier.Changed(ctx, id)
	}
}

// audit appends one entry to the incident's audit chain. A failed append is logged, not
// returned: the PBX change it describes has happened and must still be reported to the caller.
func (e *Engine) audit(ctx context.Context, id, actor, action string, step session.Step, before, after, detail string) {
	if e.dry {
		return
	}
	if actor == "" {
		actor = "bot"
	}
	_, err := e.store.Append(ctx, session.AuditEntry{IncidentID: id, Actor: actor, Action: action, Step: step,
		Before: before, After: after, Detail: detail})
	if err != nil {
		e.log.Warn().Err(err).Str("incident", id).Str("action", action).Msg("append audit entry")
	}
}
