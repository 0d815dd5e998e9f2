package remediate

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// The portal password (reset). The v2 API cannot reset it; the v1 API's subscriber update
// accepts pwd (API.md §8). With Config.PortalPassword, reset sets a random one through v1 and
// hands it to the requester only, like the PIN; v1 documents no way to read a password back,
// so the outcome is "requested", never "verified". Every run sets a new one: the password an
// interrupted run set was never delivered.

// portalPasswordLength: 20 characters of a 56-letter alphabet, about 116 bits.
const portalPasswordLength = 20

// portalAlphabet leaves out look-alikes (0 O 1 l I) for a password read out over the phone.
const portalAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// portalPassword sets the portal password when configured and says what happened to it.
func (r *runner) portalPassword() (session.SubResult, *Secret, error) {
	e := r.e
	if !e.cfg.PortalPassword {
		return session.SubResult{Name: "portal password", Outcome: session.OutcomeNotPossible,
			Detail: "the NetSapiens API offers no portal password reset: reset it in the Manager Portal"}, nil, nil
	}
	pwd, err := newPortalPassword()
	if err != nil {
		return session.SubResult{}, nil, err
	}
	err = r.write("set portal password (v1)", func(ctx context.Context) error {
		return e.pbx.SetPortalPassword(ctx, r.domain(), r.user(), pwd)
	})
	if err != nil {
		return session.SubResult{}, nil, fmt.Errorf("set portal password through v1: %w", err)
	}
	r.auditStep("portal_password", "••••••", "••••••", "new portal password set through the v1 API (requested: v1 cannot read it back)")
	return session.SubResult{Name: "portal password", Outcome: session.OutcomeRequested,
			Detail: "a new random password was set through the v1 API (it cannot be read back); shown only to you"},
		&Secret{Label: "portal password of " + r.user() + "@" + r.domain(),
			Instructions: "give it to the user over a trusted channel; the old password no longer works", Value: pwd, Portal: true}, nil
}

func portalSummary(s session.SubResult) string {
	if s.Outcome == session.OutcomeRequested {
		return "set through v1 (requested)"
	}
	return "not possible via the API"
}

// newPortalPassword draws a random password from portalAlphabet (crypto/rand, rejection
// sampling so that every letter is equally likely).
func newPortalPassword() (netsapiens.Secret, error) {
	out := make([]byte, 0, portalPasswordLength)
	buf := make([]byte, 64)
	limit := 256 - 256%len(portalAlphabet)
	for len(out) < portalPasswordLength {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("random portal password: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < portalPasswordLength {
				out = append(out, portalAlphabet[int(b)%len(portalAlphabet)])
			}
		}
	}
	return netsapiens.Secret(out), nil
}
