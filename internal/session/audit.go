package session

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// globalChain names the global audit chain in MACs and errors.
const globalChain = "global"

// chainKeys are the keys of one audit chain, in appendScript's order.
type chainKeys struct {
	name                     string // globalChain or the incident ID
	list, head, ttl, mirrord string
	incident                 bool // ttl is the incident's hash, which must exist to append
}

func (s *Store) incidentChain(user, domain, id string) chainKeys {
	return chainKeys{name: id, list: s.k.audit(user, domain, id), head: s.k.auditHead(user, domain, id),
		ttl: s.k.inc(user, domain, id), mirrord: s.k.auditHead(user, domain, id), incident: true}
}

func (s *Store) globalChainKeys() chainKeys {
	return chainKeys{name: globalChain, list: s.k.globalLog(), head: s.k.globalHead(),
		ttl: s.k.globalHead(), mirrord: s.k.globalMirrored()}
}

// chain resolves an ID ("" = global) to its chain.
func (s *Store) chain(ctx context.Context, id string) (chainKeys, error) {
	if id == "" {
		return s.globalChainKeys(), nil
	}
	id, user, domain, err := s.locate(ctx, id)
	if err != nil {
		return chainKeys{}, err
	}
	return s.incidentChain(user, domain, id), nil
}

// Append adds an entry to the audit: to its incident's chain when IncidentID is set (then copied
// into the global chain), else to the global chain only. The store sets At (now, UTC), Seq, PrevMAC
// and MAC and returns the entry as stored in the first chain. Detail, Before and After must never
// hold a secret. The copy into the global chain is a separate idempotent step: if it fails, the next
// Append of that incident, Close or Repair completes it. Errors: ErrNotFound (no such incident),
// ErrInvalid (bad IncidentID), ErrConflict.
func (s *Store) Append(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	e.At = s.nowUTC()
	e.Seq, e.PrevMAC, e.MAC, e.IncidentSeq = 0, "", "", 0
	if e.IncidentID == "" {
		out, _, err := s.appendChain(ctx, s.globalChainKeys(), e, "", 0)
		return out, err
	}
	id, user, domain, cached, err := s.locateCached(ctx, e.IncidentID)
	if err != nil {
		return AuditEntry{}, err
	}
	e.IncidentID = id
	out, _, err := s.appendChain(ctx, s.incidentChain(user, domain, id), e, "", 0)
	if cached && errors.Is(err, ErrNotFound) {
		s.locs.forget(id) // gone meanwhile (or never where remembered): ask the index
		return s.Append(ctx, e)
	}
	if err != nil {
		return AuditEntry{}, err
	}
	if err := s.copyGlobal(ctx, user, domain, id, out); err != nil {
		s.log.Warn().Err(err).Str("incident", id).Msg("copy audit into the global chain; Repair will")
	}
	return out, nil
}

// errGap: the global chain misses an earlier entry of the incident (mirror fills it first).
var errGap = errors.New("earlier entry not copied")

// auditHead is a chain's last entry: its seq and MAC.
type auditHead struct {
	seq int64
	mac string
}

