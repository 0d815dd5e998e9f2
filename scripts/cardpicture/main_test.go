package main

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The page and the Block Kit Builder link carry the card's own JSON, unchanged.
func TestWriteCarriesTheCardJSON(t *testing.T) {
	dir := t.TempDir()
	if err := write(dir); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	msg := read("card.json")
	var parsed struct {
		Blocks []map[string]any `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(msg), &parsed); err != nil || len(parsed.Blocks) < 10 || parsed.Blocks[0]["type"] != "header" {
		t.Fatalf("card.json: %v, %d blocks", err, len(parsed.Blocks))
	}
	frag, ok := strings.CutPrefix(strings.TrimSpace(read("builder-url.txt")), "https://app.slack.com/block-kit-builder/#")
	if !ok {
		t.Fatalf("builder-url.txt: %q", read("builder-url.txt"))
	}
	if got, err := url.PathUnescape(frag); err != nil || got != msg {
		t.Errorf("the builder link does not decode to card.json: %v", err)
	}
	if page := read("card.html"); !strings.Contains(page, "const message = "+msg+";") || strings.Contains(page, "%BLOCKS%") {
		t.Error("card.html does not embed card.json")
	}
}
