package remediate

import (
	"context"
	"errors"
	"fmt"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// Progress keys of reset.
const (
	progJWT    = "jwt"     // JWTRequested, per run (runKey): every Retry revokes again
	progPIN    = "pin"     // PINSet: a new PIN was accepted (its value lives only in that run's Result)
	progPINOld = "pin-old" // HMAC of the PIN the user had when reset first began (never the PIN)
	progEmail  = "email"   // EmailSent, per run (runKey): every Retry sends it again
)

const pinField = "voicemail-login-pin"

// reset: revoke the user's sessions, set a random voicemail PIN (verified by GET), send the
// reset email if configured, and say that the portal password cannot be reset through the API.
// A resumed run sets a new PIN again: the one an interrupted run set was never delivered.
func (r *runner) reset() (stepResult, error) {
	e := r.e
	u, err := e.pbx.GetUser(r.pctx, r.domain(), r.user())
	if err != nil {
		return stepResult{}, fmt.Errorf("read user: %w", err)
	}
	var subs []session.SubResult

	// Sessions: the API cannot list them, so the revocation can only be "requested".
	jwt := session.SubResult{Name: "sessions", Outcome: session.OutcomeRequested, Detail: "revocation requested (cannot be read back)"}
	// Every run revokes again: a session the attacker opened after a failed attempt must end too.
	if r.prog(r.runKey(progJWT)) == "" {
		err := r.write("revoke sessions", func(ctx context.Context) error {
			return e.pbx.RevokeJWT(ctx, r.domain(), r.user())
		})
		switch {
		case errors.Is(err, netsapiens.ErrNotFound):
			jwt.Detail = "revocation requested; the PBX reported no session to revoke"
		case err != nil:
			return stepResult{}, fmt.Errorf("revoke sessions: %w", err)
		}
		if err := r.record(r.runKey(progJWT), string(JWTRequested),
			auditLine(r.stepLine("sessions", "", "revocation requested", ""))); err != nil {
			return stepResult{}, err
		}
	}
	subs = append(subs, jwt)

	// PIN.
	old := u.VoicemailPIN
	if r.prog(progPINOld) == "" && r.prog(progPIN) == "" && old != "" {
		if h := e.cfg.Keys.SecretHMAC(r.inc.ID, pinField, old.Reveal()); h != "" {
			if err := r.progress(progPINOld, h); err != nil {
				return stepResult{}, err
			}
		}
	}
	var pin netsapiens.Secret
	for range 20 {
		p, err := newPIN(e.cfg.PINLength, old.Reveal(), r.user())
		if err != nil {
			return stepResult{}, err
		}
		if h := r.prog(progPINOld); h != "" {
			if same, err := e.cfg.Keys.SecretMatches(r.inc.ID, pinField, p.Reveal(), h); err == nil && same {
				continue
			}
		}
		pin = p
		break
	}
	if pin == "" {
		return stepResult{}, fmt.Errorf("no new PIN differs from the old one")
	}
	err = r.write("put user voicemail-login-pin", func(ctx context.Context) error {
		return e.pbx.UpdateUser(ctx, r.domain(), r.user(), netsapiens.UserUpdate{VoicemailPIN: &pin})
	})
	if err != nil {
		return stepResult{}, fmt.Errorf("set voicemail PIN: %w", err)
	}
	if err := r.record(progPIN, string(PINSet),
		auditLine(r.stepLine("pin", "••••••", "••••••", "new voicemail PIN set (PUT accepted)"))); err != nil {
		return stepResult{}, err
	}
	got, err := e.pbx.GetUser(r.pctx, r.domain(), r.user())
	if err != nil {
		return stepResult{}, fmt.Errorf("verify voicemail PIN: %w", err)
	}
	pinSub := session.SubResult{Name: "voicemail PIN", Outcome: session.OutcomeVerified, Detail: "changed (read back)"}
	switch {
	case got.VoicemailPIN == "":
		pinSub.Outcome, pinSub.Detail = session.OutcomeRequested, "set; the PBX does not show PINs, so it cannot be read back"
	case got.VoicemailPIN.Reveal() != pin.Reveal():
		return stepResult{}, errorf(ErrVerify, "the PBX accepted the new voicemail PIN but reads back a different one")
	case old != "" && got.VoicemailPIN.Reveal() == old.Reveal():
		return stepResult{}, errorf(ErrVerify, "the voicemail PIN did not change")
	}
	subs = append(subs, pinSub)
	// From here on the PIN is the user's: it goes back to the requester even if a later part fails.
	secret := Secret{
		Label:        "voicemail PIN of " + r.user() + "@" + r.domain(),
		Instructions: "give it to the user over a trusted channel; the old PIN no longer works",
		Value:        pin,
	}
	partial := stepResult{secrets: []Secret{secret}}

	// Reset email.
	masked := maskEmail(u.EmailAddress)
	email := session.SubResult{Name: "reset email"}
	switch {
	case e.cfg.ResetEmailTemplate == "":
		email.Outcome, email.Detail = session.OutcomeSkipped, "not configured (NS_RESET_EMAIL_TEMPLATE)"
	case u.EmailAddress == "":
		email.Outcome, email.Detail = session.OutcomeNotPossible, "the user has no e-mail address"
	default:
		if r.prog(r.runKey(progEmail)) == "" {
			err := r.write("send reset email", func(ctx context.Context) error {
				return e.pbx.SendEmail(ctx, r.domain(), r.user(), e.cfg.ResetEmailTemplate, e.cfg.ResetEmailSubject)
			})
			if err != nil {
				return partial, fmt.Errorf("send reset email: %w", err)
			}
			if err := r.record(r.runKey(progEmail), string(EmailSent),
				auditLine(r.stepLine("email", "", "sent to "+masked, ""))); err != nil {
				return partial, err
			}
		}
		email.Outcome, email.Detail = session.OutcomeRequested, "sent to "+masked
		if r.inc.EmailAtOpen != "" && r.inc.EmailAtOpen != masked {
			email.Detail += " (changed since the incident opened: was " + r.inc.EmailAtOpen + ")"
		}
	}
	subs = append(subs, email)
	portal, portalSecret, err := r.portalPassword()
	if err != nil {
		return partial, err
	}
	subs = append(subs, portal)
	secrets := []Secret{secret}
	if portalSecret != nil {
		secrets = append(secrets, *portalSecret)
	}

	summary := "PIN " + map[bool]string{true: "verified changed", false: "set"}[pinSub.Outcome == session.OutcomeVerified] +
		" · sessions: revocation requested · portal password: " + portalSummary(portal)
	if email.Outcome == session.OutcomeRequested {
		summary += " · reset email sent to " + masked
	}
	return stepResult{status: session.StatusWarnings, summary: summary, subs: subs, secrets: secrets,
		before: "old PIN and sessions", after: "new PIN; sessions revoked"}, nil
}
