package netsapiens

import (
	"github.com/rs/zerolog"
)

// Device is a SIP registration of a user (v2 schema Device). Every field is a pointer so
// that "absent" differs from "empty"; the JSON names are the exact v45 names. The fields
// marked RO are read-only: Writable drops them.
type Device struct {
	Device *string `json:"device,omitempty"` // the id, e.g. "1001a"; required on create
	User   *string `json:"user,omitempty"`   // RO here: the path names the user
	Domain *string `json:"domain,omitempty"` // RO here: the path names the domain

	// SIP settings (writable).
	SIPPassword               *Secret `json:"device-sip-registration-password,omitempty"`
	RegistrationExpirySeconds *int    `json:"device-sip-registration-expiry-seconds,omitempty"`
	AllowedUserAgent          *string `json:"device-sip-allowed-user-agent,omitempty"`
	NATTraversal              *string `json:"device-sip-nat-traversal-enabled,omitempty"`
	SRTP                      *string `json:"device-srtp-enabled,omitempty"`
	NoToTagInCancel           *string `json:"device-sip-no-to-tag-in-cancel,omitempty"`
	IgnoreForPresence         *string `json:"device-sip-registration-ignore-for-presence-calculation,omitempty"`
	IgnoreReport              *string `json:"device-sip-registration-ignore-report-enabled,omitempty"`
	AutoAnswer                *string `json:"auto-answer-enabled,omitempty"`
	PushEnabled               *string `json:"device-push-enabled,omitempty"`
	ForceNotifyNewVoicemails  *string `json:"device-force-notify-new-voicemails-enabled,omitempty"`
	CallerIDNumberEmergency   *string `json:"caller-id-number-emergency,omitempty"`
	EmergencyAddressID        *string `json:"emergency-address-id,omitempty"`

	// Recording (writable).
	CallRecording          *string `json:"device-level-call-recording-enabled,omitempty"`
	RecordingConfiguration *string `json:"recording-configuration,omitempty"`

	// Provisioning (NDP) link (writable).
	Model                *string `json:"device-models-model,omitempty"`
	MAC                  *string `json:"device-provisioning-mac-address,omitempty"`
	Line                 *int    `json:"device-provisioning-line,omitempty"`
	Transport            *string `json:"device-provisioning-sip-transport-protocol,omitempty"`
	ProvisioningUsername *string `json:"device-provisioning-username,omitempty"`
	ProvisioningPassword *Secret `json:"device-provisioning-password,omitempty"`
	ProvisioningServer   *string `json:"device-provisioning-registration-core-server,omitempty"`
	Overrides            *string `json:"device-provisioning-overrides,omitempty"`

	// Read-only state.
	RegistrationURI            *string  `json:"device-sip-registration-uri,omitempty"`
	RegistrationState          *string  `json:"device-sip-registration-state,omitempty"`
	RegistrationContact        *string  `json:"device-sip-registration-contact,omitempty"`
	RegistrationCoreServer     *string  `json:"device-sip-registration-core-server,omitempty"`
	RegistrationDatetime       *string  `json:"device-sip-registration-datetime,omitempty"`
	RegistrationExpiresAt      *string  `json:"device-sip-registration-expires-datetime,omitempty"`
	RegistrationIPAddress      *string  `json:"device-sip-registration-ip-address,omitempty"`
	RegistrationUserAgent      *string  `json:"device-sip-registration-user-agent,omitempty"`
	LatencyCurrentSeconds      *float64 `json:"device-sip-latency-seconds-current,omitempty"`
	LatencyAverageSeconds      *float64 `json:"device-sip-latency-seconds-average,omitempty"`
	ErrorReadingEndpointModule *string  `json:"error-reading-from-endpoint-module,omitempty"`
	LoginUsername              *string  `json:"login-username,omitempty"`
	NameFullName               *string  `json:"name-full-name,omitempty"`

	// PasswordUnknown is set by CreateDevice when a create whose reply was lost turned out
	// to have been applied: the device exists but its generated SIP password was never seen.
	// The caller rotates it with UpdateDevice (a new SIPPassword) before handing it out.
	PasswordUnknown bool `json:"-"`
}

// WritableDeviceFields lists the JSON names of the Device fields that create and update
// accept (API.md §6, spec schema Device without readOnly), i.e. what Writable keeps.
var WritableDeviceFields = []string{
	"device",
	"device-sip-registration-password",
	"device-sip-registration-expiry-seconds",
	"device-sip-allowed-user-agent",
	"device-sip-nat-traversal-enabled",
	"device-srtp-enabled",
	"device-sip-no-to-tag-in-cancel",
	"device-sip-registration-ignore-for-presence-calculation",
	"device-sip-registration-ignore-report-enabled",
	"auto-answer-enabled",
	"device-push-enabled",
	"device-force-notify-new-voicemails-enabled",
	"caller-id-number-emergency",
	"emergency-address-id",
	"device-level-call-recording-enabled",
	"recording-configuration",
	"device-models-model",
	"device-provisioning-mac-address",
	"device-provisioning-line",
	"device-provisioning-sip-transport-protocol",
	"device-provisioning-username",
	"device-provisioning-password",
	"device-provisioning-registration-core-server",
	"device-provisioning-overrides",
}

// Writable returns a copy of d keeping only the writable fields (WritableDeviceFields):
// what a snapshot keeps and a re-create sends. Pointers are copied, not shared.
func (d Device) Writable() Device {
	return Device{
		Device:                    clonePtr(d.Device),
		SIPPassword:               clonePtr(d.SIPPassword),
		RegistrationExpirySeconds: clonePtr(d.RegistrationExpirySeconds),
		AllowedUserAgent:          clonePtr(d.AllowedUserAgent),
		NATTraversal:              clonePtr(d.NATTraversal),
		SRTP:                      clonePtr(d.SRTP),
		NoToTagInCancel:           clonePtr(d.NoToTagInCancel),
		IgnoreForPresence:         clonePtr(d.IgnoreForPresence),
		IgnoreReport:              clonePtr(d.IgnoreReport),
		AutoAnswer:                clonePtr(d.AutoAnswer),
		PushEnabled:               clonePtr(d.PushEnabled),
		ForceNotifyNewVoicemails:  clonePtr(d.ForceNotifyNewVoicemails),
		CallerIDNumberEmergency:   clonePtr(d.CallerIDNumberEmergency),
		EmergencyAddressID:        clonePtr(d.EmergencyAddressID),
		CallRecording:             clonePtr(d.CallRecording),
		RecordingConfiguration:    clonePtr(d.RecordingConfiguration),
		Model:                     clonePtr(d.Model),
		MAC:                       clonePtr(d.MAC),
		Line:                      clonePtr(d.Line),
		Transport:                 clonePtr(d.Transport),
		ProvisioningUsername:      clonePtr(d.ProvisioningUsername),
		ProvisioningPassword:      clonePtr(d.ProvisioningPassword),
		ProvisioningServer:        clonePtr(d.ProvisioningServer),
		Overrides:                 clonePtr(d.Overrides),
	}
}

// ID returns the device id, or "" when absent.
func (d Device) ID() string { return deref(d.Device) }

// MarshalZerologObject logs the device's identity and provisioning link, never a password.
func (d Device) MarshalZerologObject(e *zerolog.Event) {
	e.Str("device", deref(d.Device)).Str("user", deref(d.User)).Str("domain", deref(d.Domain))
	if d.MAC != nil {
		e.Str("mac", *d.MAC)
	}
	if d.Model != nil {
		e.Str("model", *d.Model)
	}
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
