package netsapiens

import (
	"context"
	"errors"
	"net/http"
	"net/url"
)

// devicePath validates the segments and returns "/domains/{d}/users/{u}/devices[/{device}]".
func devicePath(domain, user, device string) (string, error) {
	p, err := userPath(domain, user)
	if err != nil {
		return "", err
	}
	p += "/devices"
	if device != "" {
		if err := ValidateDevice(device); err != nil {
			return "", err
		}
		p += "/" + url.PathEscape(device)
	}
	return p, nil
}

// ListDevices lists a user's devices (GET …/users/{u}/devices). Errors: KindInvalid (bad path
// segment, no request made), KindNotFound (no such user), KindUnauthorized, KindForbidden,
// KindTransient, KindInternal, or the context's error.
func (c *Client) ListDevices(ctx context.Context, domain, user string) ([]Device, error) {
	p, err := devicePath(domain, user, "")
	if err != nil {
		return nil, err
	}
	return getList[Device](ctx, c, opListDevices, p, nil)
}

// GetDevice reads one device (GET …/devices/{device}). Errors: as ListDevices; KindNotFound
// when the device does not exist. An empty device id is KindInvalid.
func (c *Client) GetDevice(ctx context.Context, domain, user, device string) (Device, error) {
	if device == "" {
		return Device{}, invalidf("device is empty")
	}
	p, err := devicePath(domain, user, device)
	if err != nil {
		return Device{}, err
	}
	var d Device
	err = c.get(ctx, opGetDevice, p, nil, &d)
	return d, err
}

// createDeviceBody is the POST body: the writable fields and synchronous "yes", so the reply
// is the new Device with its generated SIP password.
type createDeviceBody struct {
	Synchronous string `json:"synchronous"`
	Device
}

// CreateDevice creates a device from d's writable fields (POST …/devices, synchronous "yes")
// and returns the Device from the 200 reply; when d has no SIPPassword the PBX generates one
// and the reply carries it. The request is never tagged with X-NetSapiens-Log (the reply holds
// a password).
//
// A create is never retried blindly: after a transient error (the reply may have been lost
// after the PBX applied it) the device is read back first; if it exists the create counts as
// applied and the device is returned with PasswordUnknown set unless the read shows the
// password (or d carried one), otherwise the create is tried again. A 409 after such an error
// also means applied.
//
// Errors: KindInvalid (no or bad device id, bad path segment: no request made; or the PBX
// refused the body), KindConflict (the device already existed), KindNotFound (no such user),
// KindUnauthorized, KindForbidden, KindTransient (outcome unknown after all retries),
// KindInternal, or the context's error.
func (c *Client) CreateDevice(ctx context.Context, domain, user string, d Device) (Device, error) {
	id := d.ID()
	if id == "" {
		return Device{}, invalidf("device is empty")
	}
	p, err := devicePath(domain, user, "")
	if err != nil {
		return Device{}, err
	}
	if err := ValidateDevice(id); err != nil {
		return Device{}, err
	}
	body := d.Writable()
	cl := call{op: opCreateDevice, path: p, body: createDeviceBody{Synchronous: "yes", Device: body}, secrets: deviceSecrets(body)}

	hadTransient := false
	for attempt := 0; ; attempt++ {
		rep, err := c.do(ctx, cl)
		switch {
		case err == nil:
			return c.createdDevice(ctx, domain, user, d, cl, rep)
		case errors.Is(err, ErrConflict) && hadTransient:
			return c.appliedDevice(ctx, domain, user, d)
		case !errors.Is(err, ErrTransient):
			return Device{}, err
		}
		hadTransient = true
		existing, gerr := c.GetDevice(ctx, domain, user, id)
		switch {
		case gerr == nil:
			c.log.Info().Str("device", id).Msg("device create reply lost but the device exists: treating the create as applied")
			return withPassword(existing, d), nil
		case !errors.Is(gerr, ErrNotFound):
			return Device{}, err // outcome unknown: report the create's own error
		case attempt >= c.maxRetries:
			return Device{}, err
		}
		if serr := c.sleep(ctx, c.backoff(attempt)); serr != nil {
			return Device{}, ctxError(cl, ctx, serr)
		}
	}
}

// createdDevice turns a successful create reply into the Device: the 200 body, or (a 202 from
// a server that ignored synchronous) a read-back.
func (c *Client) createdDevice(ctx context.Context, domain, user string, sent Device, cl call, rep reply) (Device, error) {
	if rep.status == http.StatusOK && len(rep.body) > 0 {
		var got Device
		if err := decodeInto(cl, rep, &got); err != nil {
			return Device{}, err
		}
		if got.ID() != "" {
			return withPassword(got, sent), nil
		}
	}
	return c.appliedDevice(ctx, domain, user, sent)
}

// appliedDevice reads back a device whose create was applied without its reply.
func (c *Client) appliedDevice(ctx context.Context, domain, user string, sent Device) (Device, error) {
	got, err := c.GetDevice(ctx, domain, user, sent.ID())
	if err != nil {
		return Device{}, err
	}
	return withPassword(got, sent), nil
}

// withPassword fills in the password the caller sent when the PBX's reply omits it, and sets
// PasswordUnknown when neither has one.
func withPassword(got, sent Device) Device {
	if got.SIPPassword == nil || *got.SIPPassword == "" {
		got.SIPPassword = clonePtr(sent.SIPPassword)
	}
	got.PasswordUnknown = got.SIPPassword == nil || *got.SIPPassword == ""
	return got
}

// deviceSecrets lists a device body's secret values, for scrubbing (and so the request is never
// tagged): the passwords, and the provisioning username and overrides, which often hold the
// credentials of the phone's configuration server.
func deviceSecrets(d Device) []string {
	var s []string
	for _, p := range []*Secret{d.SIPPassword, d.ProvisioningPassword} {
		if p != nil {
			s = append(s, p.Reveal())
		}
	}
	for _, p := range []*string{d.ProvisioningUsername, d.Overrides} {
		if p != nil {
			s = append(s, *p)
		}
	}
	return s
}

// UpdateDevice changes a device's writable fields (PUT …/devices/{device}); only d's non-nil
// writable fields are sent (the id comes from the path). A request carrying a password is
// never tagged with X-NetSapiens-Log. Errors: KindInvalid (bad path segment or nothing to
// change: no request made; or the PBX refused the body), KindNotFound, KindUnauthorized,
// KindForbidden, KindTransient, KindInternal, or the context's error.
func (c *Client) UpdateDevice(ctx context.Context, domain, user, device string, d Device) error {
	if device == "" {
		return invalidf("device is empty")
	}
	p, err := devicePath(domain, user, device)
	if err != nil {
		return err
	}
	body := d.Writable()
	body.Device = nil
	if body == (Device{}) {
		return invalidf("device update has no field to change")
	}
	_, err = c.do(ctx, call{op: opUpdateDevice, path: p, body: body, secrets: deviceSecrets(body)})
	return err
}

// DeleteDevice deletes a device (DELETE …/devices/{device}). A retry that finds it gone after
// a lost reply is a success. Errors: KindInvalid (bad path segment, no request made),
// KindNotFound, KindUnauthorized, KindForbidden, KindTransient, KindInternal, or the context's error.
func (c *Client) DeleteDevice(ctx context.Context, domain, user, device string) error {
	if device == "" {
		return invalidf("device is empty")
	}
	p, err := devicePath(domain, user, device)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, call{op: opDeleteDevice, path: p})
	return err
}
