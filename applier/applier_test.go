package applier_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubeplan/kubeplan/applier"
	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/internal/kubetest"
	"github.com/kubeplan/kubeplan/inventory"
	"github.com/kubeplan/kubeplan/manifest"
	"github.com/kubeplan/kubeplan/outcome"
)

var testCluster *kubetest.Cluster

func TestMain(m *testing.M) { os.Exit(kubetest.RunWithCluster(m, "test", &testCluster)) }

var (
	namespacesGVR  = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	configMapsGVR  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	servicesGVR    = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	deploymentsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
)

func connect(t *testing.T) *cluster.Client {
	t.Helper()
	c, err := testCluster.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fast polls health and CRDs quickly so tests do not wait on the defaults.
func fast() *applier.Applier {
	return applier.New(applier.Options{PollInterval: 100 * time.Millisecond})
}

// objects parses YAML documents into rendered objects; each call gives fresh objects, since
// Apply mutates them.
func objects(t *testing.T, docs ...string) []manifest.Object {
	t.Helper()
	var out []manifest.Object
	for i, doc := range docs {
		us, err := kubetest.Objects(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range us {
			out = append(out, manifest.Object{Unstructured: u, Source: fmt.Sprintf("project/%d.yaml", i)})
		}
	}
	return out
}

func apply(t *testing.T, c *cluster.Client, req applier.Request) *outcome.Result {
	t.Helper()
	res, err := fast().Apply(context.Background(), c, req)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return res
}

// createNamespace makes a namespace outside any project.
func createNamespace(t *testing.T, c *cluster.Client, name string) {
	t.Helper()
	ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}}
	if _, err := c.Dynamic.Resource(namespacesGVR).Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// live reads an object, nil when it does not exist.
func live(t *testing.T, c *cluster.Client, gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := c.Dynamic.Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// result finds the outcome for "Kind namespace/name" (or "Kind name").
func result(t *testing.T, r *outcome.Result, ref string) outcome.Object {
	t.Helper()
	for _, o := range r.Objects {
		if o.Object.String() == ref {
			return o
		}
	}
	t.Fatalf("no result for %s in:\n%s", ref, describe(r))
	return outcome.Object{}
}

func expect(t *testing.T, r *outcome.Result, ref string, want outcome.Action) outcome.Object {
	t.Helper()
	o := result(t, r, ref)
	if o.Action != want {
		t.Fatalf("%s: %s, want %s\n%s", ref, o.Action, want, describe(r))
	}
	return o
}

func describe(r *outcome.Result) string {
	var b strings.Builder
	for _, o := range r.Objects {
		b.WriteString("  " + o.String() + "\n")
	}
	for _, n := range r.Notes {
		b.WriteString("  note: " + n + "\n")
	}
	return b.String()
}

func hasNote(r *outcome.Result, prefix string) bool {
	for _, n := range r.Notes {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

func namespaceYAML(name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", name)
}

func configMapYAML(name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\ndata: {key: %q}\n", name, value)
}

func serviceYAML(name, extra string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec: {ports: [{port: 80}], selector: {app: %s}%s}\n", name, name, extra)
}

func deploymentYAML(name string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %s}
spec:
  replicas: 2
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec: {containers: [{name: app, image: "nginx:1.28"}]}
`, name, name, name)
}

func TestApplyCreatesConfiguresAndPrunesOnlyItsMembers(t *testing.T) {
	c := connect(t)
	ns := unique("applier-lifecycle")
	inv := inventory.ForProject("shop", ns)
	rendered := func(settings string, withService bool) []manifest.Object {
		docs := []string{deploymentYAML("web"), configMapYAML("settings", settings), namespaceYAML(ns)}
		if withService {
			docs = append(docs, serviceYAML("web", ""))
		}
		return objects(t, docs...)
	}
	parentAnnotation := func(name string) string {
		p := live(t, c, configMapsGVR, ns, inv.ParentName)
		if p == nil {
			t.Fatal("no inventory configmap")
		}
		return p.GetAnnotations()[name]
	}

	// The namespace is created by the render, and holds the inventory.
	r := apply(t, c, applier.Request{Project: "shop", Namespace: ns, Objects: rendered("a", true), Prune: true})
	if got, want := r.Counts(), (outcome.Counts{Created: 4}); got != want || r.Failed() {
		t.Fatalf("counts %v, want %v\n%s", got, want, describe(r))
	}
	if r.Objects[0].Object.String() != "Namespace "+ns || r.Project != "shop" || r.Cluster != "test" {
		t.Errorf("result %s/%s, first object %s: namespaces are applied first", r.Cluster, r.Project, r.Objects[0].Object)
	}
	for _, o := range []struct {
		gvr      schema.GroupVersionResource
		ns, name string
	}{{namespacesGVR, "", ns}, {deploymentsGVR, ns, "web"}, {configMapsGVR, ns, "settings"}, {servicesGVR, ns, "web"}} {
		u := live(t, c, o.gvr, o.ns, o.name)
		if u == nil {
			t.Fatalf("%s %s/%s was not created", o.gvr.Resource, o.ns, o.name)
		}
		if got := u.GetLabels()[inventory.LabelPartOf]; got != inv.ID() {
			t.Errorf("%s %s: part-of label %q, want %q", o.gvr.Resource, o.name, got, inv.ID())
		}
	}
	if got := parentAnnotation(inventory.AnnotationTooling); got != "kubeplan/v1" {
		t.Errorf("tooling %q", got)
	}
	if got, want := parentAnnotation(inventory.AnnotationGroupKinds), "ConfigMap,Deployment.apps,Namespace,Service"; got != want {
		t.Errorf("group-kinds %q, want %q", got, want)
	}

	// Objects that are not members: unlabelled, and labelled for another project's ApplySet.
	kubeApply := func(gvr schema.GroupVersionResource, doc string, labels map[string]string) {
		u := objects(t, doc)[0].Unstructured
		u.SetLabels(labels)
		if _, err := c.Dynamic.Resource(gvr).Namespace(ns).
			Apply(context.Background(), u.GetName(), u, metav1.ApplyOptions{FieldManager: "someone-else"}); err != nil {
			t.Fatal(err)
		}
	}
	kubeApply(configMapsGVR, configMapYAML("not-ours", "x"), nil)
	kubeApply(servicesGVR, serviceYAML("not-ours", ""), nil)
	kubeApply(servicesGVR, serviceYAML("other-project", ""), map[string]string{inventory.LabelPartOf: inventory.ForProject("other", ns).ID()})

	r = apply(t, c, applier.Request{Project: "shop", Namespace: ns, Objects: rendered("b", true), Prune: true})
	expect(t, r, "ConfigMap "+ns+"/settings", outcome.Configured)
	if got, want := r.Counts(), (outcome.Counts{Configured: 1, Unchanged: 3}); got != want {
		t.Fatalf("counts %v, want %v\n%s", got, want, describe(r))
	}

	// Without prune, a member gone from the render stays, and the inventory keeps tracking it.
	r = apply(t, c, applier.Request{Project: "shop", Namespace: ns, Objects: rendered("b", false)})
	if got, want := r.Counts(), (outcome.Counts{Unchanged: 3}); got != want || !hasNote(r, "prune disabled: 1 inventory member gone from the render left in place (Service "+ns+"/web)") {
		t.Fatalf("counts %v, want %v\n%s", got, want, describe(r))
	}
	if live(t, c, servicesGVR, ns, "web") == nil {
		t.Fatal("service deleted without prune")
	}
	if got := parentAnnotation(inventory.AnnotationGroupKinds); !strings.Contains(got, "Service") {
		t.Errorf("inventory stopped tracking a member left in place: group-kinds %q", got)
	}

	r = apply(t, c, applier.Request{Project: "shop", Namespace: ns, Objects: rendered("b", false), Prune: true})
	if got, want := r.Counts(), (outcome.Counts{Unchanged: 3, Pruned: 1}); got != want || r.Failed() {
		t.Fatalf("counts %v, want %v\n%s", got, want, describe(r))
	}
	if last := r.Objects[len(r.Objects)-1]; last.Object.String() != "Service "+ns+"/web" || last.Action != outcome.Pruned || last.Health != "" {
		t.Errorf("last result %s, want the pruned service", last)
	}
	if live(t, c, servicesGVR, ns, "web") != nil {
		t.Error("pruned service still exists")
	}
	for _, o := range []struct {
		gvr  schema.GroupVersionResource
		name string
	}{{configMapsGVR, "not-ours"}, {servicesGVR, "not-ours"}, {servicesGVR, "other-project"}, {configMapsGVR, inv.ParentName}} {
		if live(t, c, o.gvr, ns, o.name) == nil {
			t.Errorf("%s %s is not a member but was deleted", o.gvr.Resource, o.name)
		}
	}
	if got, want := parentAnnotation(inventory.AnnotationGroupKinds), "ConfigMap,Deployment.apps,Namespace"; got != want {
		t.Errorf("group-kinds after prune %q, want %q", got, want)
	}
}

const gizmoCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gizmos.applier.example.com}
spec:
  group: applier.example.com
  names: {kind: Gizmo, plural: gizmos, singular: gizmo}
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
`

func TestCustomResourceAppliedWithItsCRD(t *testing.T) {
	c := connect(t)
	// CRDs are cluster-scoped: a group of its own per run keeps the first apply a creation.
	ns, group := unique("applier-crd"), unique("g")+".applier.example.com"
	createNamespace(t, c, ns)
	docs := []string{"apiVersion: " + group + "/v1\nkind: Gizmo\nmetadata: {name: g1}\nspec: {size: 3}\n",
		strings.ReplaceAll(gizmoCRD, "applier.example.com", group)}

	r := apply(t, c, applier.Request{Project: "gizmos", Namespace: ns, Objects: objects(t, docs...), HealthTimeout: 10 * time.Second})
	if got, want := r.Counts(), (outcome.Counts{Created: 2}); got != want || r.Failed() {
		t.Fatalf("counts %v, want %v\n%s", got, want, describe(r))
	}
	if r.Objects[0].Object.Kind != "CustomResourceDefinition" || r.Objects[0].Health != "Current" {
		t.Errorf("CRD not applied first or not established: %s", r.Objects[0])
	}
	gizmos := schema.GroupVersionResource{Group: group, Version: "v1", Resource: "gizmos"}
	if g := live(t, c, gizmos, ns, "g1"); g == nil {
		t.Fatal("gizmo not created")
	} else if size, _, _ := unstructured.NestedInt64(g.Object, "spec", "size"); size != 3 {
		t.Errorf("gizmo size %d", size)
	}
	parent := live(t, c, configMapsGVR, ns, "kubeplan-gizmos")
	if got, want := parent.GetAnnotations()[inventory.AnnotationGroupKinds], "CustomResourceDefinition.apiextensions.k8s.io,Gizmo."+group; got != want {
		t.Errorf("group-kinds %q, want %q", got, want)
	}

	r = apply(t, connect(t), applier.Request{Project: "gizmos", Namespace: ns, Objects: objects(t, docs...)})
	if got, want := r.Counts(), (outcome.Counts{Unchanged: 2}); got != want {
		t.Fatalf("second apply: counts %v, want %v\n%s", got, want, describe(r))
	}
}

// clashCRD defines kind Gizmo in the given group under the given plural: two of them in one
// group claim the same kind.
func clashCRD(group, plural string) string {
	return strings.NewReplacer("gizmos", plural, "applier.example.com", group).Replace(gizmoCRD)
}

func TestKindsTheClusterNoLongerServesAreNotedAndKept(t *testing.T) {
	c := connect(t)
	ns := unique("applier-unserved")
	createNamespace(t, c, ns)
	inv := inventory.ForProject("p", ns)
	// An earlier apply recorded a kind whose CRD has since been removed.
	parent := inv.Parent([]schema.GroupKind{{Kind: "ConfigMap"}, {Group: "gone.example.com", Kind: "Phantom"}}, nil, "")
	if _, err := c.Dynamic.Resource(configMapsGVR).Namespace(ns).Apply(context.Background(), parent.GetName(), parent,
		metav1.ApplyOptions{FieldManager: "kubeplan"}); err != nil {
		t.Fatal(err)
	}
	r := apply(t, c, applier.Request{Project: "p", Namespace: ns, Prune: true, Objects: objects(t, configMapYAML("a", "1"))})
	if r.Failed() || !hasNote(r, "inventory lists kinds the cluster no longer serves (Phantom.gone.example.com): their objects cannot be pruned") {
		t.Fatalf("failed %v\n%s", r.Failed(), describe(r))
	}
	if got, want := live(t, c, configMapsGVR, ns, inv.ParentName).GetAnnotations()[inventory.AnnotationGroupKinds], "ConfigMap,Phantom.gone.example.com"; got != want {
		t.Errorf("group-kinds %q, want %q", got, want)
	}
}

func TestConflictWithAnotherFieldManager(t *testing.T) {
	for _, tc := range []struct {
		name      string
		force     bool
		want      outcome.Action
		wantError string
		wantLive  string
	}{
		{"without force", false, outcome.Failed, `conflict: field manager "other" owns .data.key (set force for this project to take it over)`, "theirs"},
		{"with force", true, outcome.Configured, "", "ours-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := connect(t)
			ns := unique("applier-conflict-" + strings.ReplaceAll(tc.name, " ", "-"))
			createNamespace(t, c, ns)
			apply(t, c, applier.Request{Project: "p", Namespace: ns, Objects: objects(t, configMapYAML("settings", "ours"))})
			// Another manager takes the field over.
			theirs := objects(t, configMapYAML("settings", "theirs"))[0].Unstructured
			if _, err := c.Dynamic.Resource(configMapsGVR).Namespace(ns).Apply(context.Background(), "settings", theirs,
				metav1.ApplyOptions{FieldManager: "other", Force: true}); err != nil {
				t.Fatal(err)
			}

			r := apply(t, c, applier.Request{Project: "p", Namespace: ns, Objects: objects(t, configMapYAML("settings", "ours-2")), Force: tc.force})
			o := expect(t, r, "ConfigMap "+ns+"/settings", tc.want)
			if o.Error != tc.wantError || r.Failed() != (tc.want == outcome.Failed) {
				t.Errorf("error %q, want %q (failed %v)", o.Error, tc.wantError, r.Failed())
			}
			if got := live(t, c, configMapsGVR, ns, "settings").Object["data"].(map[string]any)["key"]; got != tc.wantLive {
				t.Errorf("live value %q, want %q", got, tc.wantLive)
			}
		})
	}
}

func TestFailedObjectsDoNotStopTheOthersAndSkipPrune(t *testing.T) {
	clash := unique("clash") + ".applier.example.com" // CRDs are cluster-scoped: one group per run
	for _, tc := range []struct {
		name      string
		before    string // applied first, as is
		failing   string // then applied with the others
		ref       string // the failing object; {ns} is the test's namespace
		wantError string // prefix
	}{
		{
			name:      "immutable field",
			before:    serviceYAML("web", ""),
			failing:   serviceYAML("web", ", clusterIP: 10.0.200.200"),
			ref:       "Service {ns}/web",
			wantError: "invalid: Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: [\"10.0.200.200\"]: may not change once set",
		},
		{
			name:      "missing namespace",
			failing:   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lost, namespace: applier-nowhere}\n",
			ref:       "ConfigMap applier-nowhere/lost",
			wantError: "namespace applier-nowhere does not exist (create it in this project or before applying): namespaces \"applier-nowhere\" not found",
		},
		{
			name:      "crd names conflict",
			before:    clashCRD(clash, "gizmos"),
			failing:   clashCRD(clash, "doohickeys"),
			ref:       "CustomResourceDefinition doohickeys." + clash,
			wantError: "CustomResourceDefinition not established: \"Gizmo", // "Gizmo" or "GizmoList" is already in use
		},
		{
			name:      "unknown kind",
			failing:   "apiVersion: nothing.example.com/v1\nkind: Phantom\nmetadata: {name: p}\n",
			ref:       "Phantom p",
			wantError: "unknown kind Phantom in nothing.example.com/v1: cluster test does not serve it and this request creates no CRD for it",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := connect(t)
			ns := unique("applier-fail-" + strings.ReplaceAll(tc.name, " ", "-"))
			createNamespace(t, c, ns)
			first := []string{configMapYAML("kept", "1"), configMapYAML("retired", "1")}
			if tc.before != "" {
				first = append(first, tc.before)
			}
			if r := apply(t, c, applier.Request{Project: "p", Namespace: ns, Objects: objects(t, first...)}); r.Failed() {
				t.Fatalf("first apply failed:\n%s", describe(r))
			}

			r := apply(t, c, applier.Request{Project: "p", Namespace: ns, Prune: true,
				Objects: objects(t, configMapYAML("kept", "2"), configMapYAML("fresh", "1"), tc.failing)})
			o := expect(t, r, strings.ReplaceAll(tc.ref, "{ns}", ns), outcome.Failed)
			if !strings.HasPrefix(o.Error, tc.wantError) {
				t.Errorf("error:\n%s\nwant it to start with\n%s", o.Error, tc.wantError)
			}
			expect(t, r, "ConfigMap "+ns+"/kept", outcome.Configured)
			expect(t, r, "ConfigMap "+ns+"/fresh", outcome.Created)
			if !r.Failed() || !hasNote(r, "prune skipped: 1 object failed to apply") {
				t.Errorf("failed %v, notes %q", r.Failed(), r.Notes)
			}
			if live(t, c, configMapsGVR, ns, "retired") == nil {
				t.Error("pruned although an object failed")
			}
		})
	}
}

func TestObjectDefinedTwiceIsAnError(t *testing.T) {
	c := connect(t)
	ns := unique("applier-twice")
	createNamespace(t, c, ns)
	_, err := fast().Apply(context.Background(), c, applier.Request{Project: "p", Namespace: ns,
		Objects: objects(t, configMapYAML("first", "1"), configMapYAML("same", "1"), configMapYAML("same", "2"))})
	if err == nil || err.Error() != "ConfigMap "+ns+"/same is defined twice: in project/1.yaml and in project/2.yaml" {
		t.Fatalf("error %v", err)
	}
	if live(t, c, configMapsGVR, ns, "first") != nil {
		t.Error("applied objects although the request is invalid")
	}
}

// reportStatus writes the status a deployment controller would (envtest runs no controllers)
// as soon as the deployment exists: available, or past its progress deadline.
func reportStatus(ctx context.Context, c *cluster.Client, ns, name string, available bool) error {
	for {
		d, err := c.Dynamic.Resource(deploymentsGVR).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return err
		}
		now := time.Now().UTC().Format(time.RFC3339)
		cond := func(typ, status, reason string) map[string]any {
			return map[string]any{"type": typ, "status": status, "reason": reason, "lastUpdateTime": now, "lastTransitionTime": now}
		}
		st := map[string]any{
			"observedGeneration": d.GetGeneration(),
			"replicas":           int64(2), "updatedReplicas": int64(2), "readyReplicas": int64(2), "availableReplicas": int64(2),
			"conditions": []any{cond("Available", "True", "MinimumReplicasAvailable"), cond("Progressing", "True", "NewReplicaSetAvailable")},
		}
		if !available {
			st = map[string]any{
				"observedGeneration": d.GetGeneration(), "replicas": int64(2), "updatedReplicas": int64(2), "unavailableReplicas": int64(2),
				"conditions": []any{cond("Available", "False", "MinimumReplicasUnavailable"), cond("Progressing", "False", "ProgressDeadlineExceeded")},
			}
		}
		d.Object["status"] = st
		_, err = c.Dynamic.Resource(deploymentsGVR).Namespace(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{})
		return err
	}
}

