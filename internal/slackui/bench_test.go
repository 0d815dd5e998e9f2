package slackui

import (
	"encoding/json"
	"testing"
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
		if retry, err := h.apps[0].syncIncident(h.ctx, inc.ID); retry || err != nil {
			b.Fatalf("sync = %v, %v", retry, err)
		}
	}
	b.ReportMetric(float64(len(rec.commands()))/float64(b.N), "redis-cmds/op")
}
