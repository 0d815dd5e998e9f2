package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compromised-responder/bot/internal/evidence"
	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/slacksocket"
)

// config is everything `bot serve` (and the other sub-commands) need, read once from the
// environment and flags and validated up front. Internal packages get typed values, never env.
type config struct {
	SlackAppToken string // secret
	SlackBotToken string // secret
	SlackAPIURL   string

	NSAPIURL            string
	NSAPIKey            string // secret
	NSClientID          string
	NSClientSecret      string // secret
	NSUsername          string
	NSPassword          string // secret
	NSDenyPolicy        string
	NSMaxInflight       int
	NSResetTemplate     string
	NSResetSubject      string
	NSV1APIURL          string // the v1 endpoint; "" = derived from NSAPIURL
	NSV1PortalPassword  bool   // reset sets a random portal password through v1
	RedisURL            string // may carry a password: treated as a secret in messages
	RedisKeyPrefix      string // every key is "<prefix>:…", so several bots (or tests) can share one Redis
	RedisMinReplicas    int    // replicas that must hold a write-ahead record before its PBX write; session.MinReplicasAuto = as connected
	Responders          []string
	Approvers           []string
	ApprovalSteps       []string // subset of deny, recreate, reset, restore; empty = none
	ApprovalTTL         time.Duration
	ApprovalBroadcast   bool // the approvers' page also shows in the channel (reply_broadcast)
	AuditChannel        string
	AuditKey            []byte // secret
	SnapshotKey         []byte // secret
	PINLength           int
	RemindAfter         time.Duration
	RemindEvery         time.Duration
	Retention           time.Duration
	Workers             int
	QueueSize           int
	SocketConnections   int // Socket Mode connections kept up at once
	HTTPAddr            string
	LogLevel, LogFormat string
	// Rates is the fraud evidence's rate table: RATES_FILE, or the committed one.
	Rates *evidence.Rates
	// RestoreGate holds restore until the restore gate is met (RESTORE_GATE).
	RestoreGate bool
}

// envOnly are the settings read only from the environment, never from flags: the secrets (which
// may instead come from the file named by VAR_FILE; a flag would show in ps) and the settings that
// go with them. It is what `-h` lists besides the flags.
var envOnly = []struct {
	name, def, use string
	secret         bool
}{
	{"SLACK_APP_TOKEN", "", "app-level token xapp-… (scope connections:write), required", true},
	{"SLACK_BOT_TOKEN", "", "bot token xoxb-…, required", true},
	{"NS_API_KEY", "", "NetSapiens API key (Bearer), required unless OAuth", true},
	{"NS_CLIENT_ID", "", "OAuth client ID, instead of NS_API_KEY", false},
	{"NS_CLIENT_SECRET", "", "OAuth client secret", true},
	{"NS_USERNAME", "", "OAuth user", false},
	{"NS_PASSWORD", "", "OAuth password", true},
	{"NS_RESET_EMAIL_TEMPLATE", "", "template of the user's password-reset e-mail; empty = none sent", false},
	{"REDIS_URL", defaultRedisURL, "redis:// or rediss:// URL (Sentinel: ?master_name=…&addr=…; Cluster: ?addr=…&addr=…)", true},
	{"AUDIT_KEY", "", "base64 of ≥ 32 bytes: HMAC key of the audit chain", true},
	{"SNAPSHOT_KEY", "", "base64 of 32 bytes: seals desk-phone provisioning credentials", true},
}

const defaultRedisURL = "redis://localhost:6379/0"

// helpError is returned for -h: the usage text, which run prints to stdout with exit status 0.
type helpError string

func (h helpError) Error() string        { return string(h) }
func (h helpError) Is(target error) bool { return target == flag.ErrHelp }

var (
	slackIDPattern  = regexp.MustCompile(`^[UWS][A-Z0-9]{2,20}$`)
	channelIDPatten = regexp.MustCompile(`^[CG][A-Z0-9]{2,20}$`)
)

// problems collects every configuration problem so start-up reports them all at once.
type problems []string

