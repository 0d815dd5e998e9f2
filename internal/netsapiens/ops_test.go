package netsapiens_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/google/go-cmp/cmp"
)

func TestCreateDeviceAfterLostReply(t *testing.T) {
	const created = `{"device":"1001a","user":"1001","domain":"acme.example","device-sip-registration-password":"GenPw0123456789ab"}`
	const readBack = `{"device":"1001a","user":"1001","domain":"acme.example"}`
	tests := []struct {
		name         string
		posts        []string // what each POST gets: "ok", "lost-applied", "lost", "conflict"
		wantPosts    int
		wantUnknown  bool
		wantPassword string
		wantKind     netsapiens.Kind
	}{
		{"plain create returns the generated password", []string{"ok"}, 1, false, "GenPw0123456789ab", ""},
		{"applied but reply lost: read back, never re-created", []string{"lost-applied"}, 1, true, "", ""},
		{"not applied: created again", []string{"lost", "ok"}, 2, false, "GenPw0123456789ab", ""},
		{"conflict after a lost reply means applied", []string{"lost", "conflict"}, 2, true, "", ""},
		{"conflict on a first try is a conflict", []string{"conflict"}, 1, false, "", netsapiens.KindConflict},
		{"gives up after retries", []string{"lost", "lost", "lost", "lost", "lost"}, 4, false, "", netsapiens.KindTransient},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var posts atomic.Int32
			var exists atomic.Bool
			pbx := newFakePBX(t, func(w http.ResponseWriter, r *http.Request, body string) {
				switch r.Method {
				case "POST":
					i := int(posts.Add(1)) - 1
					if !strings.Contains(body, `"synchronous":"yes"`) {
						t.Errorf("create body %s lacks synchronous", body)
					}
					switch tc.posts[i] {
					case "ok":
						exists.Store(true)
						writeJSON(w, 200, created)
					case "lost-applied":
						exists.Store(true)
						writeJSON(w, 502, `{"code":502,"message":"Bad Gateway"}`)
					case "lost":
						dropConnection(t, w)
					case "conflict":
						exists.Store(true)
						writeJSON(w, 409, `{"code":409,"message":"Device exists"}`)
					}
				case "GET":
					if exists.Load() {
						writeJSON(w, 200, readBack)
						return
					}
					writeJSON(w, 404, `{"code":404,"message":"no device"}`)
				}
			})
			c, _ := newClient(t, pbx.URL(), nil)
			in := netsapiens.Device{Device: netsapiens.Ptr("1001a"), SRTP: netsapiens.Ptr("no"),
				RegistrationState: netsapiens.Ptr("registered"), User: netsapiens.Ptr("1001")}
			got, err := c.CreateDevice(context.Background(), "acme.example", "1001", in)
			if tc.wantKind != "" {
				if netsapiens.KindOf(err) != tc.wantKind {
					t.Fatalf("CreateDevice = %v, want kind %s", err, tc.wantKind)
				}
			} else if err != nil {
				t.Fatalf("CreateDevice: %v", err)
			} else {
				if got.PasswordUnknown != tc.wantUnknown || reveal(got.SIPPassword) != tc.wantPassword {
					t.Errorf("got PasswordUnknown=%v, password %q; want %v, %q", got.PasswordUnknown, reveal(got.SIPPassword), tc.wantUnknown, tc.wantPassword)
				}
				if got.ID() != "1001a" {
					t.Errorf("device id %q", got.ID())
				}
			}
			if n := int(posts.Load()); n != tc.wantPosts {
				t.Errorf("POSTs = %d, want %d", n, tc.wantPosts)
			}
			for _, r := range pbx.requests() {
				if r.Method == "POST" && (strings.Contains(r.Body, "device-sip-registration-state") || strings.Contains(r.Body, `"user"`)) {
					t.Errorf("create sent read-only fields: %s", r.Body)
				}
			}
		})
	}
}

