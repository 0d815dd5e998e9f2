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
