package session

import (
	"context"
	"fmt"
)

// An incident opened without Slack (`bot respond open … --channel C…`) has a channel but no card.
// The "card pending" set remembers it until a running `bot serve` has posted the card (and so
// its thread, which then receives every audit entry of the incident, the CLI's included). The
// set is global, so a replica finds the pending cards without scanning; every operation on it
// is idempotent and a stale member (an incident discarded or expired) is simply removed.

// MarkCardPending records that the incident's card must still be posted in its Channel.
// Errors: ErrNotFound (no such incident), ErrInvalid (it has no channel), Redis failures.
func (s *Store) MarkCardPending(ctx context.Context, id string) error {
	inc, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if inc.Channel == "" {
		return fmt.Errorf("card of %s: no channel to post it in: %w", inc.ID, ErrInvalid)
	}
	if err := s.rdb.SAdd(ctx, s.k.cardsPending(), inc.ID).Err(); err != nil {
		return fmt.Errorf("mark the card of %s pending: %w", inc.ID, err)
	}
	return nil
}

// PendingCards returns the IDs of incidents whose card is still to be posted, in no order.
func (s *Store) PendingCards(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, s.k.cardsPending()).Result()
	if err != nil {
		return nil, fmt.Errorf("list pending cards: %w", err)
	}
	return ids, nil
}

// ClearCardPending forgets a pending card (posted, or never to be posted). Idempotent.
func (s *Store) ClearCardPending(ctx context.Context, id string) error {
	if err := s.rdb.SRem(ctx, s.k.cardsPending(), id).Err(); err != nil {
		return fmt.Errorf("clear the pending card of %s: %w", id, err)
	}
	return nil
}
