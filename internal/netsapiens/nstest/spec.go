package nstest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The subset is produced by scripts/trimspec from the official v45.0 spec (source and
// sha256 in its info.x-source). The validator below is written by hand over it, rather than
// with kin-openapi, because the file is OpenAPI 3.1 exported by apidog: "#N" alternative
// paths, type arrays with "null", unanchored patterns and update bodies that inherit
// "required" lists the server does not enforce all need rules of our own anyway.
//
//go:embed spec/v45-subset.json
var specJSON []byte

type operation struct {
	method      string
	template    string
	implemented bool
	alts        []map[string]any // the operation itself, then its x-alternatives
}

type route struct {
	template string
	segs     []string
	ops      map[string]*operation
}

type spec struct {
	schemas map[string]any
	routes  []*route
	regexps sync.Map // pattern → *regexp.Regexp
}

var (
	specOnce   sync.Once
	loadedSpec *spec
	specErr    error
)

// theSpec parses the embedded subset once per process; it is read-only afterwards.
func theSpec() (*spec, error) {
	specOnce.Do(func() { loadedSpec, specErr = parseSpec(specJSON) })
	return loadedSpec, specErr
}

func parseSpec(raw []byte) (*spec, error) {
	var doc struct {
		Paths      map[string]map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
		Unimplemented []string `json:"x-unimplemented-operations"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parse embedded spec: %w", err)
	}
	sp := &spec{schemas: doc.Components.Schemas}
	byTemplate := map[string]*route{}
	add := func(method, tmpl string, op *operation) {
		r := byTemplate[tmpl]
		if r == nil {
			r = &route{template: tmpl, segs: strings.Split(strings.Trim(tmpl, "/"), "/"), ops: map[string]*operation{}}
			byTemplate[tmpl] = r
			sp.routes = append(sp.routes, r)
		}
		r.ops[method] = op
	}
	for tmpl, item := range doc.Paths {
		for method, op := range item {
			m := strings.ToUpper(method)
			o := &operation{method: m, template: tmpl, implemented: true, alts: []map[string]any{op}}
			if alts, ok := op["x-alternatives"].([]any); ok {
				for _, a := range alts {
					if am, ok := a.(map[string]any); ok {
						o.alts = append(o.alts, am)
					}
				}
			}
			add(m, tmpl, o)
		}
	}
	for _, k := range doc.Unimplemented {
		m, tmpl, ok := strings.Cut(k, " ")
		if !ok {
			continue
		}
		if r := byTemplate[tmpl]; r != nil && r.ops[m] != nil {
			continue
		}
		add(m, tmpl, &operation{method: m, template: tmpl})
	}
	sort.Slice(sp.routes, func(i, j int) bool { return sp.routes[i].template < sp.routes[j].template })
	return sp, nil
}

// match finds the operation for a method and the path's unescaped segments. The route with
// the most literal segments wins ("/users/count" beats "/users/{user}"). pathKnown is true
// when some route matches the path with another method.
func (sp *spec) match(method string, segs []string) (op *operation, params map[string]string, pathKnown bool) {
	best := -1
	for _, r := range sp.routes {
		if len(r.segs) != len(segs) {
			continue
		}
		score, ok := 0, true
		for i, s := range r.segs {
			if strings.HasPrefix(s, "{") {
				continue
			}
			if s != segs[i] {
				ok = false
				break
			}
			score++
		}
		if !ok {
			continue
		}
		pathKnown = true
		o := r.ops[method]
		// On a tie (/jwt/{uid} and /jwt/{jti}) the simulated operation wins.
		if o == nil || score < best || (score == best && (op.implemented || !o.implemented)) {
			continue
		}
		best, op = score, o
		params = map[string]string{}
		for i, s := range r.segs {
			if strings.HasPrefix(s, "{") {
				params[strings.Trim(s, "{}")] = segs[i]
			}
		}
	}
	return op, params, pathKnown
}

// specRequest is what the validator looks at.
type specRequest struct {
	method      string
	params      map[string]string
	query       url.Values
	body        []byte
	contentType string
}

// requiredOverride replaces the body's "required" list where the spec's list is an apidog
// artifact no client could meet: NdpPhone requires all 29 of its fields, even timestamps.
// What the simulator requires instead is what identifies the phone (and its model on create).
var requiredOverride = map[string][]string{
	"POST /domains/{domain}/phones":   {fieldMAC, "device-models-brand-and-model"},
	"PUT /domains/{domain}/phones":    {fieldMAC},
	"DELETE /domains/{domain}/phones": {fieldMAC},
}

// validate returns the problems of the alternative that fits best; nil means valid.
func (sp *spec) validate(op *operation, req specRequest) []string {
	var best []string
	for i, alt := range op.alts {
		probs := sp.checkAlt(op, alt, req)
		if len(probs) == 0 {
			return nil
		}
		if i == 0 || len(probs) < len(best) {
			best = probs
		}
	}
	return best
}

func (sp *spec) checkAlt(op *operation, alt map[string]any, req specRequest) []string {
	var probs []string
	declared := map[string]bool{}
	params, _ := alt["parameters"].([]any)
	for _, p := range params {
		pm, _ := p.(map[string]any)
		name, in := str(pm["name"]), str(pm["in"])
		required, _ := pm["required"].(bool)
		schema := pm["schema"]
		switch in {
		case "path":
			if v, ok := req.params[name]; ok {
				probs = append(probs, sp.checkParam(schema, v, "path parameter "+name)...)
			}
		case "query":
			declared[name] = true
			vals, ok := req.query[name]
			if !ok {
				if required {
					probs = append(probs, fmt.Sprintf("missing required query parameter %q", name))
				}
				continue
			}
			for _, v := range vals {
				probs = append(probs, sp.checkParam(schema, v, "query parameter "+name)...)
			}
		}
	}
	for name := range req.query {
		if !declared[name] {
			probs = append(probs, fmt.Sprintf("undocumented query parameter %q", name))
		}
	}
	sort.Strings(probs)

	bodySchema := jsonBodySchema(alt)
	trimmed := bytes.TrimSpace(req.body)
	if bodySchema == nil {
		if len(trimmed) > 0 {
			probs = append(probs, "this operation takes no request body")
		}
		return probs
	}
	if len(trimmed) > 0 && !strings.HasPrefix(strings.ToLower(req.contentType), "application/json") {
		probs = append(probs, fmt.Sprintf("content type %q is not application/json", req.contentType))
	}
	obj := map[string]any{}
	if len(trimmed) > 0 {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil || dec.More() {
			return append(probs, "request body is not valid JSON")
		}
		o, ok := v.(map[string]any)
		if !ok {
			return append(probs, "request body must be a JSON object")
		}
		obj = o
	}
	key := op.method + " " + op.template
	required, override := requiredOverride[key]
	if !override && op.method != "PUT" {
		// Updates are partial (clients send only what changes, API.md §4.2), so the
		// required list of the inherited schema applies to creates only.
		required = stringList(sp.resolve(bodySchema)["required"])
	}
	return append(probs, sp.checkObject(bodySchema, obj, "", required)...)
}

func jsonBodySchema(alt map[string]any) any {
	rb, _ := alt["requestBody"].(map[string]any)
	content, _ := rb["content"].(map[string]any)
	for ct, c := range content {
		if strings.HasPrefix(ct, "application/json") {
			cm, _ := c.(map[string]any)
			return cm["schema"]
		}
	}
	return nil
}

func (sp *spec) resolve(s any) map[string]any {
	m, _ := s.(map[string]any)
	for i := 0; i < 16 && m != nil; i++ {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		m, _ = sp.schemas[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any)
	}
	return m
}

// checkObject checks every field against the schema's properties: unknown and read-only
// fields are violations (the spec has no additionalProperties: false, so a misspelt field
// would otherwise pass silently), then types, enums and limits.
func (sp *spec) checkObject(schema any, obj map[string]any, prefix string, required []string) []string {
	s := sp.resolve(schema)
	props, _ := s["properties"].(map[string]any)
	var probs []string
	names := make([]string, 0, len(obj))
	for k := range obj {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		prop, ok := props[k]
		if !ok {
			probs = append(probs, fmt.Sprintf("unknown field %q", prefix+k))
			continue
		}
		if ro, _ := sp.resolve(prop)["readOnly"].(bool); ro {
			probs = append(probs, fmt.Sprintf("read-only field %q", prefix+k))
			continue
		}
		probs = append(probs, sp.checkValue(prop, obj[k], prefix+k)...)
	}
	for _, r := range required {
		if _, ok := obj[r]; !ok {
			probs = append(probs, fmt.Sprintf("missing required field %q", prefix+r))
		}
	}
	return probs
}

func (sp *spec) checkValue(schema any, v any, name string) []string {
	s := sp.resolve(schema)
	if s == nil {
		return nil
	}
	if anyOf, ok := s["anyOf"].([]any); ok {
		for _, sub := range anyOf {
			if len(sp.checkValue(sub, v, name)) == 0 {
				return nil
			}
		}
		return []string{fmt.Sprintf("%s matches none of its allowed shapes", label(name))}
	}
	types := stringList(s["type"])
	if t, ok := s["type"].(string); ok {
		types = []string{t}
	}
	if len(types) > 0 && !hasType(types, v) {
		return []string{fmt.Sprintf("%s must be %s, not %s", label(name), strings.Join(types, " or "), jsonKind(v))}
	}
	if v == nil {
		return nil
	}
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if fmt.Sprint(e) == fmt.Sprint(v) {
				found = true
				break
			}
		}
		if !found {
			return []string{fmt.Sprintf("%s: %q is not one of the allowed values", label(name), fmt.Sprint(v))}
		}
	}
	switch t := v.(type) {
	case string:
		return sp.checkString(s, t, name)
	case json.Number:
		f, _ := t.Float64()
		if minV, ok := s["minimum"].(float64); ok && f < minV {
			return []string{fmt.Sprintf("%s must be at least %v", label(name), minV)}
		}
		if maxV, ok := s["maximum"].(float64); ok && f > maxV {
			return []string{fmt.Sprintf("%s must be at most %v", label(name), maxV)}
		}
	case []any:
		var probs []string
		for i, x := range t {
			probs = append(probs, sp.checkValue(s["items"], x, fmt.Sprintf("%s[%d]", name, i))...)
		}
		return probs
	case map[string]any:
		if _, ok := s["properties"]; ok {
			return sp.checkObject(s, t, name+".", stringList(s["required"]))
		}
	}
	return nil
}

var macRE = regexp.MustCompile(`^[0-9A-Fa-f]{12}$`)

func (sp *spec) checkString(s map[string]any, v, name string) []string {
	n := len([]rune(v))
	if minL, ok := s["minLength"].(float64); ok && float64(n) < minL {
		return []string{fmt.Sprintf("%s is shorter than %v characters", label(name), minL)}
	}
	if maxL, ok := s["maxLength"].(float64); ok && float64(n) > maxL {
		return []string{fmt.Sprintf("%s is longer than %v characters", label(name), maxL)}
	}
	if p, ok := s["pattern"].(string); ok && !sp.patternMatch(p, v) {
		return []string{fmt.Sprintf("%s does not match %s", label(name), p)}
	}
	switch str(s["format"]) {
	case "mac":
		if !macRE.MatchString(v) {
			return []string{fmt.Sprintf("%s is not a 12-hex-digit MAC address", label(name))}
		}
	case "date-time", "rfc3339":
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			return []string{fmt.Sprintf("%s is not an RFC 3339 date-time", label(name))}
		}
	case "email":
		// The API documents email-address as a ";"-separated list despite format: email.
		for part := range strings.SplitSeq(v, ";") {
			if at := strings.Index(part, "@"); at <= 0 || at == len(part)-1 {
				return []string{fmt.Sprintf("%s is not a list of email addresses", label(name))}
			}
		}
	}
	return nil
}

// patternMatch applies a spec pattern anchored at both ends. JSON Schema patterns are
// unanchored, but DomainNamePath's "^[A-Za-z0-9._-]*|~|\*+" would then match anything;
// anchoring is what its author evidently meant.
func (sp *spec) patternMatch(p, v string) bool {
	re, ok := sp.regexps.Load(p)
	if !ok {
		c, err := regexp.Compile(`^(?:` + p + `)$`)
		if err != nil {
			return true // an uncompilable spec pattern cannot be held against a client
		}
		re, _ = sp.regexps.LoadOrStore(p, c)
	}
	return re.(*regexp.Regexp).MatchString(v)
}

// checkParam checks a path or query parameter, which arrives as text.
func (sp *spec) checkParam(schema any, v, name string) []string {
	s := sp.resolve(schema)
	switch str(s["type"]) {
	case "number", "integer":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || (str(s["format"]) == "int" || str(s["type"]) == "integer") && f != float64(int64(f)) {
			return []string{fmt.Sprintf("%s must be an integer, not %q", name, v)}
		}
		return sp.checkValue(s, json.Number(v), name)
	}
	return sp.checkValue(s, v, name)
}

// label names a body field as field "x"; parameters arrive already named ("query parameter limit").
func label(name string) string {
	if strings.HasPrefix(name, "path parameter ") || strings.HasPrefix(name, "query parameter ") {
		return name
	}
	return "field " + strconv.Quote(name)
}

func hasType(types []string, v any) bool {
	k := jsonKind(v)
	for _, t := range types {
		if t == k || (t == "number" && k == "integer") {
			return true
		}
	}
	return false
}

func jsonKind(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		if _, err := t.Int64(); err == nil {
			return "integer"
		}
		return "number"
	case float64:
		if t == float64(int64(t)) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