// maxValueLen bounds how much of a value a problem quotes, and maxProblemLen the whole line, so
// that a huge or garbage value still makes a short, clear error (the fuzz test checks both).
const (
	maxValueLen   = 80
	maxProblemLen = 600
)

// addf adds one problem. A value quoted with %q (what the operator set) longer than maxValueLen
// is cut to its start and its length; other arguments (messages the bot composed) stay whole.
func (p *problems) addf(format string, args ...any) {
	for i, verb := range verbs(format) {
		if i >= len(args) {
			break
		}
		if s, ok := args[i].(string); ok && verb == 'q' && len(s) > maxValueLen {
			args[i] = strings.ToValidUTF8(s[:maxValueLen], "") + fmt.Sprintf("…(%d bytes)", len(s))
		}
	}
	*p = append(*p, fmt.Sprintf(format, args...))
}

// verbs lists the verb letters of a format's directives in order (flags and widths skipped,
// %% not a directive): enough for the simple formats of this file.
func verbs(format string) []byte {
	var out []byte
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		i++
		for i < len(format) && strings.IndexByte("+-# 0123456789.", format[i]) >= 0 {
			i++
		}
		if i < len(format) && format[i] != '%' {
			out = append(out, format[i])
		}
	}
	return out
}

// configError lists every problem found; it never contains a secret value.
type configError struct{ list []string }

func (e *configError) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.list, "\n  - ")
}

// needs says which groups of settings a sub-command requires.
type needs struct {
	slack bool // SLACK_* tokens and RESPONDERS
	pbx   bool // NS_API_URL and credentials
}

