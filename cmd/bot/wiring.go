package main

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// netsapiensConfig is the PBX client's configuration, the same for `serve` and `respond`.
func netsapiensConfig(cfg config, log zerolog.Logger) netsapiens.Config {
	c := netsapiens.Config{BaseURL: cfg.NSAPIURL, V1BaseURL: cfg.NSV1APIURL, MaxInflight: cfg.NSMaxInflight,
		Logger: log.With().Str("component", "netsapiens").Logger(), UserAgent: "compromised-responder/" + version}
	if cfg.NSAPIKey != "" {
		c.APIKey = netsapiens.Secret(cfg.NSAPIKey)
	} else {
		c.OAuth = &netsapiens.OAuthConfig{ClientID: cfg.NSClientID, ClientSecret: netsapiens.Secret(cfg.NSClientSecret),
			Username: cfg.NSUsername, Password: netsapiens.Secret(cfg.NSPassword)}
	}
	return c
}

// engineConfig is the runbook engine's configuration, the same for `serve` and `respond`, so
// that a step behaves alike from Slack and from a terminal. Errors: a key of the wrong length
// (loadConfig has checked them already).
func engineConfig(cfg config, owner string, log zerolog.Logger, n remediate.Notifier) (remediate.Config, error) {
	keys, err := session.NewKeyring(cfg.SnapshotKey, cfg.AuditKey)
	if err != nil {
		return remediate.Config{}, fmt.Errorf("keys: %w", err)
	}
	steps := make([]session.Step, len(cfg.ApprovalSteps))
	for i, s := range cfg.ApprovalSteps {
		steps[i] = session.Step(s)
	}
	return remediate.Config{
		DenyPolicy: cfg.NSDenyPolicy, PINLength: cfg.PINLength, ResetEmailTemplate: cfg.NSResetTemplate,
		ResetEmailSubject: cfg.NSResetSubject, ApprovalSteps: steps, ApprovalTTL: cfg.ApprovalTTL, Owner: owner,
		Logger: log.With().Str("component", "remediate").Logger(), Notifier: n, Keys: keys, Evidence: cfg.Rates,
		RestoreGate: cfg.RestoreGate, PortalPassword: cfg.NSV1PortalPassword,
	}, nil
}
