package netsapiens

import "net/http"

// op is one API operation the client makes. Everything the transport decides per operation
// (method, retries, whether the PBX's detailed log may see it, the metrics name) is in the
// operations table below, so that a new operation is classified in one place.
type op int

const (
	opVersion op = iota
	opToken
	opGetUser
	opListUsers
	opUpdateUser
	opGetDialPolicy
	opListDialPolicies
	opListDialPolicyPermissions
	opRevokeJWT
	opSendEmail
	opListCalls
	opEndCall
	opListCDRs
	opListDevices
	opGetDevice
	opCreateDevice
	opUpdateDevice
	opDeleteDevice
	opListPhones
	opGetPhone
	opCreatePhone
	opUpdatePhone
	opDeletePhone
	opV1UpdateSubscriber
	numOps
)

// opSpec classifies an operation.
type opSpec struct {
	name   string // the name Observe reports (a metrics label: fixed, never a user or a value)
	method string

	// secret: the request or the answer can hold a secret (a SIP or provisioning password, the
	// voicemail PIN, a token), so the request never carries X-NetSapiens-Log: that header turns
	// on the PBX's detailed logging, which would write the secret into the PBX's logs. A request
	// whose body carries a secret value (call.secrets) is never tagged either, whatever its
	// operation.
	secret bool

	// retry: a transient error is retried by do. Creates are not (a blind retry could create
	// twice): their callers read back first (CreateDevice, CreatePhone), and an email is sent
	// at most once. Token requests create nothing durable and are retried.
	retry bool

	noAuth bool // a token request: no Authorization header
}

// operations is the table of every operation, indexed by op.
var operations = [numOps]opSpec{
	opVersion:                   {name: "version", method: http.MethodGet, retry: true},
	opToken:                     {name: "token", method: http.MethodPost, secret: true, retry: true, noAuth: true},
	opGetUser:                   {name: "get_user", method: http.MethodGet, secret: true, retry: true},   // the answer has the PIN
	opListUsers:                 {name: "list_users", method: http.MethodGet, secret: true, retry: true}, // the answers have PINs
	opUpdateUser:                {name: "update_user", method: http.MethodPut, retry: true},              // secret when it sets the PIN
	opGetDialPolicy:             {name: "get_dial_policy", method: http.MethodGet, retry: true},
	opListDialPolicies:          {name: "list_dial_policies", method: http.MethodGet, retry: true},
	opListDialPolicyPermissions: {name: "list_dial_policy_permissions", method: http.MethodGet, retry: true},
	opRevokeJWT:                 {name: "revoke_jwt", method: http.MethodDelete, retry: true},
	opSendEmail:                 {name: "send_email", method: http.MethodPost, secret: true}, // the e-mail it sends: a reset link
	opListCalls:                 {name: "list_calls", method: http.MethodGet, retry: true},
	opEndCall:                   {name: "end_call", method: http.MethodDelete, retry: true},
	opListCDRs:                  {name: "list_cdrs", method: http.MethodGet, retry: true},
	opListDevices:               {name: "list_devices", method: http.MethodGet, secret: true, retry: true}, // SIP passwords
	opGetDevice:                 {name: "get_device", method: http.MethodGet, secret: true, retry: true},   // SIP password
	opCreateDevice:              {name: "create_device", method: http.MethodPost, secret: true},            // the new password
	opUpdateDevice:              {name: "update_device", method: http.MethodPut, retry: true},              // secret when it sets one
	opDeleteDevice:              {name: "delete_device", method: http.MethodDelete, retry: true},
	opListPhones:                {name: "list_phones", method: http.MethodGet, secret: true, retry: true}, // provisioning passwords
	opGetPhone:                  {name: "get_phone", method: http.MethodGet, secret: true, retry: true},
	opCreatePhone:               {name: "create_phone", method: http.MethodPost}, // secret when it sets one
	opUpdatePhone:               {name: "update_phone", method: http.MethodPut, retry: true},
	opDeletePhone:               {name: "delete_phone", method: http.MethodDelete, retry: true},
	// v1 (legacy API): the portal password, which only v1 can set; the body carries it.
	opV1UpdateSubscriber: {name: "v1_update_subscriber", method: http.MethodPost, secret: true, retry: true},
}

func (o op) spec() opSpec { return operations[o] }

// String returns the operation's name.
func (o op) String() string { return operations[o].name }
