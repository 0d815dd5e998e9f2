package remediate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/compromised-responder/bot/internal/session"
)

// Devices that recreate deleted and did not re-create outlive their incident: the close keeps
// their snapshots for the user (session.Store.CloseKeeping), the next incident shows them
// (Incident.Kept) and its recreate re-creates them. Closing an incident while such devices
// exist needs an explicit confirmation that names them (RunOptions.ConfirmMissing, Abort's
// confirmMissing), which the audit records.

// keptDevices is the KeepFunc of every close: the devices of inc's snapshot that recreate
// deleted and did not re-create, and those it carried over from an earlier incident that are
// not back, each naming the incident its snapshot belongs to. An incident that never
// snapshotted its devices leaves the user's kept devices as they are.
func keptDevices(inc *session.Incident) ([]session.DeviceSnapshot, bool) {
	if inc.DevicesAt.IsZero() {
		return nil, false
	}
	st := inc.Step(session.StepRecreate)
	var out []session.DeviceSnapshot
	for _, d := range inc.Devices {
		p := Progress(st.Progress[devKey(d.Device)])
		if p == DeviceDeleted || (d.From != "" && p == "") {
			d.From = d.BoundTo(inc.ID)
			out = append(out, d)
		}
	}
	return out, true
}

// DevicesMissing names the devices of inc that are deleted and not re-created (or kept from an
// earlier incident and not re-created yet), and the token that confirms closing with exactly
// these missing ("" when none): a short digest of the names, which the card puts in the
// block_id of the buttons whose confirm dialog names them.
func DevicesMissing(inc *session.Incident) (names []string, token string) {
	devs, ok := keptDevices(inc)
	if !ok {
		devs = inc.Kept
	}
	if len(devs) == 0 {
		return nil, ""
	}
	names = deviceIDs(devs)
	sum := sha256.Sum256([]byte(strings.Join(names, "\x00")))
	return names, hex.EncodeToString(sum[:4])
}

// checkMissing refuses to close inc (restore, abort) while devices are missing, unless
// confirm is the token of the devices missing now. It returns what was confirmed, for the audit.
func checkMissing(inc *session.Incident, confirm string) (confirmed string, err error) {
	names, token := DevicesMissing(inc)
	if token == "" {
		return "", nil
	}
	if confirm != token {
		return "", errorf(ErrDevicesMissing, "%s deleted and not re-created; closing the incident keeps the snapshot "+
			"for this user's next incident, which can re-create it; confirm closing with it missing to go on "+
			"(the card's dialog now names it; bot respond: --confirm-missing)",
			deviceList(names))
	}
	return deviceList(names) + " deleted and not re-created; the snapshot is kept for the user's next incident", nil
}

// deviceList is "device 1001a" or "devices 1001a, 1001b", at most a few names.
func deviceList(names []string) string {
	const few = 5
	list := joinComma(names)
	if len(names) > few {
		list = joinComma(names[:few]) + fmt.Sprintf(" and %d more", len(names)-few)
	}
	if len(names) == 1 {
		return "device " + list + " was"
	}
	return "devices " + list + " were"
}
