package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
)

// A lockdown is many users handled on one card: each member is a full incident of its own (its
// own INC-…, snapshot, write-ahead, audit), and the lockdown record only lists the members and
// the fan-outs run over them (which step, by whom, how far), with the lines its card's thread
// shows. It is stored under its own hash tag ({LCK-…}); no script touches a lockdown and a
// member incident together.

// LockdownScope says how the members were named.
type LockdownScope string

// The scopes: every user of a domain, or a list of addresses.
const (
	ScopeDomain LockdownScope = "domain"
	ScopeUsers  LockdownScope = "users"
)

// MaxLockdownMembers bounds a lockdown (the card, the record and a fan-out stay small enough).
const MaxLockdownMembers = 500

// maxLockdownLines bounds the thread lines a lockdown record keeps (the oldest are dropped; the
// global audit chain has every one).
const maxLockdownLines = 200

// Member is one user of a lockdown and the incident that handles them.
type Member struct {
	User   string `json:"user"`
	Domain string `json:"domain"`
	// IncidentID is the member's incident ("" until it is opened).
	IncidentID string `json:"incident_id,omitempty"`
	// Joined: the user already had an open incident, which joined the lockdown.
	Joined bool `json:"joined,omitempty"`
}

// Key is the member's user@domain.
func (m Member) Key() string { return m.User + "@" + m.Domain }

// LockdownRun is one fan-out over the members: a step (or an approval answer, a retry, an
// abort) asked once for all of them. Its lease works like a step's: the replica that holds it
// renews it while it runs; Reconcile takes over a run whose lease expired and finishes it (each
// member's own step is exactly once anyway, so a member already handled is skipped).
type LockdownRun struct {
	Seq        int       `json:"seq"`
	Kind       string    `json:"kind"` // "step", "approve", "reject", "retry", "abort"
	Step       Step      `json:"step,omitempty"`
	Actor      string    `json:"actor"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Owner      string    `json:"owner,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	// Confirm carries the abort's confirmation of devices missing (the dialog's token).
	Confirm string `json:"confirm,omitempty"`
	// Counts, when the run ended: outcome → members.
	Counts map[string]int `json:"counts,omitempty"`
}

// Done reports whether the run has ended.
func (r *LockdownRun) Done() bool { return !r.FinishedAt.IsZero() }

// LockdownLine is one line of the lockdown's thread (one per batch, never one per user).
type LockdownLine struct {
	Seq   int64     `json:"seq"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor,omitempty"` // who the line is about (Slack user ID, "cli:…", "bot")
	Text  string    `json:"text"`            // plain words (Slack markup is the renderer's)
	// Page, when set, is an approval request: the thread line notifies the approvers.
	Page bool `json:"page,omitempty"`
}

