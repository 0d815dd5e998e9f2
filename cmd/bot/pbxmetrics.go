package main

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/compromised-responder/bot/internal/netsapiens"
	"github.com/compromised-responder/bot/internal/remediate"
)

// countingPBX counts the engine's PBX calls by operation and result (the netsapiens error kind),
// for /metrics. Labels are fixed vocabularies: never a user, a domain or a value.
type countingPBX struct {
	pbx   remediate.PBX
	calls *prometheus.CounterVec
}

var _ remediate.PBX = countingPBX{}

func newCountingPBX(pbx remediate.PBX, reg prometheus.Registerer) countingPBX {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "compromised_pbx_calls_total",
		Help: "NetSapiens API calls made by the engine, by operation and result."}, []string{"op", "result"})
	reg.MustRegister(c)
	return countingPBX{pbx: pbx, calls: c}
}

func (p countingPBX) count(op string, err error) {
	result := "ok"
	if err != nil {
		result = string(netsapiens.KindOf(err))
		if result == "" {
			result = "error"
		}
	}
	p.calls.WithLabelValues(op, result).Inc()
}

func (p countingPBX) GetUser(ctx context.Context, domain, user string) (netsapiens.User, error) {
	u, err := p.pbx.GetUser(ctx, domain, user)
	p.count("get_user", err)
	return u, err
}

func (p countingPBX) UpdateUser(ctx context.Context, domain, user string, u netsapiens.UserUpdate) error {
	err := p.pbx.UpdateUser(ctx, domain, user, u)
	p.count("update_user", err)
	return err
}

func (p countingPBX) GetDialPolicy(ctx context.Context, domain, name string) (netsapiens.DialPolicy, error) {
	d, err := p.pbx.GetDialPolicy(ctx, domain, name)
	p.count("get_dial_policy", err)
	return d, err
}

func (p countingPBX) ListDialPolicyPermissions(ctx context.Context, domain, name string) ([]netsapiens.Permission, error) {
	r, err := p.pbx.ListDialPolicyPermissions(ctx, domain, name)
	p.count("list_dial_policy_permissions", err)
	return r, err
}

func (p countingPBX) ListDevices(ctx context.Context, domain, user string) ([]netsapiens.Device, error) {
	r, err := p.pbx.ListDevices(ctx, domain, user)
	p.count("list_devices", err)
	return r, err
}

func (p countingPBX) GetDevice(ctx context.Context, domain, user, device string) (netsapiens.Device, error) {
	r, err := p.pbx.GetDevice(ctx, domain, user, device)
	p.count("get_device", err)
	return r, err
}

func (p countingPBX) CreateDevice(ctx context.Context, domain, user string, d netsapiens.Device) (netsapiens.Device, error) {
	r, err := p.pbx.CreateDevice(ctx, domain, user, d)
	p.count("create_device", err)
	return r, err
}

func (p countingPBX) UpdateDevice(ctx context.Context, domain, user, device string, d netsapiens.Device) error {
	err := p.pbx.UpdateDevice(ctx, domain, user, device, d)
	p.count("update_device", err)
	return err
}

func (p countingPBX) DeleteDevice(ctx context.Context, domain, user, device string) error {
	err := p.pbx.DeleteDevice(ctx, domain, user, device)
	p.count("delete_device", err)
	return err
}

func (p countingPBX) ListPhones(ctx context.Context, domain string) ([]netsapiens.Phone, error) {
	r, err := p.pbx.ListPhones(ctx, domain)
	p.count("list_phones", err)
	return r, err
}

func (p countingPBX) UpdatePhone(ctx context.Context, domain string, ph netsapiens.Phone) error {
	err := p.pbx.UpdatePhone(ctx, domain, ph)
	p.count("update_phone", err)
	return err
}

func (p countingPBX) RevokeJWT(ctx context.Context, domain, user string) error {
	err := p.pbx.RevokeJWT(ctx, domain, user)
	p.count("revoke_jwt", err)
	return err
}

func (p countingPBX) SendEmail(ctx context.Context, domain, user, template, subject string) error {
	err := p.pbx.SendEmail(ctx, domain, user, template, subject)
	p.count("send_email", err)
	return err
}

func (p countingPBX) ListCalls(ctx context.Context, domain, user string) ([]netsapiens.ActiveCall, error) {
	r, err := p.pbx.ListCalls(ctx, domain, user)
	p.count("list_calls", err)
	return r, err
}

func (p countingPBX) EndCall(ctx context.Context, domain, user, callID string) error {
	err := p.pbx.EndCall(ctx, domain, user, callID)
	p.count("end_call", err)
	return err
}
