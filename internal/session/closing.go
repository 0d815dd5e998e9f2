package session

import (
	"context"
	"fmt"
)

// Closing an incident (restored or aborted) and discarding one whose card was never posted.

// Close closes an open incident as restored or aborted: steps that never ran (ready, awaiting
// approval) become skipped, every key of the incident gets the RETENTION TTL, and it leaves the
// open index, so a new incident can be opened for the user. Closing as restored also forgets the
// user's last known original (the restore was verified); an abort keeps it. The user's kept
// devices are left as they are (see CloseKeeping).
// Errors: ErrInvalid (state), ErrClosed, ErrAlreadyRunning (*StepError: a step still runs), ErrNotFound.
func (s *Store) Close(ctx context.Context, id string, state State, by, note string) (Incident, error) {
	return s.CloseKeeping(ctx, id, state, by, note, nil)
}

// KeepFunc decides, from an incident as it closes, which of its device snapshots outlive it for
// the user (devices deleted and never re-created); ok = false leaves the user's kept devices as
// they are (the incident never snapshotted its devices).
type KeepFunc func(inc *Incident) (kept []DeviceSnapshot, ok bool)

// CloseKeeping is Close that also replaces the user's kept devices (UserDevices) with what keep
// returns for the incident as stored at the close, in the same atomic write: a device snapshot
// is never lost between an incident that closes and the next one of the user.
func (s *Store) CloseKeeping(ctx context.Context, id string, state State, by, note string, keep KeepFunc) (Incident, error) {
	if state != StateRestored && state != StateAborted {
		return Incident{}, fmt.Errorf("close as %q: %w", state, ErrInvalid)
	}
	inc, err := s.mutate(ctx, id, func(inc *Incident, m *mutation) error {
		if !inc.Open() {
			return fmt.Errorf("close incident %s: %s by %s: %w", inc.ID, inc.State, inc.ClosedBy, ErrClosed)
		}
		if keep != nil {
			if err := m.keep(keep(inc)); err != nil {
				return err
			}
		}
		now := s.nowUTC()
		for _, name := range Steps {
			st := inc.Steps[name]
			switch st.Status {
			case StatusRunning:
				return &StepError{Err: ErrAlreadyRunning, Step: name, Status: st.Status, By: st.LeaseOwner, At: st.StartedAt}
			case StatusReady, StatusAwaiting:
				st.Status = StatusSkipped
				st.SkipReason = "incident " + string(state)
				st.FinishedAt = now
			}
		}
		inc.State, inc.ClosedBy, inc.ClosedAt, inc.CloseNote = state, by, now, note
		m.close = true
		if state == StateRestored {
			m.origOp = "del"
		}
		return nil
	})
	if err != nil {
		return inc, err
	}
	s.afterClose(ctx, inc)
	return inc, nil
}

// afterClose does Close's global steps; each is idempotent and Repair redoes what fails here.
func (s *Store) afterClose(ctx context.Context, inc Incident) {
	if err := s.rdb.SRem(ctx, s.k.openSet(), inc.ID).Err(); err != nil {
		s.log.Warn().Err(err).Str("incident", inc.ID).Msg("remove closed incident from the open index; Repair will")
	}
	if err := s.rdb.PExpire(ctx, s.k.idIndex(inc.ID), s.retention).Err(); err != nil {
		s.log.Warn().Err(err).Str("incident", inc.ID).Msg("set retention on the incident id index")
	}
	if _, err := s.mirror(ctx, inc.User, inc.Domain, inc.ID); err != nil {
		s.log.Warn().Err(err).Str("incident", inc.ID).Msg("copy audit into the global chain; Repair will")
	}
}

// Discard removes an incident whose card could not be posted, so nothing stays open without a
// card. Its audit entries stay in the global chain. Errors: ErrStarted if any step ever left ready
// or a snapshot was written, ErrClosed, ErrNotFound, ErrConflict.
func (s *Store) Discard(ctx context.Context, id string) error {
	id, user, domain, err := s.locate(ctx, id)
	if err != nil {
		return err
	}
	for attempt := 0; attempt < maxCAS; attempt++ {
		inc, err := s.load(ctx, user, domain, id)
		if err != nil {
			return err
		}
		if !inc.Open() {
			return fmt.Errorf("discard incident %s: %w", id, ErrClosed)
		}
		for _, st := range inc.Steps {
			if st.Status != StatusReady || st.Attempts > 0 {
				return fmt.Errorf("discard incident %s: step %s is %s: %w", id, st.Step, st.Status, ErrStarted)
			}
		}
		if inc.Original != nil || !inc.DevicesAt.IsZero() {
			return fmt.Errorf("discard incident %s: snapshot written: %w", id, ErrStarted)
		}
		if _, err := s.mirror(ctx, user, domain, id); err != nil {
			return err
		}
		ok, err := discardScript.Run(ctx, s.rdb, []string{s.k.inc(user, domain, id), s.k.openPtr(user, domain),
			s.k.audit(user, domain, id), s.k.auditHead(user, domain, id)}, inc.Version, id).Int()
		if err != nil {
			return fmt.Errorf("discard incident %s: %w", id, err)
		}
		if ok == 1 {
			s.locs.forget(id)
			s.recs.forget(id)
			if err := s.rdb.SRem(ctx, s.k.openSet(), id).Err(); err != nil {
				s.log.Warn().Err(err).Str("incident", id).Msg("remove discarded incident from the open index; Repair will")
			}
			if err := s.rdb.Del(ctx, s.k.idIndex(id)).Err(); err != nil {
				s.log.Warn().Err(err).Str("incident", id).Msg("remove discarded incident id index")
			}
			return nil
		}
		if err := pause(ctx, attempt); err != nil {
			return fmt.Errorf("discard incident %s: %w", id, err)
		}
	}
	return fmt.Errorf("discard incident %s: %w", id, ErrConflict)
}
