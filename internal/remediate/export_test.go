package remediate

import (
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// ErrStop is what a test's hook returns to stop a runner as if its process died.
var ErrStop = errStop

// SetHook installs a function called before (after=false) and after (after=true) every PBX
// write; an error from it stops the runner there.
func (e *Engine) SetHook(h func(step session.Step, op string, after bool) error) { e.hook = h }

// SetRenewEvery changes the lease renewal interval.
func (e *Engine) SetRenewEvery(d time.Duration) { e.renewEvery = d }

// TrivialPIN exposes trivialPIN.
var TrivialPIN = trivialPIN

// NewPIN exposes newPIN.
var NewPIN = newPIN

// MaskEmail exposes maskEmail.
var MaskEmail = maskEmail