// Lockdown is the stored record of one lockdown.
type Lockdown struct {
	ID        string        `json:"id"` // LCK-7K2QXM
	Scope     LockdownScope `json:"scope"`
	Domain    string        `json:"domain,omitempty"` // ScopeDomain: the domain
	Reason    string        `json:"reason,omitempty"`
	OpenedBy  string        `json:"opened_by"`
	Channel   string        `json:"channel,omitempty"`
	MessageTS string        `json:"message_ts,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	State     State         `json:"state"`
	ClosedAt  time.Time     `json:"closed_at,omitzero"`

	Members []Member       `json:"members"`
	Runs    []*LockdownRun `json:"runs,omitempty"`
	Lines   []LockdownLine `json:"lines,omitempty"`
	// LineSeq is the seq of the newest line ever added (lines are dropped oldest first).
	LineSeq int64 `json:"line_seq,omitempty"`
	Version int64 `json:"version"`
}

// Open reports whether the lockdown is open.
func (l Lockdown) Open() bool { return l.State == StateOpen }

// LastRun is the newest fan-out (nil before the first).
func (l Lockdown) LastRun() *LockdownRun {
	if len(l.Runs) == 0 {
		return nil
	}
	return l.Runs[len(l.Runs)-1]
}

// AddLine appends a thread line (bounded: the oldest lines go first).
func (l *Lockdown) AddLine(at time.Time, actor, text string, page bool) {
	l.LineSeq++
	l.Lines = append(l.Lines, LockdownLine{Seq: l.LineSeq, At: at.UTC(), Actor: actor, Text: text, Page: page})
	if len(l.Lines) > maxLockdownLines {
		l.Lines = append([]LockdownLine(nil), l.Lines[len(l.Lines)-maxLockdownLines:]...)
	}
}

// OpenLockdown stores a new lockdown (ID, CreatedAt, State open and Version 1 filled in) and adds
// it to the open set. Errors: ErrInvalid (no members, more than MaxLockdownMembers, a bad member
// or ID).
func (s *Store) OpenLockdown(ctx context.Context, l Lockdown) (Lockdown, error) {
	if len(l.Members) == 0 || len(l.Members) > MaxLockdownMembers {
		return Lockdown{}, fmt.Errorf("lockdown of %d users (1–%d): %w", len(l.Members), MaxLockdownMembers, ErrInvalid)
	}
	for i, m := range l.Members {
		user, domain, err := canon(m.User, m.Domain)
		if err != nil {
			return Lockdown{}, err
		}
		l.Members[i].User, l.Members[i].Domain = user, domain
	}
	l.CreatedAt, l.State, l.Version = s.nowUTC(), StateOpen, 1
	for attempt := 0; attempt < 8; attempt++ {
		if l.ID == "" || attempt > 0 {
			id, err := NewLockdownID()
			if err != nil {
				return Lockdown{}, err
			}
			l.ID = id
		}
		data, err := json.Marshal(l)
		if err != nil {
			return Lockdown{}, fmt.Errorf("encode lockdown: %w", err)
		}
		n, err := lockdownCASScript.Run(ctx, s.rdb, []string{s.k.lockdown(l.ID)}, 0, 1, data, 0, writeToken()).Int()
		if err != nil {
			return Lockdown{}, fmt.Errorf("store lockdown: %w", err)
		}
		if n != 1 {
			continue // the random ID is taken
		}
		if err := s.rdb.SAdd(ctx, s.k.lockdownsOpen(), l.ID).Err(); err != nil {
			// Reconcile would not find it; the caller discards it rather than leave it unresumable.
			return l, fmt.Errorf("index lockdown %s: %w", l.ID, err)
		}
		return l, nil
	}
	return Lockdown{}, fmt.Errorf("store lockdown: %w", ErrConflict)
}

// GetLockdown reads a lockdown by ID (any case). Errors: ErrNotFound (also a malformed ID).
func (s *Store) GetLockdown(ctx context.Context, rawID string) (Lockdown, error) {
	id, ok := NormalizeLockdownID(rawID)
	if !ok {
		return Lockdown{}, fmt.Errorf("lockdown %q: %w", rawID, ErrNotFound)
	}
	data, err := s.rdb.HGet(ctx, s.k.lockdown(id), "data").Result()
	if errors.Is(err, redis.Nil) {
		return Lockdown{}, fmt.Errorf("lockdown %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Lockdown{}, fmt.Errorf("read lockdown %s: %w", id, err)
	}
	return decodeLockdown(id, data)
}

func decodeLockdown(id, data string) (Lockdown, error) {
	var l Lockdown
	if err := json.Unmarshal([]byte(data), &l); err != nil {
		return Lockdown{}, fmt.Errorf("decode lockdown %s: %w: %w", id, ErrUndecodable, err)
	}
	return l, nil
}

// UpdateLockdown changes a lockdown with fn under compare-and-set on its version (fn may run
// several times when writers race; errNoChange-like: fn returning ErrNoLockdownChange ends
// without a write). fn must not change the ID. Closing (State not open) sets the retention TTL
// and leaves the open set. Errors: ErrNotFound, ErrConflict, fn's error.
func (s *Store) UpdateLockdown(ctx context.Context, rawID string, fn func(*Lockdown) error) (Lockdown, error) {
	id, ok := NormalizeLockdownID(rawID)
	if !ok {
		return Lockdown{}, fmt.Errorf("lockdown %q: %w", rawID, ErrNotFound)
	}
	for attempt := 0; attempt < maxCAS; attempt++ {
		data, err := s.rdb.HGet(ctx, s.k.lockdown(id), "data").Result()
		if errors.Is(err, redis.Nil) {
			return Lockdown{}, fmt.Errorf("lockdown %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return Lockdown{}, fmt.Errorf("read lockdown %s: %w", id, err)
		}
		cur, err := decodeLockdown(id, data)
		if err != nil {
			return Lockdown{}, err
		}
		next, _ := decodeLockdown(id, data) // a copy fn may change freely
		if err := fn(&next); err != nil {
			if errors.Is(err, ErrNoLockdownChange) {
				return cur, nil
			}
			return cur, err
		}
		if next.ID != id {
			return cur, fmt.Errorf("update of lockdown %s changes its ID: %w", id, ErrInvalid)
		}
		next.Version = cur.Version + 1
		closing := cur.Open() && !next.Open()
		if closing && next.ClosedAt.IsZero() {
			next.ClosedAt = s.nowUTC()
		}
		out, err := json.Marshal(next)
		if err != nil {
			return cur, fmt.Errorf("encode lockdown %s: %w", id, err)
		}
		var ttl int64
		if !next.Open() {
			ttl = s.retention.Milliseconds()
		}
		n, err := lockdownCASScript.Run(ctx, s.rdb, []string{s.k.lockdown(id)}, cur.Version, next.Version, out, ttl,
			writeToken()).Int()
		if err != nil {
			return cur, fmt.Errorf("update lockdown %s: %w", id, err)
		}
		switch n {
		case -1:
			return cur, fmt.Errorf("lockdown %s: %w", id, ErrNotFound)
		case 1:
			if closing {
				if err := s.rdb.SRem(ctx, s.k.lockdownsOpen(), id).Err(); err != nil {
					s.log.Warn().Err(err).Str("lockdown", id).Msg("remove closed lockdown from the open set; the next list will")
				}
			}
			return next, nil
		}
		if err := pause(ctx, attempt); err != nil {
			return cur, fmt.Errorf("update lockdown %s: %w", id, err)
		}
	}
	return Lockdown{}, fmt.Errorf("update lockdown %s: %w", id, ErrConflict)
}

// ErrNoLockdownChange, returned by UpdateLockdown's fn, ends the update without a write.
var ErrNoLockdownChange = errors.New("no change")

// DiscardLockdown deletes a lockdown whose card could not be posted (its members are the
// caller's to discard). Errors: Redis errors.
func (s *Store) DiscardLockdown(ctx context.Context, id string) error {
	if err := s.rdb.Del(ctx, s.k.lockdown(id)).Err(); err != nil {
		return fmt.Errorf("discard lockdown %s: %w", id, err)
	}
	return s.rdb.SRem(ctx, s.k.lockdownsOpen(), id).Err()
}

// ListOpenLockdowns returns the open lockdowns, oldest first; an ID whose record is gone or
// closed leaves the open set.
func (s *Store) ListOpenLockdowns(ctx context.Context) ([]Lockdown, error) {
	ids, err := s.rdb.SMembers(ctx, s.k.lockdownsOpen()).Result()
	if err != nil {
		return nil, fmt.Errorf("list open lockdowns: %w", err)
	}
	var out []Lockdown
	for _, id := range ids {
		l, err := s.GetLockdown(ctx, id)
		if errors.Is(err, ErrNotFound) || err == nil && !l.Open() {
			_ = s.rdb.SRem(ctx, s.k.lockdownsOpen(), id).Err()
			continue
		}
		if err != nil {
			s.log.Warn().Err(err).Str("lockdown", id).Msg("skip a lockdown that does not read")
			continue
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}
