package slackui

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/compromised-responder/bot/internal/slacksocket"
)

// Metrics are the app's Prometheus series (the Slack side; the runbook's own series, steps by
// result and time to containment, are counted from the engine's Observer). Labels are fixed vocabularies (envelope types, step
// names, result kinds, Slack method names): never a user, an incident or anything secret.
type Metrics struct {
	EnvelopesReceived *prometheus.CounterVec // type
	EnvelopesAcked    *prometheus.CounterVec // type, result (ok|error)
	AckLatency        prometheus.Histogram   // seconds from the frame off the socket to its ack's write (slacksocket observes)
	ApprovalPages     *prometheus.CounterVec // step: approvers paged in a thread (requests and reminders)
	WorkersBusy       prometheus.Gauge       // jobs running now
	QueueDepth        prometheus.Gauge       // jobs waiting for a worker
	QueueBusy         prometheus.Counter     // clicks/commands answered "busy" (the queue was full)
	SlackAPIErrors    *prometheus.CounterVec // method, error
	Duplicates        *prometheus.CounterVec // what (envelope|command|action)
	ThreadPosts       prometheus.Counter     // audit replies posted
	CardUpdates       prometheus.Counter     // chat.update of a card
	LinkUp            prometheus.Gauge       // 1 while the Socket Mode link is up
	SocketConnections prometheus.Gauge       // Socket Mode connections live now (slacksocket sets it)
	SocketsWanted     prometheus.Gauge       // SOCKET_CONNECTIONS as the client keeps it (slacksocket sets it)
	ReconcileResumed  prometheus.Counter     // steps Reconcile took over
	RemindersPosted   prometheus.Counter     // thread reminders
	SecretsDelivered  *prometheus.CounterVec // result (ok|error)

	// byType is each known envelope type's series, looked up once (envelopeSeries).
	byType map[string]envelopeSeries
}

// envelopeSeries is one envelope type's series of EnvelopesReceived and EnvelopesAcked.
type envelopeSeries struct{ received, ackedOK, ackedError prometheus.Counter }

// envelope is typ's series: the known types' looked up once (WithLabelValues hashes the labels
// and takes the vector's lock each time, three times per envelope: ≈ 7 % of the bot's CPU per
// `/compromised help` under a burst), any other looked up now.
func (m *Metrics) envelope(typ string) envelopeSeries {
	if s, ok := m.byType[typ]; ok {
		return s
	}
	return m.lookupEnvelope(typ)
}

func (m *Metrics) lookupEnvelope(typ string) envelopeSeries {
	return envelopeSeries{received: m.EnvelopesReceived.WithLabelValues(typ),
		ackedOK: m.EnvelopesAcked.WithLabelValues(typ, "ok"), ackedError: m.EnvelopesAcked.WithLabelValues(typ, "error")}
}

// NewMetrics creates the series and registers them with reg (the process's own registry; nil
// registers nothing, for tests). It panics only on a duplicate registration, a wiring bug.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		EnvelopesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "compromised_slack_envelopes_received_total",
			Help: "Socket Mode envelopes received, by type."}, []string{"type"}),
		EnvelopesAcked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "compromised_slack_envelopes_acked_total",
			Help: "Socket Mode envelopes acknowledged, by type and result."}, []string{"type", "result"}),
		AckLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "compromised_slack_ack_latency_seconds",
			Help: "Time from an envelope's frame coming off the Socket Mode connection (before its parse) to its ack being handed to the connection's write (an ack corked with others read together may wait up to 250 µs more for the flush).", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
		ApprovalPages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "compromised_approval_pages_total",
			Help: "Thread replies that mention the approvers of a waiting request, by step."}, []string{"step"}),
		WorkersBusy: prometheus.NewGauge(prometheus.GaugeOpts{Name: "compromised_workers_busy",
			Help: "Queue workers running a job now (at most WORKERS)."}),
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{Name: "compromised_queue_depth",
			Help: "Acknowledged commands and clicks waiting for a worker (at most QUEUE_SIZE)."}),
		QueueBusy: prometheus.NewCounter(prometheus.CounterOpts{Name: "compromised_queue_busy_total",
			Help: "Commands and clicks answered 'busy, try again in N s' because the queue was full."}),
		SlackAPIErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "compromised_slack_api_errors_total",
			Help: "Slack Web API errors, by method and Slack error code."}, []string{"method", "error"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "compromised_slack_duplicates_total",
			Help: "Duplicate deliveries recognised and ignored, by what matched."}, []string{"what"}),
		ThreadPosts: prometheus.NewCounter(prometheus.CounterOpts{Name: "compromised_audit_thread_posts_total",
			Help: "Audit lines posted to incident threads."}),
		CardUpdates: prometheus.NewCounter(prometheus.CounterOpts{Name: "compromised_card_updates_total",
			Help: "Incident cards updated in place."}),
		LinkUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "compromised_slack_link_up",
			Help: "1 while the Socket Mode link is connected."}),
		SocketConnections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "compromised_slack_socket_connections",
			Help: "Socket Mode connections live now (said hello, not yet closed); below compromised_slack_socket_connections_wanted while one is refreshed, dropped or backing off."}),
		SocketsWanted: prometheus.NewGauge(prometheus.GaugeOpts{Name: "compromised_slack_socket_connections_wanted",
			Help: "Socket Mode connections the client keeps up (SOCKET_CONNECTIONS, clamped to 1-4)."}),
		ReconcileResumed: prometheus.NewCounter(prometheus.CounterOpts{Name: "compromised_reconcile_resumed_total",
			Help: "Interrupted steps taken over by the reconciler."}),
		RemindersPosted: prometheus.NewCounter(prometheus.CounterOpts{Name: "compromised_reminders_total",
			Help: "Deny All reminders posted."}),
		SecretsDelivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "compromised_secret_deliveries_total",
			Help: "Ephemeral credential deliveries, by result."}, []string{"result"}),
	}
	for _, r := range []string{"ok", "error"} {
		m.SecretsDelivered.WithLabelValues(r) // both exist from the start: an alert's increase() sees the first error
	}
	m.byType = map[string]envelopeSeries{}
	for _, typ := range []string{slacksocket.TypeSlashCommands, slacksocket.TypeInteractive, slacksocket.TypeEventsAPI} {
		m.byType[typ] = m.lookupEnvelope(typ)
	}
	if reg != nil {
		reg.MustRegister(m.EnvelopesReceived, m.EnvelopesAcked, m.AckLatency, m.ApprovalPages,
			m.WorkersBusy, m.QueueDepth, m.QueueBusy, m.SlackAPIErrors, m.Duplicates, m.ThreadPosts, m.CardUpdates,
			m.LinkUp, m.SocketConnections, m.SocketsWanted, m.ReconcileResumed, m.RemindersPosted, m.SecretsDelivered)
	}
	return m
}
