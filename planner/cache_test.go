package planner_test

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/comments"
	"github.com/kubeplan/kubeplan/forge"
	"github.com/kubeplan/kubeplan/internal/testtree"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/planner"
	"github.com/kubeplan/kubeplan/render"
)

// requests counts what a client sends: server-side apply dry-runs, and reads.
type requests struct{ dryRuns, reads atomic.Int64 }

type countingTransport struct {
	next http.RoundTripper
	n    *requests
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	switch {
	case r.Method == http.MethodPatch && r.URL.Query().Get("dryRun") != "":
		c.n.dryRuns.Add(1)
	case r.Method == http.MethodGet:
		c.n.reads.Add(1)
	}
	return c.next.RoundTrip(r)
}

// countingClient is a client of the test cluster whose requests are counted.
func countingClient(t *testing.T) (*cluster.Client, *requests) {
	t.Helper()
	n := &requests{}
	cfg := rest.CopyConfig(testCluster.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return countingTransport{next: rt, n: n} }
	c, err := cluster.ConnectConfig(context.Background(), testCluster.Name, cfg, cluster.DefaultTuning())
	if err != nil {
		t.Fatal(err)
	}
	return c, n
}

// cachedPlan plans files with pl through c and returns the plan and the dry-runs it sent.
func cachedPlan(t *testing.T, pl *planner.Planner, c *cluster.Client, n *requests, ns string, files map[string]string, compare bool) (*plan.Plan, int64) {
	t.Helper()
	inProject := map[string]string{}
	for name, content := range files {
		inProject["project/"+name] = content
	}
	res, err := render.Render(context.Background(), testtree.Write(t, inProject), "project", render.Options{Namespace: ns})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	before := n.dryRuns.Load()
	p, err := pl.Plan(context.Background(), c, planner.Request{Project: "cached", Objects: res.Objects, Namespace: ns, CompareSecretValues: compare})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p, n.dryRuns.Load() - before
}

// samePlan fails unless two plans read the same, hash included.
func samePlan(t *testing.T, first, again *plan.Plan) {
	t.Helper()
	if first.Hash() != again.Hash() {
		t.Errorf("plan hash %s, then %s", first.Hash(), again.Hash())
	}
	if !reflect.DeepEqual(first.Changes, again.Changes) {
		t.Errorf("changes differ:\n%+v\n%+v", first.Changes, again.Changes)
	}
}

func TestReplanOfUnchangedObjectsSendsNoDryRun(t *testing.T) {
	ns := namespace(t)
	kubectl(t, configMapYAML("same", "a")+"---\n"+configMapYAML("changed", "old")+"---\n"+deploymentYAML("web", "nginx:1.27"),
		"apply", "--server-side", "--field-manager=kubeplan", "--applyset=configmap/kubeplan-cached", "--prune", "-n", ns, "-f", "-")
	// Owned by another field manager: one forced dry-run all the same.
	kubectl(t, configMapYAML("taken", "theirs"), "apply", "--server-side", "--field-manager=someone-else", "-n", ns, "-f", "-")
	files := map[string]string{
		"same.yaml": configMapYAML("same", "a"), "changed.yaml": configMapYAML("changed", "new"),
		"web.yaml": deploymentYAML("web", "nginx:1.28"), "taken.yaml": configMapYAML("taken", "ours"),
		"fresh.yaml": configMapYAML("fresh", "1"),
	}
	c, n := countingClient(t)
	cache := planner.NewDryRunCache(planner.CacheLimits{})
	pl := planner.New(planner.Options{Cache: cache})
	first, sent := cachedPlan(t, pl, c, n, ns, files, false)
	if sent != 5 { // 4 existing objects and the new one
		t.Fatalf("first plan sent %d dry-runs, want 5", sent)
	}
	if w := strings.Join(change(t, first, "ConfigMap "+ns+"/taken").Warnings, "\n"); !strings.Contains(w, `takes over .data.value from field manager "someone-else"`) {
		t.Fatalf("no takeover warning: %q", w)
	}
	readsBefore := n.reads.Load()
	again, sent := cachedPlan(t, pl, c, n, ns, files, false)
	if sent != 1 {
		t.Errorf("re-plan sent %d dry-runs, want 1 (the new object's: creates are not cached)", sent)
	}
	if n.reads.Load() == readsBefore {
		t.Error("re-plan read nothing live: it must read live state to know nothing changed")
	}
	samePlan(t, first, again)
	if hits, misses := cache.Counts(); hits != 4 || misses != 4 {
		t.Errorf("cache counts hits %d, misses %d; want 4 and 4", hits, misses)
	}
}