func TestRefusedPathSegmentsMakeNoRequest(t *testing.T) {
	pbx := newFakePBX(t, func(w http.ResponseWriter, r *http.Request, _ string) { writeJSON(w, 200, `{}`) })
	c, _ := newClient(t, pbx.URL(), nil)
	ctx := context.Background()
	ok := "acme.example"
	tests := []struct {
		name string
		call func() error
	}{
		{"domain with slash", func() error { _, err := c.GetUser(ctx, "acme.example/x", "1001"); return err }},
		{"domain dotdot", func() error { _, err := c.GetUser(ctx, "..", "1001"); return err }},
		{"domain tilde", func() error { _, err := c.GetUser(ctx, "~", "1001"); return err }},
		{"domain star", func() error { _, err := c.ListPhones(ctx, "*"); return err }},
		{"domain empty", func() error { _, err := c.ListPhones(ctx, ""); return err }},
		{"domain too long", func() error { _, err := c.ListPhones(ctx, strings.Repeat("a", 65)); return err }},
		{"user with query", func() error { _, err := c.GetUser(ctx, ok, "1001?x=1"); return err }},
		{"user with hash", func() error { _, err := c.ListCalls(ctx, ok, "1001#"); return err }},
		{"user with space", func() error { _, err := c.ListDevices(ctx, ok, "10 01"); return err }},
		{"user too long", func() error { _, err := c.GetUser(ctx, ok, strings.Repeat("1", 17)); return err }},
		{"user dot", func() error { return c.RevokeJWT(ctx, ok, ".") }},
		{"user control char", func() error { return c.RevokeJWT(ctx, ok, "10\n01") }},
		{"device with slash", func() error { _, err := c.GetDevice(ctx, ok, "1001", "../1002"); return err }},
		{"device empty", func() error { return c.DeleteDevice(ctx, ok, "1001", "") }},
		{"device too long", func() error { return c.DeleteDevice(ctx, ok, "1001", strings.Repeat("d", 33)) }},
		{"create without id", func() error { _, err := c.CreateDevice(ctx, ok, "1001", netsapiens.Device{}); return err }},
		{"update with nothing", func() error {
			return c.UpdateDevice(ctx, ok, "1001", "1001a", netsapiens.Device{Device: netsapiens.Ptr("x")})
		}},
		{"policy with slash", func() error { _, err := c.GetDialPolicy(ctx, ok, "Deny/All"); return err }},
		{"policy with percent", func() error { _, err := c.ListDialPolicyPermissions(ctx, ok, "Deny%20All"); return err }},
		{"policy with control", func() error { _, err := c.GetDialPolicy(ctx, ok, "Deny\x00All"); return err }},
		{"policy too long", func() error { _, err := c.GetDialPolicy(ctx, ok, strings.Repeat("p", 101)); return err }},
		{"put policy with control", func() error {
			return c.UpdateUser(ctx, ok, "1001", netsapiens.UserUpdate{DialPolicy: netsapiens.Ptr("Deny\tAll")})
		}},
		{"put empty policy", func() error {
			return c.UpdateUser(ctx, ok, "1001", netsapiens.UserUpdate{DialPolicy: netsapiens.Ptr("")})
		}},
		{"empty user update", func() error { return c.UpdateUser(ctx, ok, "1001", netsapiens.UserUpdate{}) }},
		{"mac short", func() error { _, err := c.GetPhone(ctx, ok, "0004f2aabb"); return err }},
		{"mac not hex", func() error { return c.DeletePhone(ctx, ok, "0004f2aabbzz") }},
		{"phone without mac", func() error { return c.CreatePhone(ctx, ok, netsapiens.Phone{}) }},
		{"call id with slash", func() error { return c.EndCall(ctx, ok, "1001", "abc/def") }},
		{"call id with space", func() error { return c.EndCall(ctx, ok, "1001", "abc def") }},
		{"call id empty", func() error { return c.EndCall(ctx, ok, "1001", "") }},
		{"email without template", func() error { return c.SendEmail(ctx, ok, "1001", "", "s") }},
		{"cdr limit zero", func() error {
			_, err := c.ListCDRs(ctx, ok, "1001", time.Now().Add(-time.Hour), time.Now(), 0)
			return err
		}},
		{"cdr range backwards", func() error {
			_, err := c.ListCDRs(ctx, ok, "1001", time.Now(), time.Now().Add(-time.Hour), 10)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var e *netsapiens.Error
			if !errors.As(err, &e) || e.Kind != netsapiens.KindInvalid || e.Status != 0 {
				t.Fatalf("err = %v, want a KindInvalid *Error with no status", err)
			}
		})
	}
	if reqs := pbx.requests(); len(reqs) != 0 {
		t.Errorf("refused values made %d requests: %+v", len(reqs), reqs)
	}
}

