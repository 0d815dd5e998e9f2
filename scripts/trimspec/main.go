// Command trimspec cuts the official NetSapiens API v2 v45.0 OpenAPI file down to the
// operations the simulator (internal/netsapiens/nstest) implements, so the project can
// embed a small, reviewable spec instead of reading /work/shared at run time.
//
// What it does, in order:
//   - checks the input's sha256 against the one recorded in x-source (the output claims
//     a provenance, so a different input is an error, not a warning);
//   - keeps the operations listed in keep; the spec's "#N" paths ("/tokens#1") are
//     alternative request shapes for the same path and method, so they are merged into
//     the main operation as "x-alternatives" (a request is valid if any one matches);
//   - drops descriptions, examples, summaries and apidog's x-apidog-* bookkeeping, but not
//     a property that happens to be called "description" or "example";
//   - keeps every schema the kept operations reference, transitively;
//   - lists every other documented operation under "x-unimplemented-operations", so the
//     simulator can tell "not in the spec" (a violation) from "not simulated" (501).
//
// Usage: go run ./scripts/trimspec -in openapi-v2-v45.0.json -out internal/netsapiens/nstest/spec/v45-subset.json
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

const (
	sourceRepo   = "dszp/n8n-nodes-netsapiens"
	sourceCommit = "05505eec8146c56c8a590043399bc5c9be0d2c16"
	sourcePath   = "openapi/netsapiens-api-v2-v45.0.json"
	sourceSHA256 = "f172ca51e65b954ce2689a913170fe5fca4551e07e915a63d9bef8dcc42f6def"
)

// keep lists "METHOD path" for every operation the simulator implements.
var keep = []string{
	"POST /tokens",
	"GET /apikeys/~",
	"GET /version",
	"GET /domains/{domain}/users",
	"GET /domains/{domain}/users/{user}",
	"PUT /domains/{domain}/users/{user}",
	"GET /dialpolicy",
	"GET /dialpolicy/{policy}",
	"GET /dialpolicy/{policy}/permission",
	"GET /domains/{domain}/dialpolicy/{policy}",
	"GET /domains/{domain}/dialpolicy/{policy}/permission",
	"GET /domains/{domain}/users/{user}/devices",
	"POST /domains/{domain}/users/{user}/devices",
	"GET /domains/{domain}/users/{user}/devices/{device}",
	"PUT /domains/{domain}/users/{user}/devices/{device}",
	"DELETE /domains/{domain}/users/{user}/devices/{device}",
	"GET /domains/{domain}/devices",
	"GET /domains/{domain}/phones",
	"POST /domains/{domain}/phones",
	"PUT /domains/{domain}/phones",
	"DELETE /domains/{domain}/phones",
	"GET /domains/{domain}/phones/{mac}",
	"DELETE /jwt/{uid}",
	"POST /domains/{domain}/users/{user}/email",
	"GET /domains/{domain}/users/{user}/calls",
	"DELETE /domains/{domain}/users/{user}/calls/{call_id}",
	"GET /domains/{domain}/users/{user}/cdrs",
}

// dropKeys are schema/operation keywords that carry prose or tool bookkeeping only.
var dropKeys = map[string]bool{
	"description": true, "example": true, "examples": true, "summary": true,
	"tags": true, "headers": true, "x-run-in-apidog": true, "externalDocs": true,
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "trimspec:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("trimspec", flag.ContinueOnError)
	in := fs.String("in", "", "the full v45.0 OpenAPI JSON file")
	out := fs.String("out", "", "where to write the subset")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *out == "" {
		return errors.New("both -in and -out are required")
	}
	raw, err := os.ReadFile(*in)
	if err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	subset, err := Trim(raw)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, subset, 0o644); err != nil {
		return fmt.Errorf("write subset: %w", err)
	}
	fmt.Fprintf(stdout, "trimspec: wrote %s (%d bytes, %d operations)\n", *out, len(subset), len(keep))
	return nil
}

