package session_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/session"
)

// TestKeepAlive: renewals run until renew gives up, and none runs after stop returns.
func TestKeepAlive(t *testing.T) {
	var n atomic.Int32
	gaveUp := make(chan struct{})
	stop := session.KeepAlive(context.Background(), time.Millisecond, func(context.Context) bool {
		if n.Add(1) == 3 {
			close(gaveUp)
			return false
		}
		return true
	})
	select {
	case <-gaveUp:
	case <-time.After(10 * time.Second):
		t.Fatal("renew was not called three times")
	}
	stop()
	if got := n.Load(); got != 3 {
		t.Errorf("renew called %d times, want 3 (none after it returned false)", got)
	}

	n.Store(0)
	stop = session.KeepAlive(context.Background(), time.Millisecond, func(context.Context) bool { n.Add(1); return true })
	stop()
	after := n.Load()
	time.Sleep(20 * time.Millisecond) // twenty ticks of the stopped loop
	if got := n.Load(); got != after {
		t.Errorf("renew ran %d times after stop returned", got-after)
	}
}
