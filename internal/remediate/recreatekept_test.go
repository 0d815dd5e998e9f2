package remediate_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// TestSeq1FailedRecreateDoesNotLoseDeviceOnClose is issue 10's sequence 1: the PBX refuses
// the create of a deleted device with the full and the minimal body; restore or abort must
// say so and need a confirmation (audited), the snapshot outlives the incident, and the
// user's next incident shows the device and re-creates it.
func TestSeq1FailedRecreateDoesNotLoseDeviceOnClose(t *testing.T) {
	const devices = "/domains/acme.example/users/1001/devices"
	for _, how := range []string{"restore", "abort"} {
		t.Run(how, func(t *testing.T) {
			v := newEnv(t)
			e := v.engine("A", nil)
			ctx := context.Background()
			inc := v.openDenied(e, "1001", "acme.example")
			// The first create (device 1001, the desk phone) is refused with both bodies.
			v.sim.FailNext("POST", devices, 400, "device-models-model: unsupported value")
			v.sim.FailNext("POST", devices, 400, "device-models-model: unsupported value")
			if _, err := e.Run(ctx, inc.ID, session.StepRecreate, "U1", remediate.RunOptions{}); !errors.Is(err, remediate.ErrNotRestored) {
				t.Fatalf("recreate = %v, want ErrNotRestored", err)
			}
			if _, ok := simDevice(v, "1001"); ok {
				t.Fatal("device 1001 exists after the refused creates; the test needs it deleted")
			}
			cur := v.get(inc.ID)
			names, token := remediate.DevicesMissing(&cur)
			if !slices.Equal(names, []string{"1001"}) || token == "" {
				t.Fatalf("DevicesMissing = %v, %q", names, token)
			}
			closeIt := func(confirm string) error {
				if how == "abort" {
					_, err := e.Abort(ctx, inc.ID, "U1", "", confirm)
					return err
				}
				_, err := e.Run(ctx, inc.ID, session.StepRestore, "U1", remediate.RunOptions{ConfirmMissing: confirm})
				return err
			}
			for _, bad := range []string{"", "00000000"} {
				err := closeIt(bad)
				if !errors.Is(err, remediate.ErrDevicesMissing) || !strings.Contains(remediate.UserMessage(err), "device 1001 was deleted and not re-created") {
					t.Fatalf("%s with confirmation %q = %v, want ErrDevicesMissing naming 1001", how, bad, err)
				}
				if got := v.get(inc.ID); !got.Open() || got.Step(session.StepRestore).Status != session.StatusReady {
					t.Fatalf("a refused %s changed the incident: %s, restore %s", how, got.State, got.Step(session.StepRestore).Status)
				}
			}
			if err := closeIt(token); err != nil {
				t.Fatalf("%s confirmed: %v", how, err)
			}
			if got := v.get(inc.ID); got.Open() {
				t.Fatalf("incident still open after a confirmed %s", how)
			}
			audit, err := v.store.Audit(ctx, inc.ID)
			if err != nil {
				t.Fatal(err)
			}
			confirmed := false
			for _, a := range audit {
				confirmed = confirmed || (a.Action == "confirmed.devices_missing" && a.Actor == "U1" && strings.Contains(a.Detail, "1001"))
			}
			if !confirmed {
				t.Errorf("no audit entry of the confirmation: %+v", audit)
			}
			kept, err := v.store.UserDevices(ctx, "1001", "acme.example")
			if err != nil || len(kept) != 1 || kept[0].Device != "1001" || kept[0].From != inc.ID {
				t.Fatalf("kept devices after the close = %+v, %v", kept, err)
			}

			// The next incident shows the device and re-creates it from the kept snapshot.
			inc2 := v.open(e, "1001", "acme.example")
			if len(inc2.Kept) != 1 || inc2.Kept[0].Device != "1001" {
				t.Fatalf("new incident's kept devices = %+v", inc2.Kept)
			}
			if n, _ := remediate.DevicesMissing(&inc2); !slices.Equal(n, []string{"1001"}) {
				t.Fatalf("new incident's missing devices = %v", n)
			}
			for _, s := range []session.Step{session.StepDeny, session.StepRecreate} {
				if _, err := e.Run(ctx, inc2.ID, s, "U1", remediate.RunOptions{}); err != nil {
					t.Fatalf("%s of the new incident: %v", s, err)
				}
			}
			d, ok := simDevice(v, "1001")
			if !ok || d["device-models-model"] != "Polycom VVX450" || d["device-provisioning-mac-address"] != "0004f2aabbcc" {
				t.Fatalf("device 1001 after the new incident's recreate = %v (present %v)", d, ok)
			}
			got2 := v.get(inc2.ID)
			if n, _ := remediate.DevicesMissing(&got2); len(n) != 0 {
				t.Fatalf("still missing after the re-create: %v", n)
			}
			if _, err := e.Run(ctx, inc2.ID, session.StepRestore, "U1", remediate.RunOptions{}); err != nil {
				t.Fatalf("restore of the new incident: %v", err)
			}
			if kept, err := v.store.UserDevices(ctx, "1001", "acme.example"); err != nil || len(kept) != 0 {
				t.Fatalf("kept devices after the device is back = %+v, %v", kept, err)
			}
		})
	}
}

// simDevice returns device id of 1001@acme.example as the simulator shows it.
func simDevice(v *env, id string) (map[string]any, bool) {
	for _, d := range v.sim.Devices("acme.example", "1001") {
		if d["device"] == id {
			return d, true
		}
	}
	return nil, false
}
