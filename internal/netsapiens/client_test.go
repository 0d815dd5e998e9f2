package netsapiens_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/google/go-cmp/cmp"
)

func TestNewValidatesConfig(t *testing.T) {
	oauth := &netsapiens.OAuthConfig{ClientID: "id", ClientSecret: "cs-SECRET", Username: "ops@acme.example", Password: "pw-SECRET"}
	tests := []struct {
		name    string
		cfg     netsapiens.Config
		wantErr []string // substrings; nil = valid
	}{
		{"https with key", netsapiens.Config{BaseURL: "https://pbx.example.com/ns-api/v2", APIKey: "k-SECRET"}, nil},
		{"http loopback v4", netsapiens.Config{BaseURL: "http://127.0.0.2:8080/ns-api/v2/", APIKey: "k"}, nil},
		{"http loopback v6", netsapiens.Config{BaseURL: "http://[::1]:8080/ns-api/v2", OAuth: oauth}, nil},
		{"http localhost", netsapiens.Config{BaseURL: "http://localhost/ns-api/v2", APIKey: "k"}, nil},
		{"http remote", netsapiens.Config{BaseURL: "http://pbx.example.com/ns-api/v2", APIKey: "k-SECRET"}, []string{"https"}},
		{"ftp", netsapiens.Config{BaseURL: "ftp://127.0.0.1/x", APIKey: "k"}, []string{"https"}},
		{"empty url", netsapiens.Config{APIKey: "k"}, []string{"BaseURL is empty"}},
		{"relative url", netsapiens.Config{BaseURL: "/ns-api/v2", APIKey: "k"}, []string{"absolute"}},
		{"query", netsapiens.Config{BaseURL: "https://pbx.example.com/v2?x=1", APIKey: "k"}, []string{"query"}},
		{"userinfo", netsapiens.Config{BaseURL: "https://u:p@pbx.example.com/v2", APIKey: "k"}, []string{"credentials"}},
		{"both auth", netsapiens.Config{BaseURL: "https://pbx.example.com", APIKey: "k-SECRET", OAuth: oauth}, []string{"not both"}},
		{"no auth", netsapiens.Config{BaseURL: "https://pbx.example.com"}, []string{"set APIKey or OAuth"}},
		{"oauth missing", netsapiens.Config{BaseURL: "https://pbx.example.com", OAuth: &netsapiens.OAuthConfig{ClientID: "id"}},
			[]string{"OAuth.ClientSecret is empty", "OAuth.Password is empty", "OAuth.Username is empty"}},
		{"negatives and several problems", netsapiens.Config{BaseURL: "http://pbx.example.com", APIKey: "k-SECRET", MaxInflight: -1, Timeout: -1},
			[]string{"https", "MaxInflight is negative", "Timeout is negative"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := netsapiens.New(tc.cfg)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, netsapiens.ErrInvalid) {
				t.Fatalf("New error = %v, want KindInvalid", err)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error %q echoes a secret", err)
			}
		})
	}
}