// appendChain appends e to chain c under compare-and-set on the chain's head. src/srcSeq mark a
// copy of an incident's entry into the global chain (idempotent: code 2 = already there).
//
// An incident's chain starts from the head this store last wrote to it, when it remembers one:
// its appends come one after the other from the incident's runner, so the head is nearly always
// still that, and the read of the head is saved; a head moved meanwhile (another replica) fails
// the compare-and-set, and the next attempt reads it.
func (s *Store) appendChain(ctx context.Context, c chainKeys, e AuditEntry, src string, srcSeq int64) (AuditEntry, int, error) {
	for attempt := 0; attempt < maxCAS; attempt++ {
		h, remembered := auditHead{}, false
		if c.incident {
			h, remembered = s.heads.get(c.name)
		}
		if !remembered {
			head, err := s.rdb.HMGet(ctx, c.head, "seq", "mac").Result()
			if err != nil {
				return AuditEntry{}, 0, fmt.Errorf("read audit head of %s: %w", c.name, err)
			}
			h.seq, h.mac = headValues(head)
		}
		e.Seq, e.PrevMAC = h.seq+1, h.mac
		e.MAC = s.entryMAC(c.name, &e)
		data, err := json.Marshal(e)
		if err != nil {
			return AuditEntry{}, 0, fmt.Errorf("encode audit entry: %w", err)
		}
		mustExist := ""
		if c.incident {
			mustExist = "1"
		}
		code, err := appendScript.Run(ctx, s.rdb, []string{c.list, c.head, c.ttl, c.mirrord},
			h.seq, h.mac, data, e.Seq, e.MAC, src, srcSeq, mustExist, writeToken()).Int()
		if err != nil {
			s.heads.forget(c.name)
			return AuditEntry{}, 0, fmt.Errorf("append audit entry to %s: %w", c.name, err)
		}
		switch code {
		case -1:
			s.heads.forget(c.name)
			return AuditEntry{}, code, fmt.Errorf("incident %s: %w", c.name, ErrNotFound)
		case 1, 2:
			if c.incident {
				s.heads.put(c.name, auditHead{e.Seq, e.MAC})
			}
			return e, code, nil
		case 3:
			return AuditEntry{}, code, errGap
		}
		if remembered {
			s.heads.forget(c.name) // moved by another writer: read it
			continue
		}
		if err := pause(ctx, attempt); err != nil {
			return AuditEntry{}, 0, fmt.Errorf("append audit entry to %s: %w", c.name, err)
		}
	}
	return AuditEntry{}, 0, fmt.Errorf("append audit entry to %s: %w", c.name, ErrConflict)
}

func headValues(v []any) (int64, string) {
	var seq int64
	var mac string
	if len(v) == 2 {
		if s, ok := v[0].(string); ok {
			seq, _ = strconv.ParseInt(s, 10, 64)
		}
		mac, _ = v[1].(string)
	}
	return seq, mac
}

// mirror copies the incident's audit entries that the global chain does not have yet, in order.
// Every copy is idempotent (the global chain records the highest copied seq per incident), so
// concurrent mirrors and Repair never duplicate an entry. It returns how many entries it copied.
func (s *Store) mirror(ctx context.Context, user, domain, id string) (int, error) {
	g := s.globalChainKeys()
	copied := 0
	for round := 0; round < maxCAS; round++ {
		done, err := s.rdb.HGet(ctx, g.mirrord, id).Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			return copied, fmt.Errorf("read audit copy mark of %s: %w", id, err)
		}
		raws, err := s.rdb.LRange(ctx, s.k.audit(user, domain, id), done, -1).Result()
		if err != nil {
			return copied, fmt.Errorf("read audit of %s: %w", id, err)
		}
		if len(raws) == 0 {
			return copied, nil
		}
		gap := false
		for i, raw := range raws {
			var e AuditEntry
			if err := json.Unmarshal([]byte(raw), &e); err != nil || e.Seq != done+int64(i)+1 {
				return copied, &AuditError{Chain: id, Seq: done + int64(i) + 1, Reason: "cannot copy to the global chain: entry missing or undecodable"}
			}
			ge := e
			ge.IncidentID, ge.IncidentSeq = id, e.Seq
			_, code, cerr := s.appendChain(ctx, g, ge, id, e.Seq)
			if errors.Is(cerr, errGap) {
				gap = true // someone else is copying, or the incident chain lost entries: read the mark again
				break
			}
			if cerr != nil {
				return copied, cerr
			}
			if code == 1 {
				copied++
			}
		}
		if !gap {
			return copied, nil
		}
		if err := pause(ctx, round); err != nil {
			return copied, err
		}
	}
	return copied, fmt.Errorf("copy audit of %s: %w", id, ErrConflict)
}

