package remediate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
	"github.com/compromised-responder/bot/internal/testenv"
)

// The desk phone's MAC as the simulator answers it and as a real PBX may spell it (as entered).
const deskMAC, deskMACRaw = "0004f2aabbcc", "00:04:F2:AA:BB:CC"

// TestRelinkComparesNormalisedMACs (issue 10, "also check"): a real PBX may answer a phone's MAC
// as it was entered; the simulator always normalises it. Recreate must still find the desk phone,
// re-link its line and finish: a raw MAC compared with the snapshot's normalised one finds no
// phone ("phone … is gone from the PBX") and leaves the line empty. Both places that normalise
// are covered: the client's decode (a proxy answers every GET with the raw spelling) and the
// engine's comparison (a PBX whose phones and devices carry the raw spelling after the decode).
func TestRelinkComparesNormalisedMACs(t *testing.T) {
	run := func(t *testing.T, v *env, e *remediate.Engine) {
		t.Helper()
		inc := v.openDenied(e, "1001", "acme.example")
		if _, err := e.Run(context.Background(), inc.ID, session.StepRecreate, "U1", remediate.RunOptions{}); err != nil {
			t.Fatalf("recreate with raw MACs: %v", err)
		}
		if st := stepOf(v, inc.ID, session.StepRecreate); st.Status != session.StatusDone {
			t.Errorf("recreate = %s (%s), want done", st.Status, st.ErrMessage)
		}
		linked := false
		for _, p := range v.sim.Phones("acme.example") {
			if p["device-provisioning-mac-address"] == deskMAC {
				uri, _ := p["device-provisioning-sip-uri-1"].(string)
				linked = strings.HasPrefix(uri, "sip:1001@")
			}
		}
		if !linked {
			t.Errorf("the desk phone's line 1 is not re-linked: %v", v.sim.Phones("acme.example"))
		}
	}

	t.Run("PBX answers", func(t *testing.T) {
		v := newEnvOn(t, testenv.NewRedis(t))
		var rawGets atomic.Int32
		pbx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet {
				v.sim.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			v.sim.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if bytes.Contains(body, []byte(`"`+deskMAC+`"`)) {
				rawGets.Add(1)
				body = bytes.ReplaceAll(body, []byte(`"`+deskMAC+`"`), []byte(`"`+deskMACRaw+`"`))
			}
			for k, vs := range rec.Header() {
				if k != "Content-Length" {
					w.Header()[k] = vs
				}
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
		}))
		defer pbx.Close()
		run(t, v, engineWithPBX(t, v, v.store, "A", pbx.URL+nstest.BasePath))
		if rawGets.Load() == 0 {
			t.Error("no answer carried the desk phone's MAC: the test proves nothing")
		}
	})

	t.Run("engine compares", func(t *testing.T) {
		v := newEnvOn(t, testenv.NewRedis(t))
		e, err := remediate.New(rawMACs{v.client()}, v.store, remediate.Config{Owner: "A", Logger: v.log, Now: v.clock.Now, Keys: v.keys})
		if err != nil {
			t.Fatal(err)
		}
		run(t, v, e)
	})
}

// rawMACs is the real client, with the desk phone's MAC spelt raw in what it read (phones and
// devices), as if the decode had not normalised it.
type rawMACs struct{ remediate.PBX }

func (p rawMACs) ListPhones(ctx context.Context, domain string) ([]netsapiens.Phone, error) {
	phones, err := p.PBX.ListPhones(ctx, domain)
	for i := range phones {
		if m := phones[i].MAC; m != nil && *m == deskMAC {
			phones[i].MAC = netsapiens.Ptr(deskMACRaw)
		}
	}
	return phones, err
}

func (p rawMACs) ListDevices(ctx context.Context, domain, user string) ([]netsapiens.Device, error) {
	devs, err := p.PBX.ListDevices(ctx, domain, user)
	for i := range devs {
		if m := devs[i].MAC; m != nil && *m == deskMAC {
			devs[i].MAC = netsapiens.Ptr(deskMACRaw)
		}
	}
	return devs, err
}

// TestProvisioningUsernameNotOnTheCard (issue 10, "also check"): a PBX that refuses a create
// and echoes the request body in its error (as some do) must not put the device's provisioning
// username, password or overrides on the card: the failed step's message, its results, the audit
// and Redis stay clean, and the device's snapshot is kept for Retry.
func TestProvisioningUsernameNotOnTheCard(t *testing.T) {
	v := newEnvSeed(t, testenv.NewRedis(t), credSeed())
	pbx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/users/1001/devices") {
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			msg, _ := json.Marshal(map[string]any{"code": 400, "message": "Invalid device: " + string(body)})
			_, _ = w.Write(msg)
			return
		}
		v.sim.ServeHTTP(w, r)
	}))
	defer pbx.Close()
	e := engineWithPBX(t, v, v.store, "A", pbx.URL+nstest.BasePath)
	inc := v.openDenied(e, "1001", "acme.example")
	if _, err := e.Run(context.Background(), inc.ID, session.StepRecreate, "U1", remediate.RunOptions{}); err == nil {
		t.Fatal("recreate succeeded against a PBX that refuses every create")
	}
	got := v.get(inc.ID)
	st := got.Step(session.StepRecreate)
	card := st.ErrMessage + "\n" + st.Summary
	for _, s := range st.SubResults {
		card += "\n" + s.Name + " " + s.Detail
	}
	es, err := v.store.Audit(context.Background(), inc.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range es {
		card += "\n" + a.Before + " " + a.After + " " + a.Detail
	}
	if !strings.Contains(card, "Invalid device") {
		t.Fatalf("the PBX's refusal is not on the card: %s", card)
	}
	dump := dumpRedis(t, v)
	for _, secret := range []string{provUser, provPassword, provOverrides} {
		if strings.Contains(card, secret) || strings.Contains(dump, secret) || strings.Contains(v.logs.String(), secret) {
			t.Errorf("%q is on the card, in Redis or in the logs", secret)
		}
	}
}
