package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// The drift metrics are served with the labels the dashboards use.
func TestDriftMetricsAreServed(t *testing.T) {
	zero := func(context.Context) (int, error) { return 0, nil }
	m := New(zero, zero)
	m.DriftObjects.WithLabelValues("github:acme/shop", "web", "prod").Set(3)
	m.DriftChecks.WithLabelValues("drift").Inc()
	m.DriftCheckSeconds.Observe(0.5)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`kubeplan_drift_objects{cluster="prod",project="web",repository="github:acme/shop"} 3`,
		`kubeplan_drift_checks_total{outcome="drift"} 1`,
		`kubeplan_drift_check_duration_seconds_count 1`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// The planner's dry-run cache counters are served as one counter with a result label.
func TestDryRunCacheCountersAreServed(t *testing.T) {
	zero := func(context.Context) (int, error) { return 0, nil }
	m := New(zero, zero)
	m.DryRunCache(func() (uint64, uint64) { return 7, 3 })
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{`kubeplan_dryrun_cache_total{result="hit"} 7`, `kubeplan_dryrun_cache_total{result="miss"} 3`} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}
