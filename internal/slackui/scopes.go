package slackui

import "sort"

// WebAPIScopes is every Slack Web API method the app calls (the names slackAPI gives its error
// metric), each with the bot-token scopes it needs: the one table the Slack app manifest
// (deploy/slack-app-manifest.yaml) is checked against, so the app asks for no more and no less
// than the code uses. A test fails when a call is added without its row.
// Scopes per method are from Slack's method reference (api.slack.com/methods/NAME).
var WebAPIScopes = map[string][]string{
	"auth.test":             {},                               // any token
	"chat.postMessage":      {"chat:write"},                   // the card, thread replies, the audit channel, reminders
	"chat.update":           {"chat:write"},                   // the card in place
	"chat.postEphemeral":    {"chat:write"},                   // replies and new credentials only one person sees
	"chat.getPermalink":     {},                               // the link to an open incident's card
	"conversations.info":    {"channels:read", "groups:read"}, // is the bot in this public / private channel?
	"usergroups.users.list": {"usergroups:read"},              // RESPONDERS / APPROVERS given as user groups
	"views.open":            {},                               // the restore_original dialog (no scope: the trigger_id is the grant)
	"response_url":          {},                               // not a method: the URL Slack hands with a command or click
}

// FeatureScopes are the bot scopes the manifest needs for its features rather than for a Web API
// call: the slash command. (Socket Mode's apps.connections.open uses the app-level token's
// connections:write, which is not a bot scope and so not in the manifest's list.)
var FeatureScopes = []string{"commands"}

// BotScopes is the sorted set of bot scopes the app needs: what the manifest must list.
func BotScopes() []string {
	set := map[string]bool{}
	for _, s := range FeatureScopes {
		set[s] = true
	}
	for _, ss := range WebAPIScopes {
		for _, s := range ss {
			set[s] = true
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
