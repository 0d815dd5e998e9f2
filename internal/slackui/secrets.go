package slackui

import (
	"context"

	"github.com/slack-go/slack"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// This file is the only place new credentials are rendered and sent: the ephemeral message to
// the requester and the record of whether it arrived.

// SecretLine is one credential for the requester's ephemeral message. Value may be empty for a
// line that only says what happens (a MAC-provisioned desk phone gets its credentials itself).
type SecretLine struct {
	Label        string // "softphone 1001a", "voicemail PIN of 1001@acme.example"
	Value        string // the secret; shown once, only here
	Instructions string // what to do with it, plain words
}

// MaxSecretsPerMessage is the most SecretLines one SecretsBlocks message holds within Block Kit's
// 50 blocks; the app sends more in several messages.
const MaxSecretsPerMessage = 45

// SecretsFallbackText is the notification text to send with SecretsBlocks: it holds no secret,
// because notification previews show it on lock screens.
const SecretsFallbackText = "New credentials (only visible to you)"

// SoftphoneSecret is the line for a re-created device that is not MAC-provisioned.
func SoftphoneSecret(device, password string) SecretLine {
	return SecretLine{Label: "SIP password of device " + device, Value: password,
		Instructions: "Enter this SIP password in the softphone (or on the phone) now; the old one no longer works."}
}

// DeskPhoneNotice is the line for a MAC-provisioned desk phone: no password is shown.
func DeskPhoneNotice(device string) SecretLine {
	return SecretLine{Label: "Desk phone " + device,
		Instructions: "It picks its new credentials up at its next provisioning check or reboot; reboot it to do that now."}
}

// PINSecret is the line for a new voicemail PIN.
func PINSecret(user, pin string) SecretLine {
	return SecretLine{Label: "Voicemail PIN of " + user, Value: pin,
		Instructions: "Give it to the user over a channel you have verified (not by e-mail to a possibly compromised mailbox)."}
}

// PortalPasswordSecret is the line of a new portal password (set through the v1 API).
func PortalPasswordSecret(user, pwd string) SecretLine {
	return SecretLine{Label: "Portal password of " + user, Value: pwd,
		Instructions: "Give it to the user over a channel you have verified; the old password no longer works. It is not stored anywhere readable."}
}

// SecretsBlocks renders new credentials for the requester's ephemeral message: the only place a
// secret is ever rendered. Each value is a plain_text field, shown exactly as given; labels and
// instructions are escaped. Send at most MaxSecretsPerMessage lines per message.
func SecretsBlocks(secrets []SecretLine) []slack.Block {
	bs := []slack.Block{slack.NewSectionBlock(mrkdwn("🔐 *New credentials* — only you can see this message. "+
		"They are not stored anywhere readable, so use them now."), nil, nil)}
	for _, s := range secrets {
		text := "*" + esc(short(s.Label, 200)) + "*"
		if s.Instructions != "" {
			text += "\n" + esc(short(s.Instructions, 1000))
		}
		var fields []*slack.TextBlockObject
		if s.Value != "" {
			fields = []*slack.TextBlockObject{plainVerbatim(s.Value)}
		}
		bs = append(bs, slack.NewSectionBlock(mrkdwn(text), fields, nil))
	}
	return bs
}

// deliverSecrets sends new credentials to one person only, ephemerally in the card's channel,
// and records on the incident whether each arrived (the card shows failures; `credentials`
// re-delivers). Nothing here logs or stores a secret value.
func (a *App) deliverSecrets(ctx context.Context, inc session.Incident, to string, step session.Step, secrets []remediate.Secret) {
	type item struct {
		line SecretLine
		key  string // Delivery key: device id or "pin"; "" = a notice, not tracked
	}
	var items []item
	for _, s := range secrets {
		switch {
		case s.Device != "":
			items = append(items, item{SoftphoneSecret(s.Device, s.Value.Reveal()), s.Device})
		case s.Portal:
			items = append(items, item{PortalPasswordSecret(inc.Key(), s.Value.Reveal()), "portal"})
		default:
			items = append(items, item{PINSecret(inc.Key(), s.Value.Reveal()), "pin"})
		}
	}
	if step == session.StepRecreate {
		for _, d := range inc.Devices {
			if d.MACProvisioned {
				items = append(items, item{DeskPhoneNotice(d.Device), ""})
			}
		}
	}
	if !a.stillResponder(ctx, to) {
		var keys []string
		for _, it := range items {
			if it.key != "" {
				keys = append(keys, it.key)
			}
		}
		a.withholdSecrets(ctx, inc, to, step, keys)
		return
	}
	states := map[string]session.DeliveryState{}
	for start := 0; start < len(items); start += MaxSecretsPerMessage {
		chunk := items[start:min(start+MaxSecretsPerMessage, len(items))]
		lines := make([]SecretLine, len(chunk))
		for i, it := range chunk {
			lines[i] = it.line
		}
		err := a.api.ephemeral(ctx, inc.Channel, to, SecretsFallbackText, SecretsBlocks(lines))
		st := session.DeliveryState{Delivered: err == nil, At: a.now().UTC()}
		if err != nil {
			st.Error = "Slack refused the ephemeral message (" + slackCode(err) + ")"
			a.m.SecretsDelivered.WithLabelValues("error").Inc()
			a.logger(ctx).Warn().Str("incident", inc.ID).Str("code", slackCode(err)).Msg("deliver credentials")
		} else {
			a.m.SecretsDelivered.WithLabelValues("ok").Inc()
		}
		for _, it := range chunk {
			if it.key != "" {
				states[it.key] = st
			}
		}
	}
	a.recordDelivery(ctx, inc.ID, states)
}

// recordDelivery stores whether each secret (device id or "pin") reached the engineer.
func (a *App) recordDelivery(ctx context.Context, id string, states map[string]session.DeliveryState) {
	if len(states) == 0 {
		return
	}
	_, err := a.store.Update(context.WithoutCancel(ctx), id, func(i *session.Incident) error {
		if i.Delivery == nil {
			i.Delivery = map[string]session.DeliveryState{}
		}
		for k, v := range states {
			i.Delivery[k] = v
		}
		return nil
	})
	if err != nil {
		a.logger(ctx).Warn().Err(err).Str("incident", id).Msg("record credential delivery")
		return
	}
	a.changes.Changed(ctx, id)
}
