package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// bundle is the evidence of one incident, as exported. Every record is built from a whitelist
// of fields (never the stored JSON as is), so nothing the store keeps for the engine's own use
// (leases, progress, sealed values) leaks into the export.
type bundle struct {
	head     bundleRecord
	incident incidentRecord
	original *originalRecord
	devices  []deviceRecord
	steps    []stepRecord
	evidence *evidenceRecord
	changes  []auditRecord
	audit    []auditRecord
	verify   *verifyRecord
}

type bundleRecord struct {
	Type       string    `json:"type"` // "bundle"
	Incident   string    `json:"incident"`
	ExportedAt time.Time `json:"exported_at"`
	ChainMAC   string    `json:"chain_mac"` // how the chain is linked
}

type incidentRecord struct {
	Type        string    `json:"type"` // "incident"
	ID          string    `json:"id"`
	User        string    `json:"user"`
	Domain      string    `json:"domain"`
	Reason      string    `json:"reason,omitempty"`
	State       string    `json:"state"`
	OpenedBy    string    `json:"opened_by"`
	CreatedAt   time.Time `json:"created_at"`
	Channel     string    `json:"channel,omitempty"`
	MessageTS   string    `json:"message_ts,omitempty"`
	ClosedBy    string    `json:"closed_by,omitempty"`
	ClosedAt    time.Time `json:"closed_at,omitzero"`
	CloseNote   string    `json:"close_note,omitempty"`
	DenyPolicy  string    `json:"deny_policy,omitempty"`
	EmailAtOpen string    `json:"email_at_open,omitempty"` // masked
}

type originalRecord struct {
	Type       string    `json:"type"` // "original"
	Policy     string    `json:"policy"`
	Known      bool      `json:"known"`
	RecordedAt time.Time `json:"recorded_at,omitzero"`
	Source     string    `json:"source,omitempty"`
}

type deviceRecord struct {
	Type           string         `json:"type"` // "device"
	Device         string         `json:"device"`
	RecordedAt     time.Time      `json:"recorded_at,omitzero"`
	Fields         map[string]any `json:"fields"`
	PhoneMAC       string         `json:"phone_mac,omitempty"`
	PhoneLine      int            `json:"phone_line,omitempty"`
	MACProvisioned bool           `json:"mac_provisioned,omitempty"`
	// What the snapshot keeps of credentials, by name only: never a value, sealed or not.
	OldPasswordHMAC bool     `json:"old_password_hmac_kept"`
	SealedFields    []string `json:"sealed_fields,omitempty"`
	NotKept         []string `json:"not_kept,omitempty"`
}

// stepRecord is the bundle's view of a session.StepState. It repeats the store's field list on
// purpose: the bundle is an evidence format with its own stability, and it leaves out the runtime
// state (lease owner, fence, progress) that means nothing to an auditor.
type stepRecord struct {
	Type        string              `json:"type"` // "step"
	Step        string              `json:"step"`
	Status      string              `json:"status"`
	Attempts    int                 `json:"attempts,omitempty"`
	RequestedBy string              `json:"requested_by,omitempty"`
	RequestedAt time.Time           `json:"requested_at,omitzero"`
	ApprovedBy  string              `json:"approved_by,omitempty"`
	ApprovedAt  time.Time           `json:"approved_at,omitzero"`
	RejectedBy  string              `json:"rejected_by,omitempty"`
	RejectedAt  time.Time           `json:"rejected_at,omitzero"`
	Force       bool                `json:"force,omitempty"`
	StartedAt   time.Time           `json:"started_at,omitzero"`
	FinishedAt  time.Time           `json:"finished_at,omitzero"`
	Summary     string              `json:"summary,omitempty"`
	SubResults  []session.SubResult `json:"sub_results,omitempty"`
	ErrKind     string              `json:"err_kind,omitempty"`
	ErrMessage  string              `json:"err_message,omitempty"`
	SkipReason  string              `json:"skip_reason,omitempty"`
}

type auditRecord struct {
	Type    string    `json:"type"` // "audit" (every entry) or "change" (a PBX change)
	Seq     int64     `json:"seq"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Action  string    `json:"action"`
	Step    string    `json:"step,omitempty"`
	Before  string    `json:"before,omitempty"`
	After   string    `json:"after,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	PrevMAC string    `json:"prev_mac,omitempty"` // the chain link (audit records only)
	MAC     string    `json:"mac,omitempty"`
}

