package remediate

import (
	"context"
	"fmt"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/session"
)

// Credentials sets a new random SIP password (PUT) on every re-created device that is not
// MAC-provisioned, verifies it by GET where the PBX shows passwords, and returns them for the
// requester (e.g. after an ephemeral message was lost). The old passwords stop working. Two
// concurrent calls both rotate; the later one's passwords are the valid ones. Errors:
// ErrStepOrder (recreate has not finished), ErrAlreadyRunning (recreate is running),
// ErrClosed, ErrNotFound, ErrVerify, netsapiens kinds.
func (e *Engine) Credentials(ctx context.Context, id, actor string) (Result, error) {
	inc, err := e.store.Get(ctx, id)
	if err != nil {
		return Result{}, err
	}
	if err := credentialsReady(&inc); err != nil {
		return Result{Incident: inc}, err
	}
	// Its writes go through the runner's write path like every step's: the test hook, then the
	// fence, which here is the incident as stored: still open, recreate finished and not running.
	r := &runner{e: e, step: session.StepRecreate, inc: inc, actor: actor, ctx: ctx,
		pctx: netsapiens.WithLogTag(ctx, inc.ID),
		fence: func(ctx context.Context) error {
			now, err := e.store.Get(ctx, id)
			if err != nil {
				return err
			}
			return credentialsReady(&now)
		}}
	var out []Secret
	for _, snap := range inc.Devices {
		if snap.MACProvisioned {
			continue
		}
		pw, err := r.rotate(snap.Device)
		if err != nil {
			return Result{Incident: inc, Secrets: out}, err
		}
		got, err := e.pbx.GetDevice(r.pctx, inc.Domain, inc.User, snap.Device)
		if err != nil {
			return Result{Incident: inc, Secrets: out}, fmt.Errorf("verify password of device %s: %w", snap.Device, err)
		}
		outcome := "verified"
		switch {
		case got.SIPPassword == nil || *got.SIPPassword == "":
			outcome = "set (the PBX does not show passwords)"
		case got.SIPPassword.Reveal() != pw.Reveal():
			return Result{Incident: inc, Secrets: out}, errorf(ErrVerify, "device %s reads back another password than the one set", snap.Device)
		}
		out = append(out, Secret{
			Label:        "softphone " + snap.Device + ": SIP password",
			Instructions: "enter this SIP password in the softphone or app registered as " + snap.Device + "@" + inc.Domain + "; any earlier one no longer works",
			Value:        *pw, Device: snap.Device,
		})
		e.audit(ctx, inc.ID, actor, "credentials.rotated", session.StepRecreate, "", snap.Device,
			"new SIP password "+outcome+"; delivered to the requester only")
	}
	e.notify(ctx, inc.ID)
	return Result{Incident: inc, Secrets: out}, nil
}

// credentialsReady says why new credentials cannot be set now, or nil: the incident is closed,
// recreate is running, or it has not finished.
func credentialsReady(inc *session.Incident) error {
	if !inc.Open() {
		return fmt.Errorf("credentials for %s: %w", inc.ID, ErrClosed)
	}
	st := inc.Step(session.StepRecreate)
	if st.Status == session.StatusRunning {
		return &session.StepError{Err: ErrAlreadyRunning, Step: st.Step, Status: st.Status, By: st.RequestedBy, At: st.StartedAt}
	}
	if !st.Status.Finished() {
		return errorf(ErrStepOrder, "re-create the devices first: credentials are for re-created devices")
	}
	return nil
}
