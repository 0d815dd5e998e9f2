package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/compromised-responder/bot/internal/remediate"
	"github.com/compromised-responder/bot/internal/session"
)

// The runbook's series: what an operator alerts on. They are counted from the engine's
// Observer, so a step counts on the replica that decided it, whether a click, the CLI or the
// reconciler ran it. Labels are fixed vocabularies (steps, results, error kinds): never a user,
// an incident or a value.
type runbookMetrics struct {
	steps *prometheus.CounterVec
	ttc   prometheus.Histogram
}

var _ remediate.Observer = (*runbookMetrics)(nil)

func newRunbookMetrics(reg prometheus.Registerer) *runbookMetrics {
	m := &runbookMetrics{
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "compromised_steps_total",
			Help: "Runbook step requests by outcome: done, warnings, failed (ran and failed) or refused (not run); kind is the error kind."},
			[]string{"step", "result", "kind"}),
		ttc: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "compromised_time_to_containment_seconds",
			Help:    "Time from opening an incident to a verified Deny All, recorded by the replica that verified it.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
	}
	reg.MustRegister(m.steps, m.ttc)
	// A zero series per step and result (kind ""), so the sum an alert rule takes exists before
	// the first failure and its increase sees that failure (deploy/prometheus-alerts.yaml).
	for _, s := range session.Steps {
		for _, r := range []string{remediate.ResultDone, remediate.ResultWarnings, remediate.ResultFailed, remediate.ResultRefused} {
			m.steps.WithLabelValues(string(s), r, "")
		}
	}
	return m
}

// StepEnded implements remediate.Observer.
func (m *runbookMetrics) StepEnded(_ context.Context, inc session.Incident, step session.Step, result string, kind remediate.Kind) {
	m.steps.WithLabelValues(string(step), result, string(kind)).Inc()
	if step != session.StepDeny || (result != remediate.ResultDone && result != remediate.ResultWarnings) {
		return
	}
	if d := inc.Step(session.StepDeny); !d.FinishedAt.IsZero() && !inc.CreatedAt.IsZero() {
		m.ttc.Observe(d.FinishedAt.Sub(inc.CreatedAt).Seconds())
	}
}

// incidentGauges reads the open incidents from Redis at every scrape, so every replica
// reports the same, true numbers (a counter per process could not: another replica opened or
// closed them).
type incidentGauges struct {
	list    func(ctx context.Context) ([]session.Incident, error)
	log     zerolog.Logger
	now     func() time.Time
	open    *prometheus.Desc
	denyAll *prometheus.Desc
	oldest  *prometheus.Desc
}

// scrapeTimeout bounds the Redis read of one scrape (Prometheus' default timeout is 10 s).
const scrapeTimeout = 3 * time.Second

func newIncidentGauges(list func(ctx context.Context) ([]session.Incident, error), log zerolog.Logger) *incidentGauges {
	return &incidentGauges{list: list, log: log, now: time.Now,
		open: prometheus.NewDesc("compromised_incidents_open", "Open incidents (all replicas, read from Redis).", nil, nil),
		denyAll: prometheus.NewDesc("compromised_incidents_in_deny_all",
			"Open incidents whose user is in Deny All: deny verified, restore not yet (all replicas, read from Redis).", nil, nil),
		oldest: prometheus.NewDesc("compromised_deny_all_oldest_seconds",
			"How long the longest-blocked user of an open incident has been in Deny All; 0 when none is.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (g *incidentGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.open
	ch <- g.denyAll
	ch <- g.oldest
}

// Collect implements prometheus.Collector. When Redis does not answer the two gauges are
// missing from the scrape (an alert on absent() sees it), never a made-up zero.
func (g *incidentGauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	incs, err := g.list(ctx)
	if err != nil {
		g.log.Warn().Err(err).Msg("metrics: list open incidents")
		return
	}
	denied, oldest := 0, 0.0
	now := g.now()
	for _, inc := range incs {
		deny := inc.Step(session.StepDeny)
		if deny.Status.Finished() && !inc.Step(session.StepRestore).Status.Finished() {
			denied++
			oldest = max(oldest, now.Sub(deny.FinishedAt).Seconds())
		}
	}
	ch <- prometheus.MustNewConstMetric(g.open, prometheus.GaugeValue, float64(len(incs)))
	ch <- prometheus.MustNewConstMetric(g.denyAll, prometheus.GaugeValue, float64(denied))
	ch <- prometheus.MustNewConstMetric(g.oldest, prometheus.GaugeValue, oldest)
}

// registerBuildInfo exports compromised_build_info{version} = 1, so a dashboard shows which
// version each replica runs.
func registerBuildInfo(reg prometheus.Registerer) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "compromised_build_info",
		Help: "Always 1; the version label is the running build.", ConstLabels: prometheus.Labels{"version": version}})
	g.Set(1)
	reg.MustRegister(g)
}

// newUndecodableGauge counts the open incidents the store skipped at its last listing because
// their record no longer decodes (session.Store.Undecodable): an alert that a record needs a hand.
func newUndecodableGauge(list func() []string) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "compromised_incidents_undecodable",
		Help: "Open incidents skipped by resume, list and reminders because their record in Redis does not decode."},
		func() float64 { return float64(len(list())) })
}
