package session

import (
	"context"
	"encoding/json"
	"fmt"
)

// Lines makes the audit entries that record a change (Begin's "started", SaveOriginal's
// "original"), from the incident as the change leaves it. They are appended to the incident's
// audit chain by the same script as the change, so the change and its lines are stored together
// or not at all, with one fsynced round trip instead of one per line (two, with the copy into the
// global chain, which follows: see linesWritten). The store sets IncidentID, At, Seq and the MACs,
// as Append does; Detail, Before and After must never hold a secret. Called once per
// compare-and-set attempt; nil or no entries = no audit write.
type Lines func(inc *Incident) []AuditEntry

// lineArgs is updateScript's part for an update's audit lines: the chain's head expected and the
// head after them, then the entries.
type lineArgs struct {
	args       []any        // updateScript's ARGV from 13 on; nil = no lines
	entries    []AuditEntry // as stored
	remembered bool         // the expected head came from the store's memory (a moved head is read next time)
}

// lineArgs chains lines after the incident's audit head: the one this store last wrote, when it
// remembers one (as appendChain), else the head read now.
func (s *Store) lineArgs(ctx context.Context, user, domain, id string, lines []AuditEntry) (lineArgs, error) {
	if len(lines) == 0 {
		return lineArgs{}, nil
	}
	h, remembered := s.heads.get(id)
	if !remembered {
		head, err := s.rdb.HMGet(ctx, s.k.auditHead(user, domain, id), "seq", "mac").Result()
		if err != nil {
			return lineArgs{}, fmt.Errorf("read audit head of %s: %w", id, err)
		}
		h.seq, h.mac = headValues(head)
	}
	la := lineArgs{remembered: remembered, args: []any{h.seq, h.mac, 0, ""}}
	at := s.nowUTC()
	for _, e := range lines {
		if e.Actor == "" {
			e.Actor = "bot"
		}
		e.IncidentID, e.IncidentSeq, e.At = id, 0, at
		e.Seq, e.PrevMAC = h.seq+1, h.mac
		e.MAC = s.entryMAC(id, &e)
		h = auditHead{e.Seq, e.MAC}
		data, err := json.Marshal(e)
		if err != nil {
			return lineArgs{}, fmt.Errorf("encode audit entry: %w", err)
		}
		la.args = append(la.args, data)
		la.entries = append(la.entries, e)
	}
	la.args[2], la.args[3] = h.seq, h.mac
	return la, nil
}

// linesWritten follows a written update's lines: the store remembers the chain's new head, and
// the lines are queued for the global chain without waiting for the copy (the change's caller is
// on its way to a PBX write). The copy is idempotent and fills gaps, so the next Append of the
// incident (which waits for its own copy), Close or Repair completes one that fails; a failure
// is logged by the flush (copyReq.failed: a burst wrote lines faster than their copies went
// out, and a goroutine waiting per line only to log was 8–15 parked at its peak).
func (s *Store) linesWritten(user, domain, id string, la lineArgs) {
	n := len(la.entries)
	if n == 0 {
		return
	}
	last := la.entries[n-1]
	s.heads.put(id, auditHead{last.Seq, last.MAC})
	failed := func(err error) {
		s.log.Warn().Err(err).Str("incident", id).Msg("copy audit into the global chain; the next append or Repair will")
	}
	for _, e := range la.entries {
		s.queueCopy(user, domain, id, e, failed)
	}
}