// entryMAC is the chain MAC of e: HMAC-SHA256 under AUDIT_KEY ("h1:…") or, without a key, SHA-256
// ("s1:…"), over the chain name, every field but MAC, and PrevMAC, each length-prefixed.
func (s *Store) entryMAC(chain string, e *AuditEntry) string {
	var b []byte
	add := func(v string) {
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	add("cr audit v1")
	add(chain)
	add(strconv.FormatInt(e.Seq, 10))
	add(e.IncidentID)
	add(strconv.FormatInt(e.IncidentSeq, 10))
	add(e.At.UTC().Format(time.RFC3339Nano))
	add(e.Actor)
	add(e.Action)
	add(string(e.Step))
	add(e.Before)
	add(e.After)
	add(e.Detail)
	add(e.PrevMAC)
	if s.auditKey != nil {
		m := hmac.New(sha256.New, s.auditKey)
		m.Write(b)
		return "h1:" + hex.EncodeToString(m.Sum(nil))
	}
	sum := sha256.Sum256(b)
	return "s1:" + hex.EncodeToString(sum[:])
}

// Audit returns an incident's audit chain, oldest first. Errors: ErrNotFound.
func (s *Store) Audit(ctx context.Context, id string) ([]AuditEntry, error) {
	c, err := s.chain(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.readChain(ctx, c, 0, -1)
}

// AuditAfter returns an incident's audit entries after sequence number seq (0 = all), oldest first:
// what its thread has not shown yet, without reading and decoding what it has. The incident's
// user@domain may be the one this store remembers (its sync has just read the incident); the
// incident's hash is then read with the chain, in the same round trip, so an incident gone since
// (discarded, expired) is ErrNotFound as with a fresh lookup, not an empty chain. Errors:
// ErrNotFound.
func (s *Store) AuditAfter(ctx context.Context, id string, seq int64) ([]AuditEntry, error) {
	id, user, domain, cached, err := s.locateCached(ctx, id)
	if err != nil {
		return nil, err
	}
	c := s.incidentChain(user, domain, id)
	seq = max(seq, 0)
	var out []AuditEntry
	if cached {
		var gone bool
		out, gone, err = s.readChainOf(ctx, c, seq)
		if gone {
			s.locs.forget(id) // gone meanwhile (or never where remembered): ask the index
			return s.AuditAfter(ctx, id, seq)
		}
	} else {
		out, err = s.readChain(ctx, c, seq, -1) // entry n is at index n-1 (appends only push)
	}
	if err != nil || len(out) == 0 || out[0].Seq == seq+1 {
		return out, err
	}
	// Not where the chain's shape puts it (never seen): the whole chain, filtered.
	all, err := s.readChain(ctx, c, 0, -1)
	return slices.DeleteFunc(all, func(e AuditEntry) bool { return e.Seq <= seq }), err
}

// GlobalAudit returns up to limit entries of the global chain after sequence number since
// (0 = from the start; limit ≤ 0 = all).
func (s *Store) GlobalAudit(ctx context.Context, since int64, limit int) ([]AuditEntry, error) {
	if since < 0 {
		since = 0
	}
	stop := int64(-1)
	if limit > 0 {
		stop = since + int64(limit) - 1
	}
	return s.readChain(ctx, s.globalChainKeys(), since, stop)
}

// readChainOf is readChain from start to the end of an incident's chain, with whether the
// incident's hash is gone, both read in one round trip.
func (s *Store) readChainOf(ctx context.Context, c chainKeys, start int64) (entries []AuditEntry, gone bool, err error) {
	var lr *redis.StringSliceCmd
	var ex *redis.IntCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		lr, ex = p.LRange(ctx, c.list, start, -1), p.Exists(ctx, c.ttl)
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("read audit of %s: %w", c.name, err)
	}
	if ex.Val() == 0 {
		return nil, true, nil
	}
	entries, err = decodeChain(c, start, lr.Val())
	return entries, false, err
}

func (s *Store) readChain(ctx context.Context, c chainKeys, start, stop int64) ([]AuditEntry, error) {
	raws, err := s.rdb.LRange(ctx, c.list, start, stop).Result()
	if err != nil {
		return nil, fmt.Errorf("read audit of %s: %w", c.name, err)
	}
	return decodeChain(c, start, raws)
}

// decodeChain decodes the entries of c read from index start.
func decodeChain(c chainKeys, start int64, raws []string) ([]AuditEntry, error) {
	out := make([]AuditEntry, 0, len(raws))
	for i, raw := range raws {
		var e AuditEntry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return nil, &AuditError{Chain: c.name, Seq: start + int64(i) + 1, Reason: "undecodable entry"}
		}
		out = append(out, e)
	}
	return out, nil
}

