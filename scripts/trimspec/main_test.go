package main

import (
	"bytes"
	"os"
	"testing"
)

// TestSubsetIsUpToDate checks that the committed subset is exactly what Trim makes from
// the full spec. The full spec is not part of the project; point NS_FULL_SPEC at a copy
// (openapi/netsapiens-api-v2-v45.0.json of dszp/n8n-nodes-netsapiens) to run it.
func TestSubsetIsUpToDate(t *testing.T) {
	full := os.Getenv("NS_FULL_SPEC")
	if full == "" {
		t.Skip("NS_FULL_SPEC is not set")
	}
	raw, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Trim(raw)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../internal/netsapiens/nstest/spec/v45-subset.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("spec/v45-subset.json is stale: run go run ./scripts/trimspec -in $NS_FULL_SPEC -out internal/netsapiens/nstest/spec/v45-subset.json")
	}
}

func TestTrimRefusesOtherInput(t *testing.T) {
	if _, err := Trim([]byte(`{"paths":{}}`)); err == nil {
		t.Error("Trim accepted an input whose sha256 is not the recorded source")
	}
}
