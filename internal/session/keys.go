package session

import (
	"fmt"
	"strings"

	"github.com/compromised-responder/bot/internal/netsapiens"
)

// Key layout. Everything about one user and their incidents shares the hash tag {user@domain}, so
// that every multi-key script runs on one Redis Cluster slot:
//
//	<p>:{u@d}:open                  string: ID of the user's open incident (at most one)
//	<p>:{u@d}:original              JSON Original: last known original dial policy, outlives incidents
//	<p>:{u@d}:devices               JSON []DeviceSnapshot: devices deleted and never re-created, outlive incidents
//	<p>:{u@d}:denied                set: every deny policy the bot set for the user (never an original)
//	<p>:{u@d}:inc:<ID>              hash: v = version, data = JSON Incident
//	<p>:{u@d}:inc:<ID>:audit        list: the incident's audit chain (JSON AuditEntry, seq = index+1)
//	<p>:{u@d}:inc:<ID>:audit:head   hash: seq, mac of the chain's last entry (detects a truncated tail)
//
// Global keys, written as separate idempotent steps that Repair can redo:
//
//	<p>:id:<ID>                     string: user@domain of an incident (ID → keys)
//	<p>:open                        set: IDs of open incidents
//	<p>:{audit}:log, :head          the global audit chain, like an incident's
//	<p>:{audit}:mirrored            hash: incident ID → highest incident seq copied into the global chain
//	<p>:cards:pending               set: IDs of incidents whose card a running `bot serve` must still post
//	<p>:repair:claim                string, TTL the repair period: one replica runs Repair per period
//
// A lockdown (many users on one card, lockdown.go) has keys of its own under the hash tag of its
// ID; its members' incidents keep their users' tags, so no script spans a lockdown and a member:
//
//	<p>:{LCK-…}:lockdown            hash: v = version, data = JSON Lockdown (members, runs, thread lines)
//	<p>:lockdowns:open              set: IDs of open lockdowns (Reconcile resumes their fan-outs)
//
// The Slack app's bookkeeping (slacksync.go), short-lived or bounded by the retention; an
// incident's three sync keys share the hash tag {INC-…} because its scripts touch two of them:
//
//	<p>:slackui:seen:<delivery>     string, TTL DeliveryTTL: a delivery (envelope, trigger, click) was handled
//	<p>:slackui:{<ID>}:lock         string, TTL SyncLockTTL: token of the replica syncing the card and thread
//	<p>:slackui:{<ID>}:card         string, TTL retention: stamp of the newest render on the card
//	<p>:slackui:{<ID>}:posted       string, TTL retention: seq of the last audit entry posted to the thread
//	<p>:slackui:head:posted         string, TTL retention: global audit seq last posted to AUDIT_CHANNEL
//	<p>:slackui:head:throttle       string, TTL HeadEvery: one replica posts the head per period
//
// Every key name is built below and nowhere else.
type keys struct{ p string }

func (k keys) tag(user, domain string) string { return k.p + ":{" + user + "@" + domain + "}" }

func (k keys) openPtr(user, domain string) string  { return k.tag(user, domain) + ":open" }
func (k keys) original(user, domain string) string { return k.tag(user, domain) + ":original" }
func (k keys) keptDevices(user, domain string) string {
	return k.tag(user, domain) + ":devices"
}
func (k keys) denied(user, domain string) string  { return k.tag(user, domain) + ":denied" }
func (k keys) inc(user, domain, id string) string { return k.tag(user, domain) + ":inc:" + id }
func (k keys) audit(user, domain, id string) string {
	return k.inc(user, domain, id) + ":audit"
}
func (k keys) auditHead(user, domain, id string) string {
	return k.inc(user, domain, id) + ":audit:head"
}

// openPtrPattern matches every user's open pointer (SCAN, for Repair); openPtrUser inverts openPtr.
func (k keys) openPtrPattern() string { return k.p + ":{*}:open" }
func (k keys) openPtrUser(key string) (user, domain string, ok bool) {
	tag, ok := strings.CutPrefix(key, k.p+":{")
	if !ok {
		return "", "", false
	}
	if tag, ok = strings.CutSuffix(tag, "}:open"); !ok {
		return "", "", false
	}
	return splitKey(tag)
}

func (k keys) idIndex(id string) string { return k.p + ":id:" + id }
func (k keys) openSet() string          { return k.p + ":open" }
func (k keys) globalLog() string        { return k.p + ":{audit}:log" }
func (k keys) globalHead() string       { return k.p + ":{audit}:head" }
func (k keys) globalMirrored() string   { return k.p + ":{audit}:mirrored" }
func (k keys) cardsPending() string     { return k.p + ":cards:pending" }
func (k keys) repairClaim() string      { return k.p + ":repair:claim" }

func (k keys) lockdown(id string) string { return k.p + ":{" + id + "}:lockdown" }
func (k keys) lockdownsOpen() string     { return k.p + ":lockdowns:open" }

func (k keys) seen(delivery string) string { return k.p + ":slackui:seen:" + delivery }
func (k keys) syncLock(id string) string   { return k.p + ":slackui:{" + id + "}:lock" }
func (k keys) syncCard(id string) string   { return k.p + ":slackui:{" + id + "}:card" }
func (k keys) syncPosted(id string) string { return k.p + ":slackui:{" + id + "}:posted" }
func (k keys) headPosted() string          { return k.p + ":slackui:head:posted" }
func (k keys) headThrottle() string        { return k.p + ":slackui:head:throttle" }

// validName reports whether s is 1..max characters of [A-Za-z0-9._-], for the key prefix and key
// IDs: it keeps braces and colons out of key names. (Users and domains are checked by netsapiens.)
func validName(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// canon validates user and domain (netsapiens' rule, which also keeps braces and colons out of
// key names) and returns them canonical: the user as given (as the PBX returns it), the domain
// lower-cased.
func canon(user, domain string) (string, string, error) {
	domain = strings.ToLower(domain)
	if netsapiens.ValidateUser(user) != nil || netsapiens.ValidateDomain(domain) != nil {
		return "", "", fmt.Errorf("user@domain %q: %w", user+"@"+domain, ErrInvalid)
	}
	return user, domain, nil
}

// splitKey splits the "user@domain" stored in the ID index.
func splitKey(ud string) (string, string, bool) {
	i := strings.LastIndexByte(ud, '@')
	if i <= 0 || i == len(ud)-1 {
		return "", "", false
	}
	return ud[:i], ud[i+1:], true
}