type verifyRecord struct {
	Type     string `json:"type"` // "verify"
	Chain    string `json:"chain"`
	OK       bool   `json:"ok"`
	Entries  int    `json:"entries"`
	FirstBad int64  `json:"first_bad_entry,omitempty"`
	Error    string `json:"error,omitempty"`
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// collectBundle reads an incident and its audit chain.
func collectBundle(ctx context.Context, store *session.Store, id string, keyed bool) (*bundle, error) {
	inc, err := store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	entries, err := store.Audit(ctx, inc.ID)
	if err != nil {
		return nil, err
	}
	mac := "SHA-256 (no AUDIT_KEY: detects edits, not a forger with Redis access)"
	if keyed {
		mac = "HMAC-SHA256 (AUDIT_KEY)"
	}
	b := &bundle{
		head: bundleRecord{Type: "bundle", Incident: inc.ID, ExportedAt: time.Now().UTC(), ChainMAC: mac},
		incident: incidentRecord{Type: "incident", ID: inc.ID, User: inc.User, Domain: inc.Domain, Reason: inc.Reason,
			State: string(inc.State), OpenedBy: inc.OpenedBy, CreatedAt: utc(inc.CreatedAt), Channel: inc.Channel,
			MessageTS: inc.MessageTS, ClosedBy: inc.ClosedBy, ClosedAt: utc(inc.ClosedAt), CloseNote: inc.CloseNote,
			DenyPolicy: inc.DenyPolicy, EmailAtOpen: inc.EmailAtOpen},
	}
	if o := inc.Original; o != nil {
		b.original = &originalRecord{Type: "original", Policy: o.Policy, Known: o.Known, RecordedAt: utc(o.RecordedAt), Source: o.Source}
	}
	for _, d := range inc.Devices {
		r := deviceRecord{Type: "device", Device: d.Device, RecordedAt: utc(inc.DevicesAt), Fields: d.Fields,
			PhoneMAC: d.PhoneMAC, PhoneLine: d.PhoneLine, MACProvisioned: d.MACProvisioned,
			OldPasswordHMAC: d.PasswordHMAC != "", NotKept: d.Unsealable}
		for f := range d.Sealed {
			r.SealedFields = append(r.SealedFields, f)
		}
		sort.Strings(r.SealedFields)
		b.devices = append(b.devices, r)
	}
	for _, s := range session.Steps {
		st := inc.Step(s)
		b.steps = append(b.steps, stepRecord{Type: "step", Step: string(s), Status: string(st.Status), Attempts: st.Attempts,
			RequestedBy: st.RequestedBy, RequestedAt: utc(st.RequestedAt), ApprovedBy: st.ApprovedBy, ApprovedAt: utc(st.ApprovedAt),
			RejectedBy: st.RejectedBy, RejectedAt: utc(st.RejectedAt), Force: st.Force, StartedAt: utc(st.StartedAt),
			FinishedAt: utc(st.FinishedAt), Summary: st.Summary, SubResults: st.SubResults, ErrKind: string(st.ErrKind),
			ErrMessage: st.ErrMessage, SkipReason: st.SkipReason})
	}
	b.evidence = newEvidenceRecord(inc)
	for _, e := range entries {
		r := auditRecord{Type: "audit", Seq: e.Seq, At: utc(e.At), Actor: e.Actor, Action: e.Action, Step: string(e.Step),
			Before: e.Before, After: e.After, Detail: e.Detail, PrevMAC: e.PrevMAC, MAC: e.MAC}
		b.audit = append(b.audit, r)
		if pbxChange(e) {
			c := r
			c.Type, c.PrevMAC, c.MAC = "change", "", ""
			b.changes = append(b.changes, c)
		}
	}
	return b, nil
}

// notPBXWrite are the sub-actions of a step's audit entries that record the step's life or a
// write-ahead record in Redis, not a change on the PBX. Any other "step.<step>.<what>" entry is
// a PBX change (so a change the engine learns to make later is listed without a change here).
var notPBXWrite = map[string]bool{
	"started": true, "done": true, "warnings": true, "failed": true, "resumed": true,
	"original": true, "snapshot": true, "target": true,
}

// pbxChange reports whether an audit entry records a change made on the PBX.
func pbxChange(e session.AuditEntry) bool {
	if e.Action == "credentials.rotated" {
		return true
	}
	rest, ok := strings.CutPrefix(e.Action, "step.")
	if !ok {
		return false
	}
	_, what, ok := strings.Cut(rest, ".")
	return ok && !notPBXWrite[what]
}

func (b *bundle) writeJSONL(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	recs := []any{b.head, b.incident}
	if b.original != nil {
		recs = append(recs, b.original)
	}
	for _, d := range b.devices {
		recs = append(recs, d)
	}
	for _, s := range b.steps {
		recs = append(recs, s)
	}
	if b.evidence != nil {
		recs = append(recs, b.evidence)
	}
	for _, c := range b.changes {
		recs = append(recs, c)
	}
	for _, a := range b.audit {
		recs = append(recs, a)
	}
	if b.verify != nil {
		recs = append(recs, b.verify)
	}
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// ts formats a time for the text bundle: UTC, milliseconds, "—" when unset.
func ts(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func (b *bundle) writeText(w io.Writer) error {
	var sb strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&sb, format+"\n", a...) }
	i := b.incident
	p("Evidence bundle %s · %s@%s · exported %s (all times UTC)", i.ID, i.User, i.Domain, ts(b.head.ExportedAt))
	p("\nIncident")
	p("  state        %s", i.State)
	p("  opened       %s by %s", ts(i.CreatedAt), i.OpenedBy)
	if i.Reason != "" {
		p("  reason       %s", i.Reason)
	}
	if i.Channel != "" {
		card := "not posted yet"
		if i.MessageTS != "" {
			card = "message " + i.MessageTS
		}
		p("  card         channel %s, %s", i.Channel, card)
	}
	if i.ClosedBy != "" || !i.ClosedAt.IsZero() {
		note := ""
		if i.CloseNote != "" {
			note = " · " + i.CloseNote
		}
		p("  closed       %s by %s%s", ts(i.ClosedAt), i.ClosedBy, note)
	}
	if i.DenyPolicy != "" {
		p("  deny policy  %s", i.DenyPolicy)
	}
	if i.EmailAtOpen != "" {
		p("  e-mail       %s (masked, at open)", i.EmailAtOpen)
	}

	p("\nSnapshots (written before the first PBX change; secrets are never exported)")
	if o := b.original; o != nil {
		known := "known"
		if !o.Known {
			known = "UNKNOWN (the user was already denied)"
		}
		p("  original dial permission  %q, %s, recorded %s by %s", o.Policy, known, ts(o.RecordedAt), orNone(o.Source))
	} else {
		p("  original dial permission  not recorded (deny did not run)")
	}
	if len(b.devices) == 0 {
		p("  devices                   none recorded")
	}
	for _, d := range b.devices {
		p("  device %s (recorded %s)", d.Device, ts(d.RecordedAt))
		keys := make([]string, 0, len(d.Fields))
		for k := range d.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, _ := json.Marshal(d.Fields[k])
			p("      %s = %s", k, v)
		}
		if d.PhoneMAC != "" {
			p("      phone %s line %d", d.PhoneMAC, d.PhoneLine)
		}
		if d.MACProvisioned {
			p("      MAC-provisioned (picks its new credentials up from the provisioning server)")
		}
		creds := "old SIP password: "
		if d.OldPasswordHMAC {
			creds += "HMAC only (not exported)"
		} else {
			creds += "not kept"
		}
		if len(d.SealedFields) > 0 {
			creds += " · sealed with SNAPSHOT_KEY (not exported): " + strings.Join(d.SealedFields, ", ")
		}
		if len(d.NotKept) > 0 {
			creds += " · not kept (no SNAPSHOT_KEY): " + strings.Join(d.NotKept, ", ")
		}
		p("      %s", creds)
	}

	p("\nSteps")
	for _, s := range b.steps {
		line := fmt.Sprintf("  %-9s %s", s.Step, s.Status)
		if s.Attempts > 0 {
			line += fmt.Sprintf(" · %d attempt(s)", s.Attempts)
		}
		if s.Summary != "" {
			line += " · " + s.Summary
		}
		p("%s", line)
		if s.RequestedBy != "" {
			p("            requested %s by %s", ts(s.RequestedAt), s.RequestedBy)
		}
		if s.ApprovedBy != "" {
			p("            approved  %s by %s", ts(s.ApprovedAt), s.ApprovedBy)
		}
		if s.RejectedBy != "" {
			p("            rejected  %s by %s", ts(s.RejectedAt), s.RejectedBy)
		}
		if s.Force {
			p("            forced over a drifted dial permission")
		}
		if !s.StartedAt.IsZero() {
			p("            ran       %s → %s", ts(s.StartedAt), ts(s.FinishedAt))
		}
		for _, sub := range s.SubResults {
			p("            %s [%s] %s", sub.Name, strings.ReplaceAll(string(sub.Outcome), "_", " "), sub.Detail)
		}
		if s.ErrKind != "" {
			p("            error (%s): %s", s.ErrKind, s.ErrMessage)
		}
		if s.SkipReason != "" {
			p("            skipped: %s", s.SkipReason)
		}
	}

	for _, l := range b.evidence.text() {
		p("%s", l)
	}

	p("\nPBX changes (before → after)")
	if len(b.changes) == 0 {
		p("  none")
	}
	for _, c := range b.changes {
		p("  #%-3d %s %s %s: %s → %s%s", c.Seq, ts(c.At), c.Actor, c.Action, orNone(c.Before), orNone(c.After), detail(c.Detail))
	}

	p("\nAudit chain (%d entries, %s)", len(b.audit), b.head.ChainMAC)
	for _, a := range b.audit {
		change := ""
		if a.Before != "" || a.After != "" {
			change = fmt.Sprintf(" (%s → %s)", orNone(a.Before), orNone(a.After))
		}
		p("  #%-3d %s %s %s%s%s", a.Seq, ts(a.At), a.Actor, a.Action, change, detail(a.Detail))
		p("        prev %s", orNone(a.PrevMAC))
		p("        mac  %s", a.MAC)
	}
	if v := b.verify; v != nil {
		if v.OK {
			p("\nVerification: the chain verifies (%d entries, every link and MAC recomputed, head matches)", v.Entries)
		} else {
			p("\nVerification: FAILED: %s", v.Error)
		}
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func orNone(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func detail(s string) string {
	if s == "" {
		return ""
	}
	return " · " + s
}