func TestHealthWait(t *testing.T) {
	for _, tc := range []struct {
		name         string
		timeout      time.Duration
		report       string // "available" or "failed": status the test writes while the apply waits
		wantTimedOut bool
		wantHealth   string
		wantFailed   bool
		maxDuration  time.Duration
	}{
		// No controllers run in envtest: the deployment never becomes available on its own.
		{name: "never available", timeout: 2 * time.Second, wantTimedOut: true, wantHealth: "InProgress", wantFailed: true, maxDuration: 10 * time.Second},
		{name: "becomes available", timeout: time.Minute, report: "available", wantHealth: "Current", maxDuration: 20 * time.Second},
		{name: "fails", timeout: time.Minute, report: "failed", wantHealth: "Failed", wantFailed: true, maxDuration: 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := connect(t)
			ns := unique("applier-health-" + strings.ReplaceAll(tc.name, " ", "-"))
			createNamespace(t, c, ns)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			statusDone := make(chan error, 1)
			if tc.report != "" {
				go func() { statusDone <- reportStatus(ctx, c, ns, "web", tc.report == "available") }()
			}

			start := time.Now()
			r := apply(t, c, applier.Request{Project: "p", Namespace: ns, HealthTimeout: tc.timeout,
				Objects: objects(t, deploymentYAML("web"), configMapYAML("settings", "1"))})
			took := time.Since(start)
			if tc.report != "" {
				if err := <-statusDone; err != nil {
					t.Fatalf("report deployment status: %v", err)
				}
			}

			if r.HealthTimedOut != tc.wantTimedOut || r.Failed() != tc.wantFailed {
				t.Errorf("timed out %v, failed %v, want %v, %v\n%s", r.HealthTimedOut, r.Failed(), tc.wantTimedOut, tc.wantFailed, describe(r))
			}
			if d := expect(t, r, "Deployment "+ns+"/web", outcome.Created); d.Health != tc.wantHealth {
				t.Errorf("deployment health %s (%s), want %s", d.Health, d.HealthMessage, tc.wantHealth)
			}
			if cm := expect(t, r, "ConfigMap "+ns+"/settings", outcome.Created); cm.Health != "Current" {
				t.Errorf("configmap health %s (%s), want Current", cm.Health, cm.HealthMessage)
			}
			if tc.wantTimedOut && (took < tc.timeout || !hasNote(r, "health: not healthy after 2s: Deployment "+ns+"/web InProgress")) {
				t.Errorf("returned after %s, notes %q", took, r.Notes)
			}
			if took > tc.maxDuration {
				t.Errorf("apply took %s", took)
			}
		})
	}
}

func TestCancelledContextStopsTheApply(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cancelAfter time.Duration // <0: cancelled before the apply starts
		wantCreated bool          // the result still records what was done
	}{
		{name: "before", cancelAfter: -1},
		{name: "during health wait", cancelAfter: time.Second, wantCreated: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := connect(t)
			ns := unique("applier-cancel-" + strings.ReplaceAll(tc.name, " ", "-"))
			createNamespace(t, c, ns)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelAfter < 0 {
				cancel()
			} else {
				time.AfterFunc(tc.cancelAfter, cancel)
			}

			start := time.Now()
			r, err := fast().Apply(ctx, c, applier.Request{Project: "p", Namespace: ns, HealthTimeout: time.Minute,
				Objects: objects(t, deploymentYAML("web"))})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want context.Canceled", err)
			}
			if took := time.Since(start); took > tc.cancelAfter+2*time.Second {
				t.Errorf("returned %s after the cancel", took)
			}
			if r == nil {
				t.Fatal("nil result")
			}
			if created := len(r.Objects) == 1 && r.Objects[0].Action == outcome.Created; created != tc.wantCreated {
				t.Errorf("result:\n%s", describe(r))
			}
		})
	}
}