func TestCacheMissesALiveEditAndAChangedManifest(t *testing.T) {
	ns := namespace(t)
	kubectl(t, configMapYAML("settings", "a")+"---\n"+configMapYAML("other", "x"), "apply", "--server-side", "--field-manager=kubeplan",
		"--applyset=configmap/kubeplan-cached", "--prune", "-n", ns, "-f", "-")
	files := map[string]string{"settings.yaml": configMapYAML("settings", "a"), "other.yaml": configMapYAML("other", "x")}
	c, n := countingClient(t)
	pl := planner.New(planner.Options{Cache: planner.NewDryRunCache(planner.CacheLimits{})})
	first, _ := cachedPlan(t, pl, c, n, ns, files, false)
	expectAction(t, first, "ConfigMap "+ns+"/settings", plan.Unchanged)

	// Another field manager edits the object: its resourceVersion moves.
	kubectl(t, "", "-n", ns, "patch", "configmap", "settings", "--type=merge", "-p", `{"data":{"value":"edited"}}`)
	edited, sent := cachedPlan(t, pl, c, n, ns, files, false)
	if sent != 1 { // kubectl-patch now owns .data.value: still one forced dry-run
		t.Errorf("after a live edit the plan sent %d dry-runs, want 1", sent)
	}
	ch := expectAction(t, edited, "ConfigMap "+ns+"/settings", plan.Update)
	if !strings.Contains(ch.Diff, "-  value: edited\n") || !strings.Contains(ch.Diff, "+  value: a\n") {
		t.Errorf("diff does not show the live edit:\n%s", ch.Diff)
	}

	files["other.yaml"] = configMapYAML("other", "later")
	changed, sent := cachedPlan(t, pl, c, n, ns, files, false)
	if sent != 1 {
		t.Errorf("after a manifest change the plan sent %d dry-runs, want 1", sent)
	}
	ch = expectAction(t, changed, "ConfigMap "+ns+"/other", plan.Update)
	if !strings.Contains(ch.Diff, "+  value: later\n") {
		t.Errorf("diff does not show the manifest change:\n%s", ch.Diff)
	}
	expectAction(t, changed, "ConfigMap "+ns+"/settings", plan.Update)
}

// The cache keys what is sent, which for a Secret carries the live values: a cached answer
// tells a guess no more than the apiserver would, and a changed live value misses.
func TestCachedSecretPlansStayBlind(t *testing.T) {
	const live = "hunter2"
	ns := namespace(t)
	kubectl(t, "", "create", "secret", "generic", "db", "-n", ns, "--from-literal=password="+live)
	c, n := countingClient(t)
	pl := planner.New(planner.Options{Cache: planner.NewDryRunCache(planner.CacheLimits{})})
	say := func(p *plan.Plan) string {
		return strings.Join(comments.Render(comments.Input{HeadSHA: "0123456789abcdef", Limit: forge.MaxGitHubComment,
			Targets: []comments.Target{{Project: "cached", Cluster: "test", Plan: p}}}), "\n")
	}
	right, _ := cachedPlan(t, pl, c, n, ns, map[string]string{"db.yaml": stringData(live)}, false)
	wrong, sent := cachedPlan(t, pl, c, n, ns, map[string]string{"db.yaml": stringData("guess")}, false)
	if sent != 0 {
		t.Errorf("a wrong guess sent %d dry-runs: the blinded dry-run of any guess is the same", sent)
	}
	if a, b := say(right), say(wrong); a != b || right.Hash() != wrong.Hash() {
		t.Fatalf("the right guess and a wrong one read differently:\n--- right\n%s\n--- wrong\n%s", a, b)
	}
	ch := expectAction(t, wrong, "Secret "+ns+"/db", plan.Update)
	if !strings.Contains(ch.Diff, "+  password: (hidden, set by this change)\n") || strings.Contains(say(wrong), live) || strings.Contains(say(wrong), b64(live)) {
		t.Errorf("cached plan not blind:\n%s", say(wrong))
	}
	// An operator's plan that compares values is asked afresh, not answered for a blind one.
	compared, sent := cachedPlan(t, pl, c, n, ns, map[string]string{"db.yaml": stringData(live)}, true)
	if sent != 1 {
		t.Errorf("a plan comparing values sent %d dry-runs, want 1", sent)
	}
	if ch := change(t, compared, "Secret "+ns+"/db"); len(ch.SecretKeys) != 0 {
		t.Errorf("a plan comparing the value it holds sets keys %v:\n%s", ch.SecretKeys, ch.Diff)
	}
	// A value rotated by hand misses.
	kubectl(t, "", "-n", ns, "patch", "secret", "db", "--type=merge", "-p", `{"data":{"password":"`+b64("rotated")+`"}}`)
	rotated, sent := cachedPlan(t, pl, c, n, ns, map[string]string{"db.yaml": stringData(live)}, false)
	if sent != 1 {
		t.Errorf("after a rotation the plan sent %d dry-runs, want 1", sent)
	}
	if rotated.Hash() == right.Hash() {
		t.Error("a rotated value does not move the plan hash")
	}
}

