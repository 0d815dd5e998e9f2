//go:build !nosim

package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// runDrill runs the whole runbook, with an approval by a second person, against the built-in
// NetSapiens simulator: the same engine and store as `serve`, no credentials needed. It is how a
// new team sees what the bot does, and how an operator proves a deployment's Redis works.
func runDrill(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("drill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	target := fs.String("user", "1001@acme.example", "demo user to respond to (user@domain in the simulator's demo tenant)")
	redisURL := fs.String("redis", getenv("REDIS_URL"), "Redis URL; empty = start a throw-away redis-server if one is installed, else redis://localhost:6379/0")
	if err := fs.Parse(args); err != nil {
		return err
	}
	user, domain, ok := strings.Cut(*target, "@")
	if !ok || netsapiens.ValidateUser(user) != nil || netsapiens.ValidateDomain(domain) != nil {
		return fmt.Errorf("drill: -user must be user@domain, got %q", *target)
	}
	domain = strings.ToLower(domain)
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }

	// The simulator, on a loopback port of its own.
	sim := nstest.New(nstest.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("drill: listen for the simulator: %w", err)
	}
	hs := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	baseURL := "http://" + ln.Addr().String() + nstest.BasePath
	say("PBX simulator  %s (demo tenant)", baseURL)

	rdb, stopRedis, where, err := drillRedis(ctx, *redisURL)
	if err != nil {
		return err
	}
	defer stopRedis()
	defer rdb.Close()
	say("Redis          %s", where)

	// Fresh keys for this drill: the audit chain is HMACed and snapshot credentials are sealed, as in production.
	auditKey, snapKey := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(auditKey)
	_, _ = rand.Read(snapKey)
	log := zerolog.Nop()
	// The drill's keys stand apart from the bot's: "<REDIS_KEY_PREFIX>drill:…" (crdrill by default).
	prefix := getenv("REDIS_KEY_PREFIX")
	if prefix == "" {
		prefix = session.DefaultPrefix
	}
	store, err := session.New(session.Config{Client: rdb, AuditKey: auditKey, Prefix: prefix + "drill", Logger: log})
	if err != nil {
		return fmt.Errorf("drill: %w", err)
	}
	keys, err := session.NewKeyring(snapKey, auditKey)
	if err != nil {
		return fmt.Errorf("drill: %w", err)
	}
	pbx, err := netsapiens.New(netsapiens.Config{BaseURL: baseURL, APIKey: netsapiens.Secret(sim.APIKey()), Logger: log})
	if err != nil {
		return fmt.Errorf("drill: %w", err)
	}
	eng, err := remediate.New(pbx, store, remediate.Config{
		ApprovalSteps: []session.Step{session.StepRestore}, Owner: "drill", Logger: log, Keys: keys,
	})
	if err != nil {
		return fmt.Errorf("drill: %w", err)
	}

	const alice, bob = "cli:alice", "cli:bob"
	if _, ok := sim.User(domain, user); !ok {
		return fmt.Errorf("drill: %s@%s is not in the demo tenant (try 1001@acme.example)", user, domain)
	}
	if inc, err := store.FindOpen(ctx, user, domain); err == nil {
		// The drill's own leftover: closing it keeps any device it left deleted for the next run.
		_, confirm := remediate.DevicesMissing(&inc)
		if _, err := eng.Abort(ctx, inc.ID, alice, "left open by an earlier drill", confirm); err != nil {
			return fmt.Errorf("drill: close the incident an earlier drill left open: %w", err)
		}
	}
	sim.AddActiveCall(domain, user, "drill-call-1", "+88213000000")
	before := drillState(sim, domain, user)
	say("\nBefore         %s", before)

	start := time.Now()
	inc, _, err := eng.Open(ctx, remediate.OpenRequest{User: user, Domain: domain, Reason: "drill: intl calls to +882", Actor: alice, Channel: "drill"})
	if err != nil {
		return fmt.Errorf("drill: open: %w", err)
	}
	say("\n%s opened for %s by %s", inc.ID, inc.Key(), alice)

	step := func(s session.Step, actor string) (remediate.Result, error) {
		res, err := eng.Request(ctx, inc.ID, s, actor, remediate.RunOptions{})
		if err != nil {
			return res, fmt.Errorf("drill: %s: %s", s, remediate.UserMessage(err))
		}
		if res.Awaiting {
			say("  %-9s awaiting approval (requested by %s)", s, actor)
			if res, err = eng.Approve(ctx, inc.ID, s, bob); err != nil {
				return res, fmt.Errorf("drill: approve %s: %s", s, remediate.UserMessage(err))
			}
			say("  %-9s approved by %s", s, bob)
		}
		st := res.Incident.Step(s)
		say("  %-9s %s · %s", s, st.Status, st.Summary)
		for _, sub := range st.SubResults {
			say("              %s [%s] %s", sub.Name, strings.ReplaceAll(string(sub.Outcome), "_", " "), sub.Detail)
		}
		for _, sec := range res.Secrets {
			// A drill never prints a secret either: the bot would send it to the requester only.
			say("              → to %s only: %s (%d characters, not shown)", actor, sec.Label, len(sec.Value.Reveal()))
		}
		return res, nil
	}
	if _, err := step(session.StepDeny, alice); err != nil {
		return err
	}
	contained := time.Since(start)
	for _, s := range []session.Step{session.StepRecreate, session.StepReset, session.StepRestore} {
		if _, err := step(s, alice); err != nil {
			return err
		}
	}
	final, err := store.Get(ctx, inc.ID)
	if err != nil {
		return fmt.Errorf("drill: %w", err)
	}
	after := drillState(sim, domain, user)
	say("\nAfter          %s", after)
	entries, err := store.Audit(ctx, inc.ID)
	if err != nil {
		return fmt.Errorf("drill: read the audit: %w", err)
	}
	say("\nAudit trail (%d entries):", len(entries))
	for _, e := range entries {
		line := fmt.Sprintf("  #%d %s %s %s", e.Seq, e.At.UTC().Format("15:04:05"), e.Actor, e.Action)
		switch {
		case e.Before != "":
			line += fmt.Sprintf(" (%s → %s)", e.Before, e.After)
		case e.After != "":
			line += fmt.Sprintf(" (→ %s)", e.After)
		}
		if e.Detail != "" {
			line += " · " + e.Detail
		}
		say("%s", line)
	}
	if err := store.Verify(ctx, inc.ID); err != nil {
		return fmt.Errorf("drill: audit chain: %w", err)
	}
	say("audit chain verified (HMAC, %d entries)", len(entries))
	if final.State != session.StateRestored || before != after {
		return fmt.Errorf("drill: the PBX did not end as it began (state %s)", final.State)
	}
	say("\nDrill passed: %s contained in %s, restored in %s; device ids, MACs, models and the dial permission are as before, with new SIP passwords and a new PIN.",
		inc.Key(), contained.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return nil
}

// drillState is what must be the same before and after the runbook: the dial policy and each
// device's id, model, MAC and line (not its password, which must change).
func drillState(sim *nstest.Server, domain, user string) string {
	u, _ := sim.User(domain, user)
	parts := []string{fmt.Sprintf("dial-policy=%v", u["dial-policy"])}
	for _, d := range sim.Devices(domain, user) {
		p := fmt.Sprintf("device %v", d["device"])
		for _, f := range []string{"device-models-model", "device-provisioning-mac-address", "device-provisioning-line"} {
			if v, ok := d[f]; ok && v != nil && v != "" {
				p += fmt.Sprintf(" %v", v)
			}
		}
		parts = append(parts, p)
	}
	for _, ph := range sim.Phones(domain) {
		for i := 1; i <= 8; i++ {
			if v, ok := ph["device-provisioning-sip-uri-"+strconv.Itoa(i)].(string); ok && strings.Contains(v, ":"+user) {
				parts = append(parts, fmt.Sprintf("phone %v line %d=%s", ph["device-provisioning-mac-address"], i, v))
			}
		}
	}
	return strings.Join(parts, " · ")
}

// drillRedis connects to url (any REDIS_URL form: one server, Sentinel, Cluster), or (url empty)
// starts a throw-away redis-server with AOF in a temporary directory if one is installed, falling
// back to redis://localhost:6379/0.
func drillRedis(ctx context.Context, url string) (rdb redis.UniversalClient, stop func(), where string, err error) {
	stop = func() {}
	if url == "" {
		rdb, stop, where, err := startDrillRedis(ctx)
		if !errors.Is(err, testenv.ErrNoRedisServer) {
			return rdb, stop, where, err
		}
		url = "redis://localhost:6379/0"
	}
	opt, err := session.ParseRedisURL(url)
	if err != nil {
		return nil, stop, "", fmt.Errorf("drill: REDIS_URL: %w", err)
	}
	rdb = redis.NewUniversalClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, stop, "", fmt.Errorf("drill: Redis at %s does not answer (%v): install redis-server (apt-get install redis-server) or set REDIS_URL", session.RedactURL(url), err)
	}
	return rdb, stop, session.RedactURL(url), nil
}

// startDrillRedis starts a throw-away redis-server (testenv's launcher, the tests' own).
func startDrillRedis(ctx context.Context) (redis.UniversalClient, func(), string, error) {
	dir, err := os.MkdirTemp("", "bot-drill-redis-")
	if err != nil {
		return nil, nil, "", fmt.Errorf("drill: %w", err)
	}
	srv, err := testenv.Launch(ctx, dir)
	if err != nil {
		os.RemoveAll(dir)
		if errors.Is(err, testenv.ErrNoRedisServer) {
			return nil, nil, "", err
		}
		return nil, nil, "", fmt.Errorf("drill: the throw-away redis-server: %w", err)
	}
	stop := func() {
		srv.Kill()
		os.RemoveAll(dir)
	}
	return redis.NewClient(&redis.Options{Addr: srv.Addr}), stop, "throw-away redis-server on " + srv.Addr + " (AOF, appendfsync always)", nil
}
