package netsapiens_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/netsapiens/nstest"
)

// TestSeq7SecretsNotInPBXRequestLogs replays the PBX side of a runbook with the incident's log tag
// (issue 10, sequence 7): the verify reads (user with its PIN, devices with their SIP passwords),
// the re-create, the reset and its read-back, the credentials read and the phones. No request
// whose request or answer held a secret, as the simulator saw it, may carry X-NetSapiens-Log,
// which turns on the PBX's detailed logging; the deny PUT and the other secret-free calls
// still carry it.
func TestSeq7SecretsNotInPBXRequestLogs(t *testing.T) {
	srv, c, _ := startSim(t, nstest.Options{}, nil)
	ctx := netsapiens.WithLogTag(context.Background(), "INC-SECRET")

	// Open and verify: the user (its answer carries the voicemail PIN) and the devices.
	_, err := c.GetUser(ctx, demoDomain, demoUser)
	must(t, err)
	devs, err := c.ListDevices(ctx, demoDomain, demoUser)
	must(t, err)
	_, err = c.GetDialPolicy(ctx, demoDomain, "Deny All")
	must(t, err)
	// Deny.
	must(t, c.UpdateUser(ctx, demoDomain, demoUser, netsapiens.UserUpdate{DialPolicy: netsapiens.Ptr("Deny All")}))
	// Recreate a softphone: delete, create (the answer has the new password), read back.
	var soft netsapiens.Device
	for _, d := range devs {
		if d.MAC == nil {
			soft = d
		}
	}
	if soft.ID() == "" {
		t.Fatalf("the demo user has no softphone: %v", devs)
	}
	must(t, c.DeleteDevice(ctx, demoDomain, demoUser, soft.ID()))
	body := soft.Writable()
	body.SIPPassword = nil
	created, err := c.CreateDevice(ctx, demoDomain, demoUser, body)
	must(t, err)
	if created.SIPPassword == nil || created.SIPPassword.Reveal() == "" {
		t.Fatalf("create returned no password")
	}
	_, err = c.GetDevice(ctx, demoDomain, demoUser, soft.ID())
	must(t, err)
	// Reset: new PIN and SIP password, then the read-back and the credentials read.
	must(t, c.UpdateUser(ctx, demoDomain, demoUser, netsapiens.UserUpdate{VoicemailPIN: netsapiens.SecretPtr("918273")}))
	must(t, c.UpdateDevice(ctx, demoDomain, demoUser, soft.ID(), netsapiens.Device{SIPPassword: netsapiens.SecretPtr("NewPw0123456789")}))
	_, err = c.GetUser(ctx, demoDomain, demoUser)
	must(t, err)
	_, err = c.ListDevices(ctx, demoDomain, demoUser)
	must(t, err)
	must(t, c.RevokeJWT(ctx, demoDomain, demoUser))
	// The reset e-mail: the message the PBX renders (a reset link) is a secret its log would write.
	must(t, c.SendEmail(ctx, demoDomain, demoUser, "password_reset.php", "Reset your password"))
	_, err = c.ListPhones(ctx, demoDomain)
	must(t, err)
	// Restore (the restore_original dialog lists the policies first).
	_, err = c.ListDialPolicies(ctx, demoDomain)
	must(t, err)
	must(t, c.UpdateUser(ctx, demoDomain, demoUser, netsapiens.UserUpdate{DialPolicy: netsapiens.Ptr("US and Canada")}))

	secret, tagged := 0, 0
	for _, call := range srv.Calls() {
		if call.Secret {
			secret++
			if call.LogTag != "" {
				t.Errorf("%s %s held a secret and carries X-NetSapiens-Log %q", call.Method, call.Path, call.LogTag)
			}
		}
		if call.LogTag == "INC-SECRET" {
			tagged++
		}
	}
	// The sequence must exercise both sides, or the loop above proves nothing.
	if secret < 6 || tagged < 4 {
		t.Errorf("%d calls held a secret and %d carry the tag; the sequence lost its meaning", secret, tagged)
	}
}

// TestObserveReportsEachRequest checks the metrics hook: one report per request after its
// retries, named by the operation, with the error it ended with.
func TestObserveReportsEachRequest(t *testing.T) {
	var (
		mu  sync.Mutex
		got []string
	)
	srv, c, _ := startSim(t, nstest.Options{}, func(cfg *netsapiens.Config) {
		cfg.Observe = func(op string, _ time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, op+" "+string(netsapiens.KindOf(err)))
		}
	})
	ctx := context.Background()
	_, err := c.GetUser(ctx, demoDomain, demoUser)
	must(t, err)
	if _, err := c.GetUser(ctx, demoDomain, "9999"); err == nil {
		t.Fatal("GetUser of an unknown user succeeded")
	}
	srv.FailNext(http.MethodGet, "/domains/"+demoDomain+"/users/"+demoUser+"/devices", http.StatusServiceUnavailable, "busy")
	_, err = c.ListDevices(ctx, demoDomain, demoUser)
	must(t, err)
	if _, err := c.GetUser(ctx, demoDomain, "bad/user"); err == nil {
		t.Fatal("a bad user was accepted")
	}
	mu.Lock()
	defer mu.Unlock()
	// The retried 503 is one request; a value refused before any request is none.
	want := []string{"get_user ", "get_user not_found", "list_devices "}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("observed (-want +got):\n%s", diff)
	}
}

// TestProvisioningUsernameScrubbedFromErrors: a PBX that echoes a refused device body in its
// error text must not put the provisioning username (a credential of the phone's config
// server) or the overrides on the card, which shows the error's message (issue 10).
func TestProvisioningUsernameScrubbedFromErrors(t *testing.T) {
	pbx := newFakePBX(t, func(w http.ResponseWriter, r *http.Request, body string) {
		writeJSON(w, 400, `{"code":400,"message":"Invalid request (device-provisioning-username=other-user-77): `+
			strings.ReplaceAll(body, `"`, `\"`)+`"}`)
	})
	c, _ := newClient(t, pbx.URL(), nil)
	d := netsapiens.Device{Device: netsapiens.Ptr("1001b"), MAC: netsapiens.Ptr("0004f2aabbcc"), Model: netsapiens.Ptr("yealink-t54w"),
		ProvisioningUsername: netsapiens.Ptr("prov-1001b-x7"), ProvisioningPassword: netsapiens.SecretPtr("ProvPw-123456"),
		Overrides: netsapiens.Ptr("account.1.auth_name=secretauth99")}
	_, err := c.CreateDevice(context.Background(), "acme.example", "1001", d)
	if err == nil {
		t.Fatal("create succeeded against a PBX that refuses it")
	}
	for _, leak := range []string{"prov-1001b-x7", "ProvPw-123456", "secretauth99", "other-user-77"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q shows %q", err, leak)
		}
	}
	if !strings.Contains(err.Error(), "Invalid request") {
		t.Errorf("error %q lost the PBX's message", err)
	}
}