func TestCacheEvictsAtItsBound(t *testing.T) {
	ns := namespace(t)
	var applied strings.Builder
	files := map[string]string{}
	for _, name := range []string{"a", "b", "c", "d"} {
		applied.WriteString("---\n" + configMapYAML(name, "1"))
		files[name+".yaml"] = configMapYAML(name, "1")
	}
	kubectl(t, applied.String(), "apply", "--server-side", "--field-manager=kubeplan", "-n", ns, "-f", "-")
	c, n := countingClient(t)
	cache := planner.NewDryRunCache(planner.CacheLimits{Entries: 2})
	pl := planner.New(planner.Options{Cache: cache})
	first, _ := cachedPlan(t, pl, c, n, ns, files, false)
	if cache.Len() != 2 {
		t.Fatalf("cache holds %d answers, bound 2", cache.Len())
	}
	again, sent := cachedPlan(t, pl, c, n, ns, files, false)
	if sent < 2 {
		t.Errorf("re-plan of 4 objects with 2 answers kept sent %d dry-runs, want at least 2", sent)
	}
	if cache.Len() != 2 {
		t.Errorf("cache holds %d answers, bound 2", cache.Len())
	}
	samePlan(t, first, again)
}

// A custom resource's answer depends on its CRD (schema, defaults): an edited CRD misses.
func TestCacheMissesAnEditedCRD(t *testing.T) {
	ns := namespace(t)
	group := ns + ".example.com"
	crd := func(defaultColor string) string {
		return `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.` + group + `}
spec:
  group: ` + group + `
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string, default: ` + defaultColor + `}
`
	}
	kubectl(t, crd("blue"), "apply", "--server-side", "-f", "-")
	kubectl(t, "", "wait", "--for=condition=Established", "crd/widgets."+group)
	widget := "apiVersion: " + group + "/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 1}\n"
	kubectl(t, widget, "apply", "--server-side", "--field-manager=kubeplan", "-n", ns, "-f", "-")
	c, n := countingClient(t)
	pl := planner.New(planner.Options{Cache: planner.NewDryRunCache(planner.CacheLimits{})})
	files := map[string]string{"widget.yaml": widget}
	if _, sent := cachedPlan(t, pl, c, n, ns, files, false); sent != 1 {
		t.Fatalf("first plan sent %d dry-runs, want 1", sent)
	}
	if _, sent := cachedPlan(t, pl, c, n, ns, files, false); sent != 0 {
		t.Errorf("re-plan sent %d dry-runs, want 0", sent)
	}
	kubectl(t, crd("red"), "apply", "--server-side", "-f", "-")
	if _, sent := cachedPlan(t, pl, c, n, ns, files, false); sent != 1 {
		t.Errorf("after the CRD changed the plan sent %d dry-runs, want 1", sent)
	}
}
