package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/drift"
	"github.com/kubeplan/kubeplan/internal/kubetest"
	"github.com/kubeplan/kubeplan/inventory"
	"github.com/kubeplan/kubeplan/manifest"
	"github.com/kubeplan/kubeplan/planner"
)

// requests counts what the planner asks of the apiserver.
type requests struct{ reads, dryRuns, other atomic.Int64 }

type counting struct {
	next http.RoundTripper
	n    *requests
}

func (c counting) RoundTrip(r *http.Request) (*http.Response, error) {
	switch {
	case r.Method == http.MethodGet:
		c.n.reads.Add(1)
	case r.Method == http.MethodPatch && r.URL.Query().Get("dryRun") != "":
		c.n.dryRuns.Add(1)
	default:
		c.n.other.Add(1)
	}
	return c.next.RoundTrip(r)
}

// replan measures a plan, and a drift check, of n applied and unchanged objects: the first
// (the dry-run cache empty) against repeated ones, as `kubeplan serve` plans them, in
// process. The objects are generated afresh for each plan; rendering is not timed.
func replan(ctx context.Context, kc *kubetest.Cluster, n, runs int) error {
	const ns = "bench-replan"
	cfg := rest.CopyConfig(kc.Config)
	count := &requests{}
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return counting{next: rt, n: count} }
	c, err := cluster.ConnectConfig(ctx, kc.Name, cfg, cluster.DefaultTuning())
	if err != nil {
		return err
	}
	if err := applyAll(ctx, c, ns, n); err != nil {
		return err
	}
	objects := func() []manifest.Object {
		out := make([]manifest.Object, n)
		for i := range out {
			out[i] = manifest.Object{Unstructured: generate(ns, i, 1), Source: "bench.yaml"}
		}
		return out
	}
	type sample struct {
		wall                  time.Duration
		reads, dryRuns, other int64
	}
	once := func(do func() error) (sample, error) {
		r, d, o := count.reads.Load(), count.dryRuns.Load(), count.other.Load()
		start := time.Now()
		err := do()
		return sample{time.Since(start), count.reads.Load() - r, count.dryRuns.Load() - d, count.other.Load() - o}, err
	}
	req := func() planner.Request { return planner.Request{Project: ns, Namespace: ns, Objects: objects()} }
	scenarios := []struct {
		name string
		do   func(*planner.Planner) error
	}{
		{"plan", func(pl *planner.Planner) error {
			p, err := pl.Plan(ctx, c, req())
			if err == nil && p.Counts().Unchanged != n {
				err = fmt.Errorf("plan: %+v, want %d unchanged", p.Counts(), n)
			}
			return err
		}},
		{"drift check", func(pl *planner.Planner) error {
			r, err := drift.Check(ctx, pl, c, req(), drift.Settings{})
			if err == nil && r.Drifted() {
				err = fmt.Errorf("drift check found drift in unchanged objects")
			}
			return err
		}},
	}
	fmt.Printf("\nre-plan of %d applied, unchanged objects with the dry-run cache (in process, as serve plans); load average before %s\n", n, loadAverage())
	fmt.Printf("  %-12s %-28s %24s %8s %9s %7s\n", "", "", "wall min / median / max", "reads", "dry-runs", "other")
	for _, s := range scenarios {
		pl := planner.New(planner.Options{Cache: planner.NewDryRunCache(planner.CacheLimits{})})
		first, err := once(func() error { return s.do(pl) })
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		var again []sample
		for i := 0; i < runs; i++ {
			r, err := once(func() error { return s.do(pl) })
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			again = append(again, r)
		}
		walls := make([]time.Duration, len(again))
		for i, r := range again {
			walls[i] = r.wall
		}
		w := spread(walls)
		last := again[len(again)-1]
		fmt.Printf("  %-12s %-28s %24s %8d %9d %7d\n", s.name, "first (cache empty)", seconds(first.wall), first.reads, first.dryRuns, first.other)
		fmt.Printf("  %-12s %-28s %24s %8d %9d %7d\n", "", fmt.Sprintf("repeated, %d runs", runs),
			fmt.Sprintf("%s / %s / %s", seconds(w.min), seconds(w.median), seconds(w.max)), last.reads, last.dryRuns, last.other)
		fmt.Printf("  %-12s %.1fx faster repeated, median (target ≥ 5x)\n", "", float64(first.wall)/float64(w.median))
	}
	fmt.Printf("  load average after %s\n", loadAverage())
	return nil
}

// applyAll applies n generated objects to ns as members of project ns's ApplySet.
func applyAll(ctx context.Context, c *cluster.Client, ns string, n int) error {
	nsObj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}
	if _, err := c.Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Apply(ctx, ns, nsObj, metav1.ApplyOptions{FieldManager: "bench"}); err != nil {
		return err
	}
	set := inventory.ForProject(ns, ns)
	objs := []*unstructured.Unstructured{set.Parent([]schema.GroupKind{{Group: "apps", Kind: "Deployment"}, {Kind: "Service"}, {Kind: "ConfigMap"}}, nil, "")}
	for i := 0; i < n; i++ {
		o := generate(ns, i, 1)
		set.Label(o)
		objs = append(objs, o)
	}
	if err := applyObjects(ctx, c, ns, cluster.FieldManager, objs); err != nil {
		return fmt.Errorf("apply objects: %w", err)
	}
	return nil
}

// loadAverage is the machine's 1, 5 and 15 minute load average.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
