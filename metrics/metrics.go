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
}

// New registers kubeplan's metrics, Go runtime and process metrics, and a gauge of pending
// jobs read from pending at scrape time.
func New(pending func(context.Context) (int, error)) *Metrics {
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
	}
	m.registry.MustRegister(m.Webhooks, m.WebhookSeconds, m.Jobs, m.JobSeconds,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kubeplan_jobs_pending", Help: "Jobs queued or running."}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := pending(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		}))
	return m
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