// loadConfig reads the configuration from getenv and the non-secret flags in args (already
// stripped of the sub-command). readFile reads *_FILE secrets (os.ReadFile in production).
func loadConfig(name string, args []string, getenv func(string) string, readFile func(string) ([]byte, error), n needs) (config, error) {
	var p problems
	env := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	secret := func(k string) string {
		v, file := getenv(k), strings.TrimSpace(getenv(k+"_FILE"))
		switch {
		case v != "" && file != "":
			p.addf("%s and %s_FILE are both set: use one", k, k)
			return ""
		case file != "":
			b, err := readFile(file)
			if err != nil {
				p.addf("%s_FILE: cannot read %s: %v", k, file, errors.Unwrap(err))
				return ""
			}
			return strings.TrimSpace(string(b))
		}
		return strings.TrimSpace(v)
	}

	c := config{
		SlackAppToken:   secret("SLACK_APP_TOKEN"),
		SlackBotToken:   secret("SLACK_BOT_TOKEN"),
		NSAPIKey:        secret("NS_API_KEY"),
		NSClientSecret:  secret("NS_CLIENT_SECRET"),
		NSPassword:      secret("NS_PASSWORD"),
		NSClientID:      env("NS_CLIENT_ID", ""),
		NSUsername:      env("NS_USERNAME", ""),
		RedisURL:        secret("REDIS_URL"),
		NSResetTemplate: env("NS_RESET_EMAIL_TEMPLATE", ""),
	}
	if c.RedisURL == "" {
		c.RedisURL = defaultRedisURL
	}
	auditKey, snapKey := secret("AUDIT_KEY"), secret("SNAPSHOT_KEY")

	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(discard{})
	var help strings.Builder // the -h text: each flag with its variable and built-in default
	fmt.Fprintf(&help, "usage: bot %s [flags]\n\nFlags; each may instead be set by the environment variable beside it (a flag wins):\n", name)
	str := func(dst *string, flagName, k, def, use string) {
		fs.StringVar(dst, flagName, env(k, def), use+" ("+k+")")
		if def != "" {
			use += fmt.Sprintf(" (default %q)", def)
		}
		fmt.Fprintf(&help, "  -%-23s %-23s %s\n", flagName, k, use)
	}
	var responders, approvers, approvalSteps, approvalBroadcast string
	str(&c.SlackAPIURL, "slack-api-url", "SLACK_API_URL", "https://slack.com/api/", "Slack Web API base URL, ends with /")
	str(&c.NSAPIURL, "ns-api-url", "NS_API_URL", "", "NetSapiens API v2 base URL (required)")
	str(&c.NSDenyPolicy, "ns-deny-policy", "NS_DENY_POLICY", remediate.DefaultDenyPolicy, "dial policy that blocks all calls")
	str(&c.NSResetSubject, "ns-reset-email-subject", "NS_RESET_EMAIL_SUBJECT", remediate.DefaultEmailSubject, "subject of the reset e-mail")
	str(&responders, "responders", "RESPONDERS", "", "Slack user/user-group IDs allowed to use the bot (required)")
	str(&approvers, "approvers", "APPROVERS", "", "Slack user/user-group IDs allowed to approve; empty = RESPONDERS")
	str(&approvalSteps, "approval-steps", "APPROVAL_STEPS", "restore", "steps that need a second person's approval, or none")
	str(&approvalBroadcast, "approval-broadcast", "APPROVAL_BROADCAST", "false", "also show the approvers' page of a request in the channel, not only in the card's thread (true or false)")
	str(&c.AuditChannel, "audit-channel", "AUDIT_CHANNEL", "", "channel ID that mirrors the audit")
	str(&c.RedisKeyPrefix, "redis-key-prefix", "REDIS_KEY_PREFIX", session.DefaultPrefix, "prefix of every Redis key")
	var minReplicas string
	str(&minReplicas, "redis-min-replicas", "REDIS_MIN_REPLICAS", "auto", "replicas that must acknowledge the original and the device snapshot before the PBX write, 0 to 16, or auto (as many as the primary has connected)")
	str(&c.HTTPAddr, "http-addr", "HTTP_ADDR", ":8080", "listener for /healthz, /readyz, /metrics")
	str(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "trace, debug, info, warn or error")
	str(&c.LogFormat, "log-format", "LOG_FORMAT", "json", "json or console")
	var ratesFile, restoreGate, v1Portal string
	str(&v1Portal, "ns-v1-portal-password", "NS_V1_PORTAL_PASSWORD", "false", "reset sets a random portal password through the v1 API (object=subscriber&action=update, pwd), shown only to the requester (true or false)")
	str(&c.NSV1APIURL, "ns-v1-api-url", "NS_V1_API_URL", "", "NetSapiens v1 API endpoint, e.g. https://pbx.example.com/ns-api/; empty = NS_API_URL without its v2")
	str(&restoreGate, "restore-gate", "RESTORE_GATE", "true", "hold restore while an international or premium call happened since containment or a re-created device has not registered again; over it only through its own confirmation (true or false)")
	str(&ratesFile, "rates-file", "RATES_FILE", "", "JSON rate table of the fraud evidence (prefix, label, class, per-minute rate); empty = the built-in one")
	ints := []struct {
		dst           *int
		flag          string
		env, def, use string
		min, max      int
	}{
		{&c.NSMaxInflight, "ns-max-inflight", "NS_MAX_INFLIGHT", "8", "most concurrent requests to the PBX", 1, 256},
		{&c.PINLength, "pin-length", "PIN_LENGTH", "6", "digits of a new voicemail PIN", 4, 12},
		{&c.Workers, "workers", "WORKERS", "16", "workers that run commands and steps from the queue", 1, 1024},
		{&c.QueueSize, "queue-size", "QUEUE_SIZE", "1000", "most commands and clicks waiting for a worker (then: busy, try again)", 1, 100000},
		{&c.SocketConnections, "socket-connections", "SOCKET_CONNECTIONS", "2", "Socket Mode connections kept up at once, so Slack's refresh of one leaves another to deliver on (Slack allows 10 per app, every replica's counted)", 1, slacksocket.MaxConnections},
	}
	intVals := make([]string, len(ints))
	for i, v := range ints {
		str(&intVals[i], v.flag, v.env, v.def, fmt.Sprintf("%s, %d to %d", v.use, v.min, v.max))
	}
	durs := []struct {
		dst           *time.Duration
		flag          string
		env, def, use string
		min           time.Duration
	}{
		{&c.ApprovalTTL, "approval-ttl", "APPROVAL_TTL", "1h", "how long an approval request stays valid", time.Minute},
		{&c.RemindAfter, "remind-after", "REMIND_AFTER", "30m", "first reminder of an incident still in Deny All", time.Minute},
		{&c.RemindEvery, "remind-every", "REMIND_EVERY", "2h", "interval of the reminders after that", time.Minute},
		{&c.Retention, "retention", "RETENTION", "2160h", "how long a closed incident and its audit are kept", time.Hour},
	}
	durVals := make([]string, len(durs))
	for i, v := range durs {
		str(&durVals[i], v.flag, v.env, v.def, v.use)
	}
	help.WriteString("\nRead only from the environment (a secret also from the file named by VAR_FILE, e.g. SLACK_BOT_TOKEN_FILE):\n")
	for _, v := range envOnly {
		use := v.use
		if v.secret {
			use += "; secret"
		}
		if v.def != "" {
			use += fmt.Sprintf(" (default %q)", v.def)
		}
		fmt.Fprintf(&help, "  %-24s %s\n", v.name, use)
	}
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return c, helpError(help.String())
	} else if err != nil {
		p.addf("flags: %v (secrets are read only from the environment or *_FILE)", err)
	} else if fs.NArg() > 0 {
		p.addf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	for i, v := range ints {
		n, err := strconv.Atoi(strings.TrimSpace(intVals[i]))
		if err != nil || n < v.min || n > v.max {
			p.addf("%s must be a whole number from %d to %d, got %q", v.env, v.min, v.max, intVals[i])
			n, _ = strconv.Atoi(v.def)
		}
		*v.dst = n
	}
	for i, v := range durs {
		d, err := time.ParseDuration(strings.TrimSpace(durVals[i]))
		if err != nil || d < v.min {
			p.addf("%s must be a duration of at least %s (e.g. %s), got %q", v.env, v.min, v.def, durVals[i])
			d, _ = time.ParseDuration(v.def)
		}
		*v.dst = d
	}

	// Slack.
	if n.slack {
		if c.SlackAppToken == "" {
			p.addf("SLACK_APP_TOKEN is required (app-level token xapp-…, scope connections:write)")
		} else if !strings.HasPrefix(c.SlackAppToken, "xapp-") {
			p.addf("SLACK_APP_TOKEN must start with xapp- (an app-level token)")
		}
		if c.SlackBotToken == "" {
			p.addf("SLACK_BOT_TOKEN is required (bot token xoxb-…)")
		} else if !strings.HasPrefix(c.SlackBotToken, "xoxb-") {
			p.addf("SLACK_BOT_TOKEN must start with xoxb- (a bot token)")
		}
		if u, err := url.Parse(c.SlackAPIURL); err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && netsapiens.IsLoopback(u.Hostname()))) || !strings.HasSuffix(c.SlackAPIURL, "/") {
			p.addf("SLACK_API_URL must be an https:// URL ending in / (http:// only on loopback), got %q", c.SlackAPIURL)
		}
		c.Responders = idList(&p, "RESPONDERS", responders)
		if len(c.Responders) == 0 && !hasProblem(p, "RESPONDERS") {
			p.addf("RESPONDERS is required: a comma list of Slack user IDs (U…/W…) and user-group IDs (S…); an empty list would let nobody in")
		}
		c.Approvers = idList(&p, "APPROVERS", approvers)
		if len(c.Approvers) == 0 {
			c.Approvers = c.Responders
		}
		if c.AuditChannel != "" && !channelIDPatten.MatchString(c.AuditChannel) {
			p.addf("AUDIT_CHANNEL must be a channel ID (C…/G…), got %q", c.AuditChannel)
		}
	}
	if b, err := strconv.ParseBool(strings.TrimSpace(approvalBroadcast)); err != nil {
		p.addf("APPROVAL_BROADCAST must be true or false, got %q", approvalBroadcast)
	} else {
		c.ApprovalBroadcast = b
	}
	switch s := strings.ToLower(strings.TrimSpace(approvalSteps)); s {
	case "none", "":
	default:
		seen := map[string]bool{}
		for _, st := range strings.Split(s, ",") {
			st = strings.TrimSpace(st)
			if _, ok := remediate.Def(session.Step(st)); !ok {
				p.addf("APPROVAL_STEPS: unknown step %q (use %s, or none)", st, stepList())
				continue
			}
			if !seen[st] {
				seen[st] = true
				c.ApprovalSteps = append(c.ApprovalSteps, st)
			}
		}
	}

	// PBX.
	if n.pbx {
		if c.NSAPIURL == "" {
			p.addf("NS_API_URL is required, e.g. https://pbx.example.com/ns-api/v2")
		} else if !pbxURL(c.NSAPIURL) {
			p.addf("NS_API_URL must be an https:// URL (http:// only on loopback), got %q", session.RedactURL(c.NSAPIURL))
		}
		oauth := c.NSClientID != "" || c.NSClientSecret != "" || c.NSUsername != "" || c.NSPassword != ""
		switch {
		case c.NSAPIKey != "" && oauth:
			p.addf("set either NS_API_KEY or the OAuth settings (NS_CLIENT_ID, NS_CLIENT_SECRET, NS_USERNAME, NS_PASSWORD), not both")
		case c.NSAPIKey == "" && !oauth:
			p.addf("NS_API_KEY is required (or OAuth: NS_CLIENT_ID, NS_CLIENT_SECRET, NS_USERNAME, NS_PASSWORD)")
		case oauth:
			for _, kv := range [][2]string{{"NS_CLIENT_ID", c.NSClientID}, {"NS_CLIENT_SECRET", c.NSClientSecret}, {"NS_USERNAME", c.NSUsername}, {"NS_PASSWORD", c.NSPassword}} {
				if kv[1] == "" {
					p.addf("%s is required with OAuth (or use NS_API_KEY instead)", kv[0])
				}
			}
		}
		if strings.TrimSpace(c.NSDenyPolicy) == "" || strings.ContainsAny(c.NSDenyPolicy, "/\x00\r\n") {
			p.addf("NS_DENY_POLICY must name a dial policy, got %q", c.NSDenyPolicy)
		}
	}
	if _, err := session.ParseRedisURL(c.RedisURL); err != nil {
		p.addf("REDIS_URL: %v", err)
	}
	c.RedisMinReplicas = session.MinReplicasAuto
	if v := strings.ToLower(strings.TrimSpace(minReplicas)); v != "auto" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 16 {
			p.addf("REDIS_MIN_REPLICAS must be auto or a whole number from 0 to 16, got %q", minReplicas)
		} else {
			c.RedisMinReplicas = n
		}
	}
	if err := session.CheckPrefix(c.RedisKeyPrefix); err != nil {
		p.addf("REDIS_KEY_PREFIX: %v", err)
	}
	if auditKey != "" {
		if b, err := base64.StdEncoding.DecodeString(auditKey); err != nil || len(b) < 32 {
			p.addf("AUDIT_KEY must be base64 of at least 32 bytes (e.g. `openssl rand -base64 32`)")
		} else {
			c.AuditKey = b
		}
	}
	if snapKey != "" {
		if b, err := base64.StdEncoding.DecodeString(snapKey); err != nil || len(b) != 32 {
			p.addf("SNAPSHOT_KEY must be base64 of exactly 32 bytes (e.g. `openssl rand -base64 32`)")
		} else {
			c.SnapshotKey = b
		}
	}
	if b, err := strconv.ParseBool(strings.TrimSpace(v1Portal)); err != nil {
		p.addf("NS_V1_PORTAL_PASSWORD must be true or false, got %q", v1Portal)
	} else {
		c.NSV1PortalPassword = b
	}
	if c.NSV1APIURL != "" && !pbxURL(c.NSV1APIURL) {
		p.addf("NS_V1_API_URL must be an https:// URL (http:// only on loopback), got %q", session.RedactURL(c.NSV1APIURL))
	}
	if b, err := strconv.ParseBool(strings.TrimSpace(restoreGate)); err != nil {
		p.addf("RESTORE_GATE must be true or false, got %q", restoreGate)
	} else {
		c.RestoreGate = b
	}
	c.Rates = evidence.Default()
	if f := strings.TrimSpace(ratesFile); f != "" {
		if b, err := readFile(f); err != nil {
			p.addf("RATES_FILE: cannot read %s: %v", f, errors.Unwrap(err))
		} else if r, err := evidence.Parse(b); err != nil {
			p.addf("RATES_FILE %s: %s", f, strings.ReplaceAll(err.Error(), "\n", "; "))
		} else {
			c.Rates = r
		}
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		p.addf("LOG_FORMAT must be json or console, got %q", c.LogFormat)
	}
	switch strings.ToLower(c.LogLevel) {
	case "trace", "debug", "info", "warn", "error":
	default:
		p.addf("LOG_LEVEL must be trace, debug, info, warn or error, got %q", c.LogLevel)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		p.addf("HTTP_ADDR must be host:port or :port, got %q", c.HTTPAddr)
	}
	if len(p) > 0 {
		return c, &configError{list: p}
	}
	return c, nil
}

