package main

import (
	"encoding/base64"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// TestServeSecretScan (issue 11 item 8) runs a whole incident that makes every kind of secret
// (deny; recreate with new SIP passwords; reset with a new PIN, a portal password set through v1
// and the reset e-mail; re-sent credentials; restore with approval) with debug logging, OAuth to
// the PBX and both keys set, then scans everything the run left behind for every old and new SIP
// password, the old and new PINs, the portal password, the OAuth and Slack tokens and the keys:
// channel messages and thread replies, ephemeral messages to others, every Web API call, every
// log line, the Redis AOF (the test's own redis-server), /metrics and the simulator's request log
// (bodies, queries, X-NetSapiens-Log tags). Only the requester's ephemeral messages (or a DM to
// her) may hold a credential, and they must: the scan first checks that it has something to look
// for.
func TestServeSecretScan(t *testing.T) {
	w := newWorld(t)
	rs := testenv.StartRedis(t)
	rdb := rs.Redis()
	store, err := session.New(session.Config{Client: rdb.Client, Prefix: rdb.Prefix})
	if err != nil {
		t.Fatal(err)
	}
	w.redis, w.store = rdb, store
	auditKey := base64.StdEncoding.EncodeToString([]byte("audit-key-0123456789abcdefghijkl"))
	snapKey := base64.StdEncoding.EncodeToString([]byte("snapshot-key-0123456789abcdefghi"))
	delete(w.env, "NS_API_KEY")
	for k, v := range map[string]string{"REDIS_URL": rdb.URL, "REDIS_KEY_PREFIX": rdb.Prefix, "LOG_LEVEL": "debug",
		"AUDIT_KEY": auditKey, "SNAPSHOT_KEY": snapKey, "NS_RESET_EMAIL_TEMPLATE": "password_reset.php",
		"NS_CLIENT_ID": "demo-client", "NS_CLIENT_SECRET": "demo-client-secret-NOT-REAL",
		"NS_USERNAME": "ops@acme.example", "NS_PASSWORD": "demo-password-NOT-REAL", "NS_V1_PORTAL_PASSWORD": "true"} {
		w.env[k] = v
	}
	w.slack.AddIM("D0ALICE", alice)
	b := w.start()

	// Every secret value the PBX ever holds for the user, read from the simulator as it goes.
	seen := map[string]string{} // value → what it is, when first seen
	add := func(v, what string) {
		if _, ok := seen[v]; !ok {
			seen[v] = what
		}
	}
	collect := func(when string) {
		for _, d := range w.pbx.Devices("acme.example", "1001") {
			for k, v := range d {
				if s, ok := v.(string); ok && s != "" && strings.Contains(k, "password") {
					add(s, when+" "+k+" of "+d["device"].(string))
				}
			}
		}
		for _, p := range w.pbx.Phones("acme.example") {
			for k, v := range p {
				if s, ok := v.(string); ok && s != "" && strings.Contains(k, "password") {
					add(s, when+" "+k+" of phone "+p["device-provisioning-mac-address"].(string))
				}
			}
		}
		if pin, _ := w.pbxUser("1001")["voicemail-login-pin"].(string); pin != "" {
			add(pin, when+" voicemail PIN")
		}
	}
	collect("old")

	w.command(alice, incChan, target+" toll fraud")
	ts, inc := w.card("1001", "acme.example")
	w.click(alice, ts, "step:deny")
	w.cardShows(ts, "deny done")
	w.click(alice, ts, "step:recreate")
	w.waitFor("recreate finished", func() bool { return w.step(inc.ID, session.StepRecreate).Status.Finished() })
	collect("new")
	w.click(alice, ts, "step:reset")
	w.waitFor("reset finished", func() bool { return w.step(inc.ID, session.StepReset).Status.Finished() })
	collect("new")
	if pwd, ok := w.pbx.PortalPassword("acme.example", "1001"); ok {
		add(pwd, "new portal password")
	} else {
		t.Error("reset set no portal password through v1")
	}
	if len(w.pbx.Emails()) != 1 {
		t.Errorf("%d reset e-mails, want 1", len(w.pbx.Emails()))
	}
	w.cardShows(ts, `"action_id":"credentials"`)
	w.click(alice, ts, "credentials")
	w.waitFor("re-sent credentials", func() bool {
		n := 0
		for _, m := range w.slack.Ephemerals(alice) {
			if strings.Contains(m.Text, "New credentials") {
				n++
			}
		}
		return n == 3 // recreate, reset, credentials
	})
	collect("re-sent")
	w.click(alice, ts, "step:restore")
	w.cardShows(ts, "approve:restore")
	w.click(bob, ts, "approve:restore")
	w.cardShows(ts, "Closed (restored)")
	w.threadComplete(inc.ID)
	w.scrape(b.url)
	b.stop(t)

	for _, s := range secretValues(w.slack.Ephemerals(alice)) {
		if len(s) >= 4 {
			add(s, "delivered to the requester")
		}
	}
	for _, tok := range w.pbx.Tokens() {
		seen[tok] = "OAuth token"
	}
	for k, v := range map[string]string{"xoxb-test": "SLACK_BOT_TOKEN", "xapp-1-test": "SLACK_APP_TOKEN", auditKey: "AUDIT_KEY",
		snapKey: "SNAPSHOT_KEY", "demo-client-secret-NOT-REAL": "NS_CLIENT_SECRET", "demo-password-NOT-REAL": "NS_PASSWORD"} {
		seen[k] = v
	}
	kinds := map[string]int{}
	for _, what := range seen {
		kinds[strings.SplitN(what, " ", 2)[0]]++
	}
	if kinds["old"] < 3 || kinds["new"] < 2 || kinds["re-sent"] < 1 || len(w.pbx.Tokens()) < 2 {
		t.Fatalf("too few secrets to scan for: %v (tokens %d)", kinds, len(w.pbx.Tokens()))
	}

	// Where secrets may be: the requester's ephemeral messages and her DM. They must be there.
	delivered := ""
	for _, m := range w.slack.Messages() {
		if (m.User == alice && (m.Method == "chat.postEphemeral" || m.ResponseType == "ephemeral")) || m.Channel == "D0ALICE" {
			delivered += m.Text + string(m.Blocks)
		}
	}
	for s, what := range seen {
		if strings.HasPrefix(what, "new") && (strings.Contains(what, "device-sip-registration-password of 1001a") ||
			what == "new portal password") && !strings.Contains(delivered, s) {
			t.Errorf("%s was not delivered to the requester", what)
		}
	}

	// Everything else the run left behind.
	type place struct{ where, text string }
	var hay []place
	for _, m := range w.slack.Messages() {
		switch {
		case m.User == alice && (m.Method == "chat.postEphemeral" || m.ResponseType == "ephemeral"), m.Channel == "D0ALICE":
			continue
		case m.User != "":
			hay = append(hay, place{"ephemeral to " + m.User + " (" + m.Method + ")", m.Text + string(m.Blocks)})
		case m.ThreadTS != "" && m.ThreadTS != m.TS:
			hay = append(hay, place{"thread reply in " + m.Channel, m.Text + string(m.Blocks)})
		default:
			hay = append(hay, place{"channel message in " + m.Channel + " (" + m.Method + ")", m.Text + string(m.Blocks)})
		}
	}
	for _, c := range w.slack.Calls("") {
		if c.Method == "chat.postEphemeral" && (c.Form.Get("user") == alice || strings.Contains(string(c.JSON), `"user":"`+alice+`"`)) {
			continue
		}
		if c.Method == "conversations.open" || strings.Contains(c.Form.Get("channel")+string(c.JSON), "D0ALICE") {
			continue
		}
		hay = append(hay, place{"Web API call " + c.Method, c.Form.Encode() + string(c.JSON)})
	}
	for i, l := range w.logs {
		hay = append(hay, place{"log of the bot (stream " + string(rune('0'+i)) + ")", l.String()})
	}
	for _, s := range w.scraped {
		hay = append(hay, place{"/metrics", s})
	}
	aof := 0
	_ = filepath.WalkDir(rs.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil {
			hay = append(hay, place{"redis file " + filepath.Base(p), string(b)})
			if strings.Contains(p, ".aof") {
				aof += len(b)
			}
		}
		return nil
	})
	if aof == 0 {
		t.Error("no AOF data to scan: the test's redis-server kept no appendonly file")
	}
	for _, c := range w.pbx.Calls() {
		hay = append(hay, place{"simulator request log " + c.Method + " " + c.Path,
			c.RawPath + " " + c.Query.Encode() + " " + string(c.Body) + " " + c.LogTag})
		if c.Secret && c.LogTag != "" {
			t.Errorf("%s %s held a secret and carried X-NetSapiens-Log %q", c.Method, c.Path, c.LogTag)
		}
	}
	for s, what := range seen {
		for _, h := range hay {
			if i := strings.Index(h.text, s); i >= 0 {
				t.Errorf("%s (%d characters) found in %s: …%s…", what, len(s), h.where, h.text[max(0, i-60):i])
			}
		}
	}
	t.Logf("scanned %d places (AOF %d bytes) for %d secrets: %v, %d tokens", len(hay), aof, len(seen), kinds, len(w.pbx.Tokens()))
}