func TestEscapingAndLogTags(t *testing.T) {
	pbx := newFakePBX(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		switch {
		case r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/permission"):
			writeJSON(w, 200, `[{"dialpolicy":"Deny All","permission-match":"*","permission-mode":"deny","permission-reason":"r","permission-id":"Kg=="}]`)
		case r.Method == "GET" && strings.Contains(r.URL.Path, "/domains/acme.example/dialpolicy/"):
			writeJSON(w, 404, `{"code":404,"message":"Dial Policy not found"}`)
		case r.Method == "GET":
			writeJSON(w, 200, `{"dialpolicy":"Deny All","domain":"*","description":"Blocks"}`)
		default:
			writeJSON(w, 202, `{"code":202,"message":"Accepted"}`)
		}
	})
	c, _ := newClient(t, pbx.URL(), nil)
	ctx := netsapiens.WithLogTag(context.Background(), "INC-7K2QXM")

	pol, err := c.GetDialPolicy(ctx, "acme.example", "Deny All")
	if err != nil {
		t.Fatalf("GetDialPolicy: %v", err)
	}
	if diff := cmp.Diff(netsapiens.DialPolicy{Name: "Deny All", Domain: "*", Description: "Blocks", SystemLevel: true}, pol); diff != "" {
		t.Errorf("policy (-want +got):\n%s", diff)
	}
	if err := c.UpdateUser(ctx, "acme.example", "1001", netsapiens.UserUpdate{DialPolicy: netsapiens.Ptr("Deny All")}); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateUser(ctx, "acme.example", "1001", netsapiens.UserUpdate{VoicemailPIN: netsapiens.SecretPtr("918273")}); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateDevice(ctx, "acme.example", "1001", "1001a", netsapiens.Device{SIPPassword: netsapiens.SecretPtr("NewPw0123456789")}); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateDevice(ctx, "acme.example", "1001", "1001a", netsapiens.Device{SRTP: netsapiens.Ptr("yes")}); err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeJWT(ctx, "acme.example", "1001"); err != nil {
		t.Fatal(err)
	}
	if err := c.EndCall(ctx, "acme.example", "1001", "a1b2c3@198.51.100.23"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeletePhone(ctx, "acme.example", "00:04:F2:AA:BB:CC"); err != nil {
		t.Fatal(err)
	}
	bad := netsapiens.WithLogTag(context.Background(), "INC-1\r\nX-Evil: 1")
	if _, err := c.ListDialPolicyPermissions(bad, "acme.example", "Deny All"); err != nil {
		t.Fatal(err)
	}

	type row struct{ Method, RawPath, Body, LogTag string }
	var got []row
	for _, r := range pbx.requests() {
		got = append(got, row{r.Method, r.RawPath, r.Body, r.LogTag})
	}
	want := []row{
		{"GET", "/domains/acme.example/dialpolicy/Deny%20All", "", "INC-7K2QXM"},
		{"GET", "/dialpolicy/Deny%20All", "", "INC-7K2QXM"},
		{"PUT", "/domains/acme.example/users/1001", `{"dial-policy":"Deny All"}`, "INC-7K2QXM"},
		{"PUT", "/domains/acme.example/users/1001", `{"voicemail-login-pin":"918273"}`, ""},
		{"PUT", "/domains/acme.example/users/1001/devices/1001a", `{"device-sip-registration-password":"NewPw0123456789"}`, ""},
		{"PUT", "/domains/acme.example/users/1001/devices/1001a", `{"device-srtp-enabled":"yes"}`, "INC-7K2QXM"},
		{"DELETE", "/jwt/1001@acme.example", "", "INC-7K2QXM"},
		{"DELETE", "/domains/acme.example/users/1001/calls/a1b2c3@198.51.100.23", "", "INC-7K2QXM"},
		{"DELETE", "/domains/acme.example/phones", `{"device-provisioning-mac-address":"0004f2aabbcc"}`, "INC-7K2QXM"},
		{"GET", "/domains/acme.example/dialpolicy/Deny%20All/permission", "", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestListCDRsPages(t *testing.T) {
	const total = 2500
	pbx := newFakePBX(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		q := r.URL.Query()
		var start, limit int
		fmt.Sscan(q.Get("start"), &start)
		fmt.Sscan(q.Get("limit"), &limit)
		var page []map[string]any
		for i := start; i < min(start+limit, total); i++ {
			page = append(page, map[string]any{"cdr_id": fmt.Sprint(i), "uid": "1001@acme.example", "time_start": 1748764800 + i, "number": nil})
		}
		b, _ := json.Marshal(page)
		writeJSON(w, 200, string(b))
	})
	c, _ := newClient(t, pbx.URL(), nil)
	from := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(24 * time.Hour)
	tests := []struct{ limit, want, requests int }{{10, 10, 1}, {1500, 1500, 2}, {5000, total, 3}}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.limit), func(t *testing.T) {
			before := len(pbx.requests())
			cdrs, err := c.ListCDRs(context.Background(), "acme.example", "1001", from, to, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(cdrs) != tc.want || cdrs[len(cdrs)-1].ID != fmt.Sprint(tc.want-1) {
				t.Errorf("got %d CDRs, want %d in order", len(cdrs), tc.want)
			}
			reqs := pbx.requests()[before:]
			if len(reqs) != tc.requests {
				t.Errorf("requests = %d, want %d", len(reqs), tc.requests)
			}
			if !strings.Contains(reqs[0].Query, "datetime-start=2025-06-01T00%3A00%3A00Z") || !strings.Contains(reqs[0].Query, "datetime-end=2025-06-02T00%3A00%3A00Z") {
				t.Errorf("query %q lacks the time range", reqs[0].Query)
			}
		})
	}
}

func reveal(s *netsapiens.Secret) string {
	if s == nil {
		return ""
	}
	return s.Reveal()
}