// warnings names risky but valid settings; start-up logs them and /readyz shows them.
func (c config) warnings() []string {
	var w []string
	if len(c.ApprovalSteps) > 0 {
		users, groups := 0, 0
		for _, id := range c.Approvers {
			if strings.HasPrefix(id, "S") {
				groups++
			} else {
				users++
			}
		}
		if groups == 0 && users < 2 {
			w = append(w, fmt.Sprintf("APPROVAL_STEPS is %s but APPROVERS names fewer than two people: a lone on-call could never approve", strings.Join(c.ApprovalSteps, ",")))
		}
	}
	if len(c.AuditKey) == 0 {
		w = append(w, "AUDIT_KEY is not set: the audit chain uses plain hashes (detects edits, not a forger with Redis access)")
	}
	if len(c.SnapshotKey) == 0 {
		w = append(w, "SNAPSHOT_KEY is not set: device provisioning credentials cannot be kept and must be entered again after a re-create")
	}
	if c.NSV1PortalPassword && c.NSV1APIURL == "" && netsapiens.V1BaseFor(c.NSAPIURL) == strings.TrimRight(c.NSAPIURL, "/")+"/" {
		// The v1 endpoint is derived by dropping NS_API_URL's /v2; without one it is the v2 base
		// itself, and the mistake would show only as a PBX error at the first reset.
		w = append(w, "NS_V1_PORTAL_PASSWORD is on but NS_API_URL does not end in /v2 and NS_V1_API_URL is not set: "+
			"the v1 API is assumed at "+session.RedactURL(netsapiens.V1BaseFor(c.NSAPIURL))+"; set NS_V1_API_URL if it is elsewhere")
	}
	return w
}

