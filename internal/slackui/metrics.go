package slackui

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the app's Prometheus series. Labels are fixed vocabularies (envelope types, step
// names, result kinds, Slack method names): never a user, an incident or anything secret.
type Metrics struct {
	EnvelopesReceived *prometheus.CounterVec // type
	EnvelopesAcked    *prometheus.CounterVec // type, result (ok|error)
	AckLatency        prometheus.Histogram   // seconds from receipt to the ack being queued
	StepsRun          *prometheus.CounterVec // step, result (done|warnings|awaiting|<error kind>)
	TimeToContainment prometheus.Histogram   // seconds from open to a verified deny
	WorkersBusy       prometheus.Gauge       // jobs running now
	PoolRejections    prometheus.Counter     // clicks/commands answered "busy"
	SlackAPIErrors    *prometheus.CounterVec // method, error
	Duplicates        *prometheus.CounterVec // what (envelope|command|action)
	ThreadPosts       prometheus.Counter     // audit replies posted
	CardUpdates       prometheus.Counter     // chat.update of a card
	LinkUp            prometheus.Gauge       // 1 while the Socket Mode link is up
	ReconcileResumed  prometheus.Counter     // steps Reconcile took over
	RemindersPosted   prometheus.Counter     // thread reminders
	SecretsDelivered  *prometheus.CounterVec // result (ok|error)
}

// NewMetrics creates the series and registers them with reg (the process's own registry; nil
// registers nothing, for tests). It panics only on a duplicate registration, a wiring bug.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		EnvelopesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bot_slack_envelopes_received_total",
			Help: "Socket Mode envelopes received, by type."}, []string{"type"}),
		EnvelopesAcked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bot_slack_envelopes_acked_total",
			Help: "Socket Mode envelopes acknowledged, by type and result."}, []string{"type", "result"}),
		AckLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bot_slack_ack_latency_seconds",
			Help: "Time from receiving an envelope to queuing its ack.", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
		StepsRun: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bot_steps_total",
			Help: "Runbook steps run from Slack, by step and result."}, []string{"step", "result"}),
		TimeToContainment: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "bot_time_to_containment_seconds",
			Help: "Time from opening an incident to a verified Deny All.", Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		WorkersBusy: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bot_workers_busy",
			Help: "Worker pool jobs running now."}),
		PoolRejections: prometheus.NewCounter(prometheus.CounterOpts{Name: "bot_worker_pool_rejections_total",
			Help: "Commands and clicks answered 'busy, try again' because the worker pool was full."}),
		SlackAPIErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bot_slack_api_errors_total",
			Help: "Slack Web API errors, by method and Slack error code."}, []string{"method", "error"}),
		Duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bot_slack_duplicates_total",
			Help: "Duplicate deliveries recognised and ignored, by what matched."}, []string{"what"}),
		ThreadPosts: prometheus.NewCounter(prometheus.CounterOpts{Name: "bot_audit_thread_posts_total",
			Help: "Audit lines posted to incident threads."}),
		CardUpdates: prometheus.NewCounter(prometheus.CounterOpts{Name: "bot_card_updates_total",
			Help: "Incident cards updated in place."}),
		LinkUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "bot_slack_link_up",
			Help: "1 while the Socket Mode link is connected."}),
		ReconcileResumed: prometheus.NewCounter(prometheus.CounterOpts{Name: "bot_reconcile_resumed_total",
			Help: "Interrupted steps taken over by the reconciler."}),
		RemindersPosted: prometheus.NewCounter(prometheus.CounterOpts{Name: "bot_reminders_total",
			Help: "Deny All reminders posted."}),
		SecretsDelivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bot_secret_deliveries_total",
			Help: "Ephemeral credential deliveries, by result."}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.EnvelopesReceived, m.EnvelopesAcked, m.AckLatency, m.StepsRun, m.TimeToContainment,
			m.WorkersBusy, m.PoolRejections, m.SlackAPIErrors, m.Duplicates, m.ThreadPosts, m.CardUpdates,
			m.LinkUp, m.ReconcileResumed, m.RemindersPosted, m.SecretsDelivered)
	}
	return m
}
