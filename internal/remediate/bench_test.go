package remediate_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// benchEngine is an engine over the simulator (with latency added to every PBX request, to
// model the round trip to a real PBX) and a store on the test Redis.
func benchEngine(b *testing.B, latency time.Duration) (*remediate.Engine, *session.Store) {
	b.Helper()
	r := testenv.NewRedis(b)
	sim, url := nstest.Start(b, nstest.Options{})
	sim.SetFaults(nstest.Faults{Latency: latency})
	store, err := session.New(session.Config{Client: r.Client, Prefix: r.Prefix, AuditKey: testAuditKey, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	pbx, err := netsapiens.New(netsapiens.Config{BaseURL: url, APIKey: netsapiens.Secret(sim.APIKey()), Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	keys, err := session.NewKeyring(testSnapshotKey, testAuditKey)
	if err != nil {
		b.Fatal(err)
	}
	eng, err := remediate.New(pbx, store, remediate.Config{Owner: "bench", Logger: zerolog.Nop(), Keys: keys})
	if err != nil {
		b.Fatal(err)
	}
	return eng, store
}

// BenchmarkContainment measures time to containment: open an incident and run deny (GET user,
// dial policy checks, write-ahead, PUT, verify, end live calls), then restore to reset the user
// for the next iteration (restore is not timed). Sub-benchmarks add PBX latency per request, so the
// result can be read against the PBX round-trip floor (the number of sequential PBX requests × latency).
func BenchmarkContainment(b *testing.B) {
	for _, lat := range []time.Duration{0, 5 * time.Millisecond} {
		b.Run("pbx-latency="+lat.String(), func(b *testing.B) {
			eng, _ := benchEngine(b, lat)
			ctx := context.Background()
			for b.Loop() {
				inc, _, err := eng.Open(ctx, remediate.OpenRequest{User: "1001", Domain: "acme.example", Actor: "U1", Channel: "C1"})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := eng.Run(ctx, inc.ID, session.StepDeny, "U1", remediate.RunOptions{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := eng.Run(ctx, inc.ID, session.StepRestore, "U1", remediate.RunOptions{}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkFullRunbook measures the whole runbook (deny, recreate 2 devices, reset, restore) for one user.
func BenchmarkFullRunbook(b *testing.B) {
	eng, _ := benchEngine(b, 0)
	ctx := context.Background()
	for b.Loop() {
		inc, _, err := eng.Open(ctx, remediate.OpenRequest{User: "1001", Domain: "acme.example", Actor: "U1", Channel: "C1"})
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range session.Steps {
			if _, err := eng.Run(ctx, inc.ID, s, "U1", remediate.RunOptions{}); err != nil {
				b.Fatalf("%s: %v", s, err)
			}
		}
	}
}