// AuditHead returns the sequence number and MAC of the last entry of an incident's chain (id "" =
// the global chain), to post to AUDIT_CHANNEL: a later chain must extend it. Errors: ErrNotFound.
func (s *Store) AuditHead(ctx context.Context, id string) (int64, string, error) {
	c, err := s.chain(ctx, id)
	if err != nil {
		return 0, "", err
	}
	head, err := s.rdb.HMGet(ctx, c.head, "seq", "mac").Result()
	if err != nil {
		return 0, "", fmt.Errorf("read audit head of %s: %w", c.name, err)
	}
	seq, mac := headValues(head)
	return seq, mac, nil
}

// Verify checks an incident's audit chain (id "" = the global chain): sequence numbers 1, 2, … with
// no gap, every PrevMAC equal to the previous MAC, every MAC recomputed, and the stored head equal to
// the last entry. So an edited, deleted, re-ordered or truncated entry is detected (a forger with
// Redis access defeats a chain without AUDIT_KEY, and a truncation that also rewrites the head is
// caught only against a head published elsewhere: see AuditHead). Errors: *AuditError
// (ErrAuditTampered) naming the first bad entry, ErrNoKey (keyed entries but no AUDIT_KEY),
// ErrNotFound.
func (s *Store) Verify(ctx context.Context, id string) error {
	c, err := s.chain(ctx, id)
	if err != nil {
		return err
	}
	// The head first, then the list: an entry appended between the two reads (a live bot keeps
	// writing) then only lengthens the list past the head, where reading the list first would show
	// a head ahead of the list and report a truncation that never happened. The append script moves
	// list and head together, so a list shorter than the head read before it is a real truncation.
	head, err := s.rdb.HMGet(ctx, c.head, "seq", "mac").Result()
	if err != nil {
		return fmt.Errorf("read audit head of %s: %w", c.name, err)
	}
	hseq, headMAC := headValues(head)
	raws, err := s.rdb.LRange(ctx, c.list, 0, -1).Result()
	if err != nil {
		return fmt.Errorf("read audit of %s: %w", c.name, err)
	}
	prev, macAtHead := "", ""
	for i, raw := range raws {
		seq := int64(i) + 1
		bad := func(reason string) error { return &AuditError{Chain: c.name, Seq: seq, Reason: reason} }
		var e AuditEntry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return bad("undecodable entry")
		}
		switch {
		case e.Seq != seq:
			return bad(fmt.Sprintf("sequence number %d: an entry is missing or out of order", e.Seq))
		case c.name != globalChain && e.IncidentID != c.name:
			return bad("entry of another incident")
		case !hmac.Equal([]byte(e.PrevMAC), []byte(prev)):
			return bad("does not follow the previous entry")
		case s.auditKey == nil && strings.HasPrefix(e.MAC, "h1:"):
			return fmt.Errorf("verify audit of %s: entries are keyed, AUDIT_KEY: %w", c.name, ErrNoKey)
		case s.auditKey != nil && !strings.HasPrefix(e.MAC, "h1:"):
			return bad("entry is not keyed (AUDIT_KEY is set)")
		case !hmac.Equal([]byte(s.entryMAC(c.name, &e)), []byte(e.MAC)):
			return bad("MAC does not match: entry edited")
		}
		prev = e.MAC
		if seq == hseq {
			macAtHead = e.MAC
		}
	}
	n := int64(len(raws))
	if hseq == 0 && n > 0 {
		// No head when it was read, entries now: either the chain began during the verify, or its
		// head was deleted. A second read tells them apart.
		again, err := s.rdb.HMGet(ctx, c.head, "seq", "mac").Result()
		if err != nil {
			return fmt.Errorf("read audit head of %s: %w", c.name, err)
		}
		if h2, _ := headValues(again); h2 == 0 {
			return &AuditError{Chain: c.name, Seq: 1, Reason: fmt.Sprintf("no head, chain has %d: head deleted", n)}
		}
		return nil // every entry was appended since the first read, and chains from the start (checked above)
	}
	if hseq > n {
		return &AuditError{Chain: c.name, Seq: min(hseq, n) + 1,
			Reason: fmt.Sprintf("head says %d entries, chain has %d: truncated", hseq, n)}
	}
	if headMAC != macAtHead {
		return &AuditError{Chain: c.name, Seq: hseq, Reason: "head does not match the last entry"}
	}
	return nil
}
