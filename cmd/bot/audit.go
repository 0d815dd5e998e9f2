package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/compromised-responder/bot/internal/session"
)

const auditUsage = `usage: bot audit <INC-…> [--format text|jsonl] [--verify]
       bot audit --verify-all

  The evidence bundle of one incident: the incident, its write-ahead snapshots (no secrets), every
  step, the before → after of every PBX change and every audit entry with its chain link (prev_mac,
  mac); all times UTC. Reads REDIS_URL and AUDIT_KEY (plus SNAPSHOT_KEY, RETENTION) like bot serve.

  --format text|jsonl  text for people (default), or one JSON object per line with a "type" field
  --verify             recompute the incident's audit chain; exit 1 naming the first entry that was
                       changed, removed or reordered
  --verify-all         verify the global chain and the chain of every incident it names (and every
                       open incident); exit 1 if any does not verify

  Exit status: 0 done (and verified), 1 a chain does not verify or Redis failed, 2 usage or no such
  incident.
`

// runAudit prints the evidence bundle of one incident, or verifies every audit chain.
func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	format := fs.String("format", "text", "text or jsonl")
	verify := fs.Bool("verify", false, "recompute the incident's audit chain")
	verifyAll := fs.Bool("verify-all", false, "verify the global chain and every incident's chain")
	pos, done, err := parseCLI(fs, args, auditUsage, stdout, stderr)
	if done || err != nil {
		return err
	}
	if *format != "text" && *format != "jsonl" {
		return exitf(exitUsage, "audit: --format must be text or jsonl, got %q", *format)
	}
	var id string
	switch {
	case *verifyAll && len(pos) > 0:
		return exitf(exitUsage, "audit: --verify-all takes no incident (it verifies them all)")
	case *verifyAll:
	case len(pos) != 1:
		fmt.Fprint(stderr, auditUsage)
		return exitf(exitUsage, "audit: name one incident (INC-…), or use --verify-all")
	default:
		var ok bool
		if id, ok = session.NormalizeID(pos[0]); !ok {
			return exitf(exitUsage, "audit: %q is not an incident ID (INC- and 6 characters)", pos[0])
		}
	}
	cfg, err := cliConfig("audit", getenv, false)
	if err != nil {
		return err
	}
	store, rdb, err := openCLIStore(ctx, cfg, cliLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer rdb.Close()
	if *verifyAll {
		return verifyAllChains(ctx, store, stdout)
	}

	b, err := collectBundle(ctx, store, id, len(cfg.AuditKey) > 0)
	if errors.Is(err, session.ErrNotFound) {
		return exitf(exitUsage, "audit: no incident %s (it may have expired after RETENTION)", id)
	}
	if err != nil {
		return fmt.Errorf("audit %s: %w", id, err)
	}
	var verr error
	if *verify {
		verr = store.Verify(ctx, id)
		b.verify = &verifyRecord{Type: "verify", Chain: id, OK: verr == nil, Entries: len(b.audit)}
		if verr != nil {
			b.verify.Error = verifyMessage(verr)
			var ae *session.AuditError
			if errors.As(verr, &ae) {
				b.verify.FirstBad = ae.Seq
			}
		}
	}
	if *format == "jsonl" {
		err = b.writeJSONL(stdout)
	} else {
		err = b.writeText(stdout)
	}
	if err != nil {
		return fmt.Errorf("audit: write: %w", err)
	}
	if verr != nil {
		return exitf(exitFailed, "audit: %s", verifyMessage(verr))
	}
	return nil
}

// verifyMessage says why a chain does not verify, with what to do when the key is missing.
func verifyMessage(err error) string {
	if errors.Is(err, session.ErrNoKey) {
		return err.Error() + ": the chain was written with AUDIT_KEY; set the same AUDIT_KEY to verify it"
	}
	return err.Error()
}

// verifyAllChains verifies the global chain, then the chain of every incident named in it or
// open. An incident the global chain names but Redis no longer has expired after RETENTION and is
// reported, not failed: its entries stay verifiable as part of the global chain.
func verifyAllChains(ctx context.Context, store *session.Store, stdout io.Writer) error {
	var bad []string
	report := func(name string, err error, entries int64) {
		if err != nil {
			bad = append(bad, name)
			fmt.Fprintf(stdout, "%-12s FAILED: %s\n", name, verifyMessage(err))
			return
		}
		fmt.Fprintf(stdout, "%-12s verified (%d entries)\n", name, entries)
	}
	gerr := store.Verify(ctx, "")
	gseq, _, _ := store.AuditHead(ctx, "")
	report("global", gerr, gseq)

	var ids []string
	seen := map[string]bool{}
	add := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	entries, err := store.GlobalAudit(ctx, 0, 0)
	if err != nil {
		fmt.Fprintf(stdout, "global chain unreadable (%v): checking the open incidents only\n", err)
	}
	for _, e := range entries {
		add(e.IncidentID)
	}
	open, err := store.ListOpen(ctx)
	if err != nil {
		return fmt.Errorf("audit: list open incidents: %w", err)
	}
	for _, inc := range open {
		add(inc.ID)
	}
	expired := 0
	for _, id := range ids {
		err := store.Verify(ctx, id)
		if errors.Is(err, session.ErrNotFound) {
			expired++
			fmt.Fprintf(stdout, "%-12s expired (RETENTION); its entries are in the global chain\n", id)
			continue
		}
		seq, _, _ := store.AuditHead(ctx, id)
		report(id, err, seq)
	}
	fmt.Fprintf(stdout, "%d chain(s) checked, %d expired, %d failed\n", 1+len(ids)-expired, expired, len(bad))
	if len(bad) > 0 {
		return exitf(exitFailed, "audit: %d chain(s) do not verify: %s", len(bad), strings.Join(bad, ", "))
	}
	return nil
}
