package session

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The global audit chain is one sequence that every incident's entries are copied into, so its
// head is the one point every Append of every incident goes through. Copied one entry at a time
// (read the copy mark, read the incident's entries, read the head, append under compare-and-set:
// four round trips and one fsynced write per entry, retried whenever another copy moved the head)
// it capped a 200-user lockdown at the rate Redis could take those in a row: ≈ 1 000 copies in
// its deny alone, every concurrent Append racing for the same head. So a store copies into the
// global chain in batches (group commit): an Append queues its incident's copy and waits; one
// flush at a time takes every copy queued meanwhile and appends all their entries with one read
// (the copy marks and the head, pipelined) and one script (which checks that neither moved), so
// a batch costs two round trips and one fsync however many entries it holds.
//
// What a copy guarantees is unchanged: the global chain holds each incident's entries in order,
// once each (the copy mark per incident, checked by the script), chained by MAC; Append returns
// after its entry is in the global chain or with the error (then the next Append of the
// incident, Close or Repair completes the copy, as before). Copies by other replicas and by
// mirror (Close, Repair) race only through the head's compare-and-set, as before.

// copyFlushTimeout bounds one flush: it serves many callers, so it runs under a context of its own.
const copyFlushTimeout = 10 * time.Second

// copyReq asks that incident id's entries up to seq be in the global chain.
type copyReq struct {
	user, domain, id string
	seq              int64
	entry            AuditEntry // the incident's entry seq, as appended (saves reading it back)
	done             chan error // buffered: the flush never blocks on a caller that gave up
	// failed, when set, is called with the copy's error instead of anyone waiting on done
	// (a change's lines, linesWritten): a callback, not a goroutine parked per line.
	failed func(error)
}

// globalCopier is the store's one queue of copies into the global chain.
type globalCopier struct {
	mu      sync.Mutex
	pending []*copyReq
	busy    bool // a flush loop runs
}

// copyGlobal copies incident id's entries up to e (just appended to its chain) into the global
// chain, batched with the other copies queued meanwhile, and returns once they are there.
func (s *Store) copyGlobal(ctx context.Context, user, domain, id string, e AuditEntry) error {
	req := s.queueCopy(user, domain, id, e, nil)
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("copy audit of %s into the global chain: %w", id, ctx.Err())
	}
}

// queueCopy queues the copy of incident id's entries up to e; its outcome arrives on req.done,
// or, failed set, a failure is given to failed.
func (s *Store) queueCopy(user, domain, id string, e AuditEntry, failed func(error)) *copyReq {
	req := &copyReq{user: user, domain: domain, id: id, seq: e.Seq, entry: e, done: make(chan error, 1), failed: failed}
	c := &s.copier
	c.mu.Lock()
	c.pending = append(c.pending, req)
	if !c.busy {
		c.busy = true
		go s.flushLoop()
	}
	c.mu.Unlock()
	return req
}

// flushLoop flushes batches until the queue is empty.
func (s *Store) flushLoop() {
	c := &s.copier
	for {
		c.mu.Lock()
		batch := c.pending
		c.pending = nil
		if len(batch) == 0 {
			c.busy = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), copyFlushTimeout)
		errs := s.flush(ctx, batch)
		cancel()
		for _, r := range batch {
			if err := errs[r.id]; r.failed != nil && err != nil {
				r.failed(err)
			}
			r.done <- errs[r.id]
		}
	}
}

// batchCopy is one incident's part of a batch: the entries the global chain still lacks.
type batchCopy struct {
	user, domain, id string
	upTo             int64        // the highest seq asked for
	known            []AuditEntry // entries the requests carried, by seq
	mark             int64        // the copy mark as read
	markErr          error        // the copy mark as read is not a number
	entries          []AuditEntry // to append: seq mark+1 … upTo
	err              error        // this incident's copy cannot be made (its chain lacks an entry)
}