func TestErrorKinds(t *testing.T) {
	tests := []struct {
		status   int
		body     string
		want     netsapiens.Kind
		sentinel error
		wantMsg  string
	}{
		{400, `{"code":400,"message":"Invalid dial-policy"}`, netsapiens.KindInvalid, netsapiens.ErrInvalid, "Invalid dial-policy"},
		{401, `{"code":401,"message":"Unauthorized"}`, netsapiens.KindUnauthorized, netsapiens.ErrUnauthorized, "Unauthorized"},
		{403, `{"code":403,"message":"Permission Denied"}`, netsapiens.KindForbidden, netsapiens.ErrForbidden, "Permission Denied"},
		{404, `{"code":404,"message":"User 1001 does not exist in domain acme.example"}`, netsapiens.KindNotFound, netsapiens.ErrNotFound, "User 1001 does not exist in domain acme.example"},
		{409, `{"code":409,"message":"UID already exists."}`, netsapiens.KindConflict, netsapiens.ErrConflict, "UID already exists."},
		{422, `not json`, netsapiens.KindInvalid, netsapiens.ErrInvalid, "not json"},
		{429, `{"code":429,"message":"slow down"}`, netsapiens.KindTransient, netsapiens.ErrTransient, "slow down"},
		{500, ``, netsapiens.KindTransient, netsapiens.ErrTransient, "Internal Server Error"},
		{503, `<html>busy</html>`, netsapiens.KindTransient, netsapiens.ErrTransient, "<html>busy</html>"},
		{302, ``, netsapiens.KindInternal, nil, "Found"},
		{400, `{"code":400,"message":"bad body {\"voicemail-login-pin\":\"918273\",\"device-sip-registration-password\":\"hunter2hunter2\"} key nsr_testKEYtestKEY"}`,
			netsapiens.KindInvalid, netsapiens.ErrInvalid, `bad body {"voicemail-login-pin":[redacted],"device-sip-registration-password":[redacted]} key [redacted]`},
	}
	for _, tc := range tests {
		t.Run(http.StatusText(tc.status)+"/"+string(tc.want), func(t *testing.T) {
			pbx := newFakePBX(t, func(w http.ResponseWriter, r *http.Request, _ string) { writeJSON(w, tc.status, tc.body) })
			c, _ := newClient(t, pbx.URL(), func(cfg *netsapiens.Config) { cfg.MaxRetries = -1 })
			_, err := c.GetUser(context.Background(), "acme.example", "1001")
			var e *netsapiens.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not *Error", err)
			}
			got := *e
			want := netsapiens.Error{Status: tc.status, Kind: tc.want, Message: tc.wantMsg, Method: "GET", Path: "/domains/acme.example/users/1001"}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(netsapiens.Error{}), cmp.FilterPath(func(p cmp.Path) bool {
				return p.Last().String() == ".cause" || p.Last().String() == ".retryAfter"
			}, cmp.Ignore())); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if netsapiens.KindOf(err) != tc.want {
				t.Errorf("KindOf = %s, want %s", netsapiens.KindOf(err), tc.want)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("errors.Is(err, %v) = false", tc.sentinel)
			}
			if tc.want != netsapiens.KindNotFound && errors.Is(err, netsapiens.ErrNotFound) {
				t.Errorf("errors.Is(err, ErrNotFound) = true for %s", tc.want)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		failures  int    // answered with fail before a success
		fail      string // "503", "429", "drop"
		call      func(c *netsapiens.Client) error
		method    string
		path      string
		wantCalls int
		wantKind  netsapiens.Kind // "" = success
		minSleep  time.Duration   // the first recorded wait is at least this
	}{
		{"GET recovers after 503s", 2, "503", getUser, "GET", "/domains/acme.example/users/1001", 3, "", 0},
		{"GET gives up after MaxRetries", 10, "503", getUser, "GET", "/domains/acme.example/users/1001", 4, netsapiens.KindTransient, 0},
		{"GET honours Retry-After", 1, "429", getUser, "GET", "/domains/acme.example/users/1001", 2, "", 7 * time.Second},
		{"GET recovers after a dropped connection", 1, "drop", getUser, "GET", "/domains/acme.example/users/1001", 2, "", 0},
		{"PUT retried", 1, "503", putPolicy, "PUT", "/domains/acme.example/users/1001", 2, "", 0},
		{"POST email never retried", 1, "503", sendEmail, "POST", "/domains/acme.example/users/1001/email", 1, netsapiens.KindTransient, 0},
		{"DELETE lost reply then 404 is success", 1, "drop", deleteDevice, "DELETE", "/domains/acme.example/users/1001/devices/1001a", 2, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			pbx := newFakePBX(t, func(w http.ResponseWriter, r *http.Request, _ string) {
				if int(n.Add(1)) <= tc.failures {
					switch tc.fail {
					case "503":
						writeJSON(w, 503, `{"code":503,"message":"busy"}`)
					case "429":
						w.Header().Set("Retry-After", "7")
						writeJSON(w, 429, `{"code":429,"message":"rate"}`)
					case "drop":
						dropConnection(t, w)
					}
					return
				}
				switch r.Method {
				case "GET":
					writeJSON(w, 200, `{"domain":"acme.example","user":"1001","dial-policy":"US and Canada"}`)
				case "DELETE":
					writeJSON(w, 404, `{"code":404,"message":"Device 1001a not found"}`) // the lost reply was the delete's
				default:
					writeJSON(w, 202, `{"code":202,"message":"Accepted"}`)
				}
			})
			c, rec := newClient(t, pbx.URL(), nil)
			err := tc.call(c)
			if got := netsapiens.KindOf(err); (err == nil) != (tc.wantKind == "") || err != nil && got != tc.wantKind {
				t.Fatalf("err = %v (kind %s), want kind %q", err, got, tc.wantKind)
			}
			if got := pbx.count(tc.method, tc.path); got != tc.wantCalls {
				t.Errorf("%s %s made %d times, want %d", tc.method, tc.path, got, tc.wantCalls)
			}
			sleeps := rec.all()
			if len(sleeps) != tc.wantCalls-1 {
				t.Errorf("waited %d times, want %d", len(sleeps), tc.wantCalls-1)
			}
			if tc.minSleep > 0 && (len(sleeps) == 0 || sleeps[0] < tc.minSleep) {
				t.Errorf("waits %v, want the first ≥ %v", sleeps, tc.minSleep)
			}
		})
	}
}

