package slackui

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/compromised-responder/bot/internal/jsoncut"
)

// BenchmarkParseCommand measures the slash-command grammar on a text with Slack markup.
func BenchmarkParseCommand(b *testing.B) {
	for b.Loop() {
		ParseCommand("<mailto:1001@acme.example|1001@acme.example> intl calls to +882 &amp; more since 01:50")
	}
}

// BenchmarkCard measures rendering and encoding each golden card (what every chat.update sends).
func BenchmarkCard(b *testing.B) {
	for _, f := range fixtures() {
		b.Run(f.name, func(b *testing.B) {
			for b.Loop() {
				_, blocks := Card(f.inc, f.opts)
				if _, err := json.Marshal(blocks); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSyncUnchanged measures one card and thread sync of an incident whose card and thread
// are up to date (what most syncs of a burst find once the change they were woken for is shown),
// with the Redis commands it sends per sync.
func BenchmarkSyncUnchanged(b *testing.B) {
	h := newHarness(b)
	inc := h.open()
	h.waitFor("the syncs to settle", func() bool { return h.apps[0].changes.idle() && h.apps[1].changes.idle() })
	rec := &redisRecord{}
	h.rdb.AddHook(rec)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if retry, err := h.apps[0].syncIncident(rec.ctx(h.ctx), inc.ID); retry || err != nil {
			b.Fatalf("sync = %v, %v", retry, err)
		}
	}
	b.ReportMetric(float64(len(rec.commands()))/float64(b.N), "redis-cmds/op")
}

// BenchmarkWithoutMember measures dropping the echoed message from a chat.update reply that
// echoes a golden card (what echoless does to each card update's reply).
func BenchmarkWithoutMember(b *testing.B) {
	f := fixtures()[0]
	text, blocks := Card(f.inc, f.opts)
	msg, err := json.Marshal(map[string]any{"type": "message", "text": text, "blocks": blocks, "ts": "1.2", "bot_id": "B1"})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"ok":true,"channel":"C0INC","ts":"1.2","text":` + strconv.Quote(text) + `,"message":` + string(msg) + `}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		jsoncut.Without(body, "message")
	}
}
