// Package metrics defines kubeplan's Prometheus metrics on a registry of the server's own (no
// global state), served on /metrics.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the collectors the server updates.
type Metrics struct {
	registry *prometheus.Registry
	// Webhooks counts webhook requests by forge and outcome (queued, duplicate, ignored,
	// unauthorized, too_large, bad_request, error).
	Webhooks *prometheus.CounterVec
	// WebhookSeconds is the time from request to answer, by forge.
	WebhookSeconds *prometheus.HistogramVec
	// Jobs counts finished jobs by outcome (done, failed).
	Jobs *prometheus.CounterVec
	// JobSeconds is how long jobs ran.
	JobSeconds prometheus.Histogram
	// Applies counts applies of a project on a cluster by trigger (before_merge, on_merge) and
	// outcome (succeeded, failed); ApplySeconds times them, health wait included.
	Applies      *prometheus.CounterVec
	ApplySeconds prometheus.Histogram
	// DriftObjects is how many objects count as drift per repository, project and cluster,
	// as the last scheduled check found (a failed check leaves the value before).
	DriftObjects *prometheus.GaugeVec
	// DriftChecks counts scheduled drift checks by outcome (drift, clean, failed);
	// DriftCheckSeconds times them, revert included.
	DriftChecks       *prometheus.CounterVec
	DriftCheckSeconds prometheus.Histogram
	// HistoryAppendFailures counts history entries the store did not take, by kind (plan,
	// apply, rollout, …): the work they record went on; the audit history misses them.
	HistoryAppendFailures *prometheus.CounterVec
}

// New registers kubeplan's metrics, Go runtime and process metrics, and gauges of pending
// jobs and held locks read at scrape time.
func New(pending, locks func(context.Context) (int, error)) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		Webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubeplan_webhook_requests_total",
			Help: "Webhook requests by forge and outcome."}, []string{"forge", "outcome"}),
		WebhookSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kubeplan_webhook_duration_seconds",
			Help:    "Time from a webhook request to its answer.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .5, 1}}, []string{"forge"}),
		Jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubeplan_jobs_total",
			Help: "Finished jobs by outcome."}, []string{"outcome"}),
		JobSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kubeplan_job_duration_seconds",
			Help: "How long jobs ran.", Buckets: prometheus.ExponentialBuckets(0.1, 2, 12)}),
		Applies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubeplan_applies_total",
			Help: "Applies of a project on a cluster by trigger and outcome."}, []string{"trigger", "outcome"}),
		ApplySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kubeplan_apply_duration_seconds",
			Help: "How long applies took, health wait included.", Buckets: prometheus.ExponentialBuckets(0.25, 2, 12)}),
		DriftObjects: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kubeplan_drift_objects",
			Help: "Objects that drifted from git, per repository, project and cluster, at the last scheduled check."}, []string{"repository", "project", "cluster"}),
		DriftChecks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubeplan_drift_checks_total",
			Help: "Scheduled drift checks by outcome (drift, clean, failed)."}, []string{"outcome"}),
		DriftCheckSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kubeplan_drift_check_duration_seconds",
			Help: "How long scheduled drift checks took, revert included.", Buckets: prometheus.ExponentialBuckets(0.1, 2, 12)}),
		HistoryAppendFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kubeplan_history_append_failures_total",
			Help: "History entries the state store did not take, by kind; the work they record went on."}, []string{"kind"}),
	}
	m.registry.MustRegister(m.Webhooks, m.WebhookSeconds, m.Jobs, m.JobSeconds, m.Applies, m.ApplySeconds,
		m.DriftObjects, m.DriftChecks, m.DriftCheckSeconds, m.HistoryAppendFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		gauge("kubeplan_jobs_pending", "Jobs queued or running.", pending),
		gauge("kubeplan_locks_held", "Project × cluster locks held by pull requests.", locks))
	return m
}

// gauge reads its value at scrape time; -1 says the state store could not be read.
func gauge(name, help string, read func(context.Context) (int, error)) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := read(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
}

// DryRunCache serves the planner's dry-run cache counters, read at scrape time, as
// kubeplan_dryrun_cache_total{result="hit|miss"}: dry-runs answered from the cache (skipped)
// and dry-runs sent. Call it once.
func (m *Metrics) DryRunCache(counts func() (hits, misses uint64)) {
	const name, help = "kubeplan_dryrun_cache_total", "Server-side apply dry-runs of existing objects answered from the planner's cache (hit) or sent to the apiserver (miss)."
	counter := func(result string, read func() float64) prometheus.CounterFunc {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{"result": result}}, read)
	}
	m.registry.MustRegister(
		counter("hit", func() float64 { h, _ := counts(); return float64(h) }),
		counter("miss", func() float64 { _, n := counts(); return float64(n) }))
}

// Handler serves the metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Webhook wraps a webhook handler to count its answers and time them.
func (m *Metrics) Webhook(forge string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		m.WebhookSeconds.WithLabelValues(forge).Observe(time.Since(start).Seconds())
		m.Webhooks.WithLabelValues(forge, outcome(rec.status)).Inc()
	})
}

func outcome(status int) string {
	switch status {
	case http.StatusAccepted:
		return "queued"
	case http.StatusOK:
		return "duplicate_or_ignored"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusBadRequest, http.StatusMethodNotAllowed:
		return "bad_request"
	}
	return "error"
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}