// Trim turns the full spec into the subset (deterministic output: sorted keys, 1-space indent).
func Trim(raw []byte) ([]byte, error) {
	sum := sha256.Sum256(raw)
	if got := hex.EncodeToString(sum[:]); got != sourceSHA256 {
		return nil, fmt.Errorf("input sha256 %s is not the recorded source %s", got, sourceSHA256)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parse spec: %w", err)
	}
	paths, _ := doc["paths"].(map[string]any)
	comps, _ := doc["components"].(map[string]any)
	schemas, _ := comps["schemas"].(map[string]any)
	if paths == nil || schemas == nil {
		return nil, errors.New("spec has no paths or no components.schemas")
	}

	wanted := map[string]bool{}
	for _, k := range keep {
		wanted[k] = true
	}
	outPaths := map[string]any{}
	var others []string
	// Sorted so that "#N" alternatives are appended in a stable order.
	names := make([]string, 0, len(paths))
	for p := range paths {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		base, _, isAlt := strings.Cut(p, "#")
		item, _ := paths[p].(map[string]any)
		for method, opAny := range item {
			op, ok := opAny.(map[string]any)
			if !ok {
				continue
			}
			key := strings.ToUpper(method) + " " + base
			if !wanted[key] {
				others = append(others, key)
				continue
			}
			clean := strip(op, false).(map[string]any)
			bucket, _ := outPaths[base].(map[string]any)
			if bucket == nil {
				bucket = map[string]any{}
				outPaths[base] = bucket
			}
			if !isAlt {
				if prev, ok := bucket[method].(map[string]any); ok {
					clean["x-alternatives"] = prev["x-alternatives"]
				}
				bucket[method] = clean
				continue
			}
			main, _ := bucket[method].(map[string]any)
			if main == nil {
				main = map[string]any{}
				bucket[method] = main
			}
			alts, _ := main["x-alternatives"].([]any)
			main["x-alternatives"] = append(alts, clean)
		}
	}
	for _, k := range keep {
		method, p, _ := strings.Cut(k, " ")
		item, _ := outPaths[p].(map[string]any)
		if op, _ := item[strings.ToLower(method)].(map[string]any); op == nil || op["responses"] == nil {
			return nil, fmt.Errorf("operation %s is not in the spec (or only as an alternative)", k)
		}
	}
	addPasswordGrant(outPaths)

	// Keep referenced schemas, transitively.
	keptSchemas := map[string]any{}
	queue := refs(outPaths, nil)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if _, done := keptSchemas[name]; done {
			continue
		}
		s, ok := schemas[name]
		if !ok {
			return nil, fmt.Errorf("schema %s is referenced but not defined", name)
		}
		clean := strip(s, false)
		keptSchemas[name] = clean
		queue = append(queue, refs(clean, nil)...)
	}

	sort.Strings(others)
	others = dedupe(others)
	info, _ := doc["info"].(map[string]any)
	out := map[string]any{
		"openapi": doc["openapi"],
		"info": map[string]any{
			"title":          info["title"],
			"version":        info["version"],
			"x-spec-version": "45.0",
			"x-source": map[string]any{
				"repository": sourceRepo,
				"commit":     sourceCommit,
				"path":       sourcePath,
				"sha256":     sourceSHA256,
				"license":    "MIT",
			},
			"x-trimmed-by": "scripts/trimspec: implemented operations only; #N alternatives merged as x-alternatives; prose and apidog bookkeeping dropped",
		},
		"servers":                    doc["servers"],
		"paths":                      outPaths,
		"components":                 map[string]any{"schemas": keptSchemas, "securitySchemes": comps["securitySchemes"]},
		"x-unimplemented-operations": others,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("encode subset: %w", err)
	}
	return buf.Bytes(), nil
}

// addPasswordGrant adds the plain password grant as an alternative of POST /tokens. In the
// source, every /tokens body is AuthRequestMFA (which requires the MFA fields) or the
// refresh shape; the password grant appears only through apidog's x-apidog-refs to
// AuthRequest, which strip drops. AuthRequest is the spec's own schema for exactly that body.
func addPasswordGrant(paths map[string]any) {
	item, _ := paths["/tokens"].(map[string]any)
	op, _ := item["post"].(map[string]any)
	alts, _ := op["x-alternatives"].([]any)
	op["x-alternatives"] = append(alts, map[string]any{
		"x-added-by-trimspec": "password grant: the source references AuthRequest for it only via x-apidog-refs",
		"requestBody": map[string]any{"content": map[string]any{"application/json": map[string]any{
			"schema": map[string]any{"$ref": "#/components/schemas/AuthRequest"},
		}}},
		"responses": op["responses"],
		"security":  []any{},
	})
}

// strip removes prose and apidog keys. inProps is true for the map directly under
// "properties", whose keys are property names rather than keywords.
func strip(v any, inProps bool) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range t {
			if !inProps && (dropKeys[k] || strings.HasPrefix(k, "x-apidog")) {
				continue
			}
			out[k] = strip(val, !inProps && k == "properties")
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = strip(x, false)
		}
		return out
	default:
		return v
	}
}

func refs(v any, acc []string) []string {
	switch t := v.(type) {
	case map[string]any:
		if r, ok := t["$ref"].(string); ok {
			if name, ok := strings.CutPrefix(r, "#/components/schemas/"); ok {
				acc = append(acc, name)
			}
		}
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			acc = refs(t[k], acc)
		}
	case []any:
		for _, x := range t {
			acc = refs(x, acc)
		}
	}
	return acc
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}