// flush appends every entry the batch asks for, under compare-and-set on the global head and on
// each incident's copy mark; a moved head or mark (another copier) reads both again. It returns
// each incident's outcome: an incident whose chain cannot be copied fails alone.
func (s *Store) flush(ctx context.Context, batch []*copyReq) map[string]error {
	var parts []*batchCopy
	byID := map[string]*batchCopy{}
	for _, r := range batch {
		p := byID[r.id]
		if p == nil {
			p = &batchCopy{user: r.user, domain: r.domain, id: r.id}
			byID[r.id] = p
			parts = append(parts, p)
		}
		p.upTo = max(p.upTo, r.seq)
		p.known = append(p.known, r.entry)
	}
	errs := make(map[string]error, len(parts))
	all := func(err error) map[string]error {
		for _, p := range parts {
			errs[p.id] = err
		}
		return errs
	}
	g := s.globalChainKeys()
	for attempt := 0; attempt < maxCAS; attempt++ {
		seq, mac, err := s.readMarks(ctx, g, parts)
		if err != nil {
			return all(err)
		}
		if err := s.fillGaps(ctx, parts); err != nil {
			return all(err)
		}
		args := []any{seq, mac, 0, ""} // the head expected, then the head after the batch
		for _, p := range parts {
			if len(p.entries) == 0 {
				continue // copied meanwhile (mirror, another replica)
			}
			args = append(args, p.id, p.mark, p.upTo, len(p.entries))
			for _, ge := range p.entries {
				ge.IncidentID, ge.IncidentSeq = p.id, ge.Seq
				seq++
				ge.Seq, ge.PrevMAC = seq, mac
				ge.MAC = s.entryMAC(globalChain, &ge)
				mac = ge.MAC
				data, err := json.Marshal(ge)
				if err != nil {
					return all(fmt.Errorf("encode audit entry: %w", err))
				}
				args = append(args, data)
			}
		}
		if len(args) == 4 {
			return partErrs(parts, errs) // every entry is there already
		}
		args[2], args[3] = seq, mac
		ok, err := copyBatchScript.Run(ctx, s.rdb, []string{g.list, g.head, g.ttl, g.mirrord}, args...).Int()
		if err != nil {
			return all(fmt.Errorf("copy audit into the global chain: %w", err))
		}
		if ok == 1 {
			return partErrs(parts, errs)
		}
		if err := pause(ctx, attempt); err != nil {
			return all(fmt.Errorf("copy audit into the global chain: %w", err))
		}
	}
	return all(fmt.Errorf("copy audit into the global chain: %w", ErrConflict))
}

// partErrs is each part's own outcome once the batch is written.
func partErrs(parts []*batchCopy, errs map[string]error) map[string]error {
	for _, p := range parts {
		errs[p.id] = p.err
	}
	return errs
}

// readMarks reads the global head and each part's copy mark in one round trip, and keeps in each
// part the entries it already holds that the global chain lacks.
func (s *Store) readMarks(ctx context.Context, g chainKeys, parts []*batchCopy) (int64, string, error) {
	ids := make([]string, len(parts))
	for i, p := range parts {
		ids[i] = p.id
	}
	pipe := s.rdb.Pipeline()
	head := pipe.HMGet(ctx, g.head, "seq", "mac")
	marks := pipe.HMGet(ctx, g.mirrord, ids...)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, "", fmt.Errorf("read the global audit head and copy marks: %w", err)
	}
	seq, mac := headValues(head.Val())
	for i, v := range marks.Val() {
		p := parts[i]
		p.mark, p.markErr = 0, nil
		if str, ok := v.(string); ok {
			m, err := strconv.ParseInt(str, 10, 64)
			if err != nil { // this incident's copy cannot be made; the others' can
				p.markErr = fmt.Errorf("copy mark of %s holds %q: %w", p.id, str, ErrConflict)
			}
			p.mark = m
		}
		p.entries = p.entries[:0]
		for _, e := range p.known {
			if e.Seq > p.mark {
				p.entries = append(p.entries, e)
			}
		}
	}
	return seq, mac, nil
}

// fillGaps reads from the incident's chain the entries between a part's copy mark and the first
// it holds (a copy that failed earlier, or an entry appended by another replica), so that every
// part continues its incident's copy with no gap. A part whose chain lacks an entry is left out
// with its error; a Redis error fails the batch.
func (s *Store) fillGaps(ctx context.Context, parts []*batchCopy) error {
	for _, p := range parts {
		p.err = p.markErr
		if p.err != nil || p.mark >= p.upTo {
			p.entries = nil
			continue
		}
		slices.SortFunc(p.entries, func(a, b AuditEntry) int { return cmp.Compare(a.Seq, b.Seq) })
		if len(p.entries) > 0 && p.entries[0].Seq == p.mark+1 && contiguous(p.entries) && p.entries[len(p.entries)-1].Seq == p.upTo {
			continue
		}
		raws, err := s.rdb.LRange(ctx, s.k.audit(p.user, p.domain, p.id), p.mark, p.upTo-1).Result()
		if err != nil {
			return fmt.Errorf("read audit of %s: %w", p.id, err)
		}
		p.entries = p.entries[:0]
		for i, raw := range raws {
			var e AuditEntry
			if err := json.Unmarshal([]byte(raw), &e); err != nil || e.Seq != p.mark+int64(i)+1 {
				p.err = &AuditError{Chain: p.id, Seq: p.mark + int64(i) + 1, Reason: "cannot copy to the global chain: entry missing or undecodable"}
				break
			}
			p.entries = append(p.entries, e)
		}
		if p.err == nil && int64(len(p.entries)) != p.upTo-p.mark {
			p.err = &AuditError{Chain: p.id, Seq: p.mark + int64(len(p.entries)) + 1, Reason: "cannot copy to the global chain: entry missing"}
		}
		if p.err != nil {
			p.entries = nil
		}
	}
	return nil
}

func contiguous(es []AuditEntry) bool {
	for i := 1; i < len(es); i++ {
		if es[i].Seq != es[i-1].Seq+1 {
			return false
		}
	}
	return true
}