func getUser(c *netsapiens.Client) error {
	_, err := c.GetUser(context.Background(), "acme.example", "1001")
	return err
}

func putPolicy(c *netsapiens.Client) error {
	return c.UpdateUser(context.Background(), "acme.example", "1001", netsapiens.UserUpdate{DialPolicy: netsapiens.Ptr("Deny All")})
}

func sendEmail(c *netsapiens.Client) error {
	return c.SendEmail(context.Background(), "acme.example", "1001", "reset.php", "Reset")
}

func deleteDevice(c *netsapiens.Client) error {
	return c.DeleteDevice(context.Background(), "acme.example", "1001", "1001a")
}

func TestDeleteNotFoundFirstIsAnError(t *testing.T) {
	pbx := newFakePBX(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		writeJSON(w, 404, `{"code":404,"message":"no such device"}`)
	})
	c, _ := newClient(t, pbx.URL(), nil)
	if err := deleteDevice(c); !errors.Is(err, netsapiens.ErrNotFound) {
		t.Fatalf("DeleteDevice = %v, want ErrNotFound", err)
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	pbx := newFakePBX(t, func(w http.ResponseWriter, r *http.Request, _ string) { writeJSON(w, 502, `{}`) })
	c, rec := newClient(t, pbx.URL(), func(cfg *netsapiens.Config) {
		cfg.MaxRetries = 6
		cfg.RetryBaseDelay = 100 * time.Millisecond
		cfg.RetryMaxDelay = 800 * time.Millisecond
	})
	_ = getUser(c)
	sleeps := rec.all()
	if len(sleeps) != 6 {
		t.Fatalf("waited %d times, want 6", len(sleeps))
	}
	for i, d := range sleeps {
		nominal := min(100*time.Millisecond<<i, 800*time.Millisecond)
		if d < nominal/2 || d > nominal*3/2 {
			t.Errorf("wait %d = %v, want within 0.5–1.5 × %v", i, d, nominal)
		}
	}
}

func TestTimeoutIsTransient(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	pbx := newFakePBX(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c, _ := newClient(t, pbx.URL(), func(cfg *netsapiens.Config) {
		cfg.Timeout = 50 * time.Millisecond
		cfg.MaxRetries = 1
	})
	err := getUser(c)
	if !errors.Is(err, netsapiens.ErrTransient) {
		t.Fatalf("GetUser = %v, want ErrTransient", err)
	}
	if !strings.Contains(err.Error(), "no reply within 50ms") {
		t.Errorf("error %q does not say it timed out", err)
	}
	if got := pbx.count("GET", "/domains/acme.example/users/1001"); got != 2 {
		t.Errorf("GET made %d times, want 2", got)
	}
}

func TestContextCancellation(t *testing.T) {
	started := make(chan struct{}, 10)
	pbx := newFakePBX(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		started <- struct{}{}
		<-r.Context().Done()
	})
	c, _ := newClient(t, pbx.URL(), nil)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.GetUser(ctx, "acme.example", "1001")
		errc <- err
	}()
	<-started
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("GetUser after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("GetUser did not return after cancel")
	}

	// An already-cancelled context makes no request at all.
	before := len(pbx.requests())
	if _, err := c.GetUser(ctx, "acme.example", "1001"); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetUser with a cancelled ctx = %v, want context.Canceled", err)
	}
	if after := len(pbx.requests()); after != before {
		t.Errorf("a cancelled call made %d requests", after-before)
	}
}

func TestMaxInflight(t *testing.T) {
	var cur, peak atomic.Int32
	gate := make(chan struct{})
	arrived := make(chan struct{}, 16)
	pbx := newFakePBX(t, func(w http.ResponseWriter, r *http.Request, _ string) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		arrived <- struct{}{}
		<-gate
		cur.Add(-1)
		writeJSON(w, 200, `{"domain":"acme.example","user":"1001"}`)
	})
	c, _ := newClient(t, pbx.URL(), func(cfg *netsapiens.Config) { cfg.MaxInflight = 2 })

	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- getUser(c)
		}()
	}
	<-arrived
	<-arrived

	// A caller waiting for a slot gives up with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.GetUser(ctx, "acme.example", "1001"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GetUser waiting for a slot = %v, want context.DeadlineExceeded", err)
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("GetUser: %v", err)
		}
	}
	if p := peak.Load(); p != 2 {
		t.Errorf("peak concurrent requests = %d, want 2", p)
	}
}