// stepList names the runbook's steps for a message: "deny, recreate, reset, restore".
func stepList() string {
	var names []string
	for _, d := range remediate.Runbook() {
		names = append(names, string(d.Step))
	}
	return strings.Join(names, ", ")
}

// needsApproval reports whether step is in APPROVAL_STEPS.
func (c config) needsApproval(step string) bool {
	for _, s := range c.ApprovalSteps {
		if s == step {
			return true
		}
	}
	return false
}

func idList(p *problems, name, s string) []string {
	var out []string
	seen := map[string]bool{}
	bad := 0
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slackIDPattern.MatchString(f) {
			// A list of thousands of bad entries is named by its first few and a count.
			if bad++; bad <= maxBadIDs {
				p.addf("%s: %q is not a Slack user ID (U…/W…) or user-group ID (S…)", name, f)
			}
			continue
		}
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	if bad > maxBadIDs {
		p.addf("%s: %d more entries are not Slack user or user-group IDs", name, bad-maxBadIDs)
	}
	sort.Strings(out)
	return out
}

// pbxURL reports whether raw is a URL the PBX client accepts: https, or http on a loopback host.
func pbxURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Host != "" && (u.Scheme == "https" || u.Scheme == "http" && netsapiens.IsLoopback(u.Hostname()))
}

// maxBadIDs is how many bad entries of one ID list are named one by one.
const maxBadIDs = 5

func hasProblem(p problems, prefix string) bool {
	for _, s := range p {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
