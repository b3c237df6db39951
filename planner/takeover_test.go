package planner_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/planner"
)

// Each object is planned with one forced dry-run; the fields it takes from other field
// managers are read from managedFields and worded as the 409 of a plain dry-run names them.
func TestOneDryRunPerObjectAndItsTakeovers(t *testing.T) {
	deployment := func(replicas int, image string) string {
		return fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: %d\n"+
			"  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"+
			"    spec: {containers: [{name: app, image: %q}]}\n", replicas, image)
	}
	image := func(manager, image string) []string {
		return []string{"-n", "NS", "apply", "--server-side", "--force-conflicts", "--field-manager=" + manager, "-f", "-",
			"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n" +
				"    metadata: {labels: {app: web}}\n    spec: {containers: [{name: app, image: " + image + "}]}\n"}
	}
	replicas := func(manager string, n int) []string {
		return []string{"-n", "NS", "apply", "--server-side", "--force-conflicts", "--field-manager=" + manager, "-f", "-",
			fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: %d}\n", n)}
	}
	ours := []string{"-n", "NS", "apply", "--server-side", "--field-manager=kubeplan", "-f", "-", deployment(2, "nginx:1.27")}
	cases := []struct {
		name string
		// before are kubectl invocations, the last argument its stdin; NS is the namespace.
		before   [][]string
		manifest string
		want     []string
	}{
		{
			name:     "no other manager",
			before:   [][]string{ours},
			manifest: deployment(2, "nginx:1.28"),
		},
		{
			name:     "migrated from kubectl client-side apply",
			before:   [][]string{{"-n", "NS", "apply", "-f", "-", deployment(2, "nginx:1.27")}},
			manifest: deployment(3, "nginx:1.28"),
			want: []string{
				`takes over .spec.replicas from field manager "kubectl-client-side-apply"`,
				`takes over .spec.template.spec.containers[name="app"].image from field manager "kubectl-client-side-apply"`,
			},
		},
		{
			name:     "a list-keyed field",
			before:   [][]string{ours, image("image-bumper", "nginx:1.29")},
			manifest: deployment(2, "nginx:1.28"),
			want:     []string{`takes over .spec.template.spec.containers[name="app"].image from field manager "image-bumper"`},
		},
		{
			name:     "two managers, sorted by name",
			before:   [][]string{ours, replicas("hpa-controller", 7), image("image-bumper", "nginx:1.29")},
			manifest: deployment(2, "nginx:1.28"),
			want: []string{
				`takes over .spec.replicas from field manager "hpa-controller"`,
				`takes over .spec.template.spec.containers[name="app"].image from field manager "image-bumper"`,
			},
		},
		{
			name:     "the same value set by another manager is shared, not taken",
			before:   [][]string{ours, replicas("hpa-controller", 2)},
			manifest: deployment(2, "nginx:1.28"),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := namespace(t)
			for _, args := range tc.before {
				args = append([]string(nil), args...)
				for i := range args {
					args[i] = strings.ReplaceAll(args[i], "NS", ns)
				}
				kubectl(t, args[len(args)-1], args[:len(args)-1]...)
			}
			c, n := countingClient(t)
			p, sent := cachedPlan(t, planner.New(planner.DefaultOptions()), c, n, ns, map[string]string{"web.yaml": tc.manifest}, false)
			if sent != 1 {
				t.Errorf("sent %d dry-runs, want 1", sent)
			}
			ch := expectAction(t, p, "Deployment "+ns+"/web", plan.Update)
			if strings.Join(ch.Warnings, "\n") != strings.Join(tc.want, "\n") || ch.Conflicts != (len(tc.want) > 0) {
				t.Errorf("warnings %q, conflicts %v; want %q", ch.Warnings, ch.Conflicts, tc.want)
			}
			// The same fields a plain dry-run's 409 names, in any order.
			if got, want := sorted(ch.Warnings), sorted(conflictWarnings(t, ns, tc.manifest)); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("warnings %q, the 409 names %q", got, want)
			}
		})
	}
}

// conflictWarnings sends a plain (unforced) server-side apply dry-run of manifest as kubeplan
// and words the fields its 409 names as the plan did before it read managedFields.
func conflictWarnings(t *testing.T, ns, manifest string) []string {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetNamespace(ns)
	gvr := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	dc, err := dynamic.NewForConfig(testCluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dc.Resource(gvr).Namespace(ns).Apply(context.Background(), u.GetName(), u,
		metav1.ApplyOptions{FieldManager: cluster.FieldManager, DryRun: []string{metav1.DryRunAll}})
	var out []string
	for _, c := range cluster.Conflicts(err) {
		out = append(out, fmt.Sprintf("takes over %s from field manager %s", c.Field, c.Manager))
	}
	if err != nil && out == nil {
		t.Fatalf("plain dry-run: %v", err)
	}
	return out
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}
