package planner_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/access"
	"github.com/kubeplan/kubeplan/applier"
	"github.com/kubeplan/kubeplan/internal/kubetest"
	"github.com/kubeplan/kubeplan/inventory"
	"github.com/kubeplan/kubeplan/manifest"
	"github.com/kubeplan/kubeplan/outcome"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/planner"
)

// The plan a reviewer approves must name what the apply then does, object by object: both
// resolve objects by one rule (package resolve). These tests plan a request, apply the same
// request, and compare.

// manifests parses YAML documents, one per file; each call gives fresh objects, since planning
// and applying change them in place.
func manifests(t *testing.T, docs ...string) []manifest.Object {
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

// applied is the action each planned action turns into when applied.
var applied = map[plan.Action]outcome.Action{
	plan.Create: outcome.Created, plan.Update: outcome.Configured, plan.Unchanged: outcome.Unchanged,
	plan.Delete: outcome.Pruned, plan.Fail: outcome.Failed,
}

// planThenApply plans docs for project in ns, applies them (prune on), and fails the test
// unless the apply did to each object what the plan said, the same objects, with a failing
// object's reason the apply's error.
func planThenApply(t *testing.T, project, ns string, docs ...string) (*plan.Plan, *outcome.Result) {
	t.Helper()
	c := connect(t)
	p, err := planner.New(planner.Options{}).Plan(context.Background(), c, planner.Request{Project: project, Namespace: ns, Objects: manifests(t, docs...)})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	r, err := applier.New(applier.Options{}).Apply(context.Background(), c, applier.Request{Project: project, Namespace: ns, Prune: true, Objects: manifests(t, docs...)})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	did := map[string]outcome.Object{}
	for _, o := range r.Objects {
		did[o.Object.String()] = o
	}
	var problems []string
	for _, ch := range p.Changes {
		o, ok := did[ch.Object.String()]
		delete(did, ch.Object.String())
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("planned %s %s, which the apply does not name", ch.Action, ch.Object))
		case o.Action != applied[ch.Action]:
			problems = append(problems, fmt.Sprintf("%s: planned %s, applied %s (%s)", ch.Object, ch.Action, o.Action, o.Error))
		case ch.Action == plan.Fail && ch.Reason != o.Error:
			problems = append(problems, fmt.Sprintf("%s: plan says %q, apply %q", ch.Object, ch.Reason, o.Error))
		}
	}
	for ref, o := range did {
		problems = append(problems, fmt.Sprintf("applied %s %s, which the plan does not name", o.Action, ref))
	}
	if len(problems) > 0 {
		t.Errorf("the apply is not what was planned:\n  %s", strings.Join(problems, "\n  "))
	}
	return p, r
}

// A custom resource of a cluster-scoped kind whose CRD is in the same render, written with a
// namespace: the apply drops the namespace (the apiserver would refuse it), so the plan must
// name the object without one too, or the reviewer approves an object the apply never touches.
func TestPlanNamesACustomResourceOfANewClusterScopedKindAsTheApplyDoes(t *testing.T) {
	ns := freshNamespace(t, "agree-crd")
	group := unique("g") + ".agree.example.com"
	crd := fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: beacons.%[1]s}
spec:
  group: %[1]s
  scope: Cluster
  names: {plural: beacons, singular: beacon, kind: Beacon}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
`, group)
	beacon := fmt.Sprintf("apiVersion: %s/v1\nkind: Beacon\nmetadata: {name: b-%s, namespace: %s}\nspec: {on: true}\n", group, ns, ns)
	p, _ := planThenApply(t, "beacons", ns, crd, beacon)
	ch := expectAction(t, p, "Beacon b-"+ns, plan.Create)
	if strings.Contains(ch.Diff, "namespace:") {
		t.Errorf("the planned object keeps a namespace:\n%s", ch.Diff)
	}
}

// An object without a name fails that object only, in the plan as in the apply, for the same
// reason; an empty object stops both, with the same error.
func TestPlanFailsAnObjectWithoutANameAsTheApplyDoes(t *testing.T) {
	ns := freshNamespace(t, "agree-noname")
	p, r := planThenApply(t, "noname", ns, configMapYAML("named", "1"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: x-}\ndata: {a: b}\n")
	if ch := expectAction(t, p, "ConfigMap "+ns+"/", plan.Fail); ch.Reason != "ConfigMap from project/1.yaml has no name" {
		t.Errorf("reason %q", ch.Reason)
	}
	if !r.Failed() {
		t.Error("the apply did not fail the object")
	}

	c := connect(t)
	empty := []manifest.Object{{Source: "project/empty.yaml"}}
	_, planErr := planner.New(planner.Options{}).Plan(context.Background(), c, planner.Request{Project: "noname", Namespace: ns, Objects: empty})
	_, applyErr := applier.New(applier.Options{}).Apply(context.Background(), c, applier.Request{Project: "noname", Namespace: ns, Objects: empty})
	if planErr == nil || applyErr == nil || planErr.Error() != applyErr.Error() {
		t.Errorf("an empty object: plan %v, apply %v", planErr, applyErr)
	}
}

// An inventory member whose live object no longer carries the set's part-of label (someone
// took it out of the project) is neither planned for deletion nor pruned.
func TestMemberThatLostItsLabelIsNeitherPlannedNorPrunedForDeletion(t *testing.T) {
	ns := freshNamespace(t, "agree-label")
	applyAs(t, owner, "shop", ns, false, map[string]string{"a.yaml": configMapYAML("a", "1"), "b.yaml": configMapYAML("b", "2")})
	kubectl(t, "", "label", "configmap", "b", "-n", ns, inventory.LabelPartOf+"-")

	planThenApply(t, "shop", ns, configMapYAML("a", "1"))
	if out := kubectl(t, "", "get", "configmap", "b", "-n", ns, "-o", "name"); strings.TrimSpace(out) != "configmap/b" {
		t.Errorf("the unlabelled ConfigMap was deleted: %q", out)
	}
}

// An inventory member outside the repository's access rules (the rules were narrowed after it
// was applied) refuses the plan, and the apply alike: it is not deleted.
func TestMemberOutsideTheScopeRefusesPlanAndApply(t *testing.T) {
	ns, other := freshNamespace(t, "agree-scope"), freshNamespace(t, "agree-elsewhere")
	elsewhere := strings.Replace(configMapYAML("ledger", "x"), "metadata: {", "metadata: {namespace: "+other+", ", 1)
	applyAs(t, owner, "shop", ns, false, map[string]string{"a.yaml": configMapYAML("a", "1"), "b.yaml": elsewhere})

	grant, err := access.Rules{{Repositories: []string{"acme/shop"}, Namespaces: []string{ns}}}.For("github", "acme/shop", testCluster.Name)
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t)
	want := "the inventory lists ConfigMap " + other + "/ledger: repository github:acme/shop may not touch namespace " + other
	_, planErr := planner.New(planner.Options{}).Plan(context.Background(), c, planner.Request{Project: "shop", Namespace: ns, Repository: owner, Scope: grant,
		Objects: manifests(t, configMapYAML("a", "1"))})
	_, applyErr := applier.New(applier.Options{}).Apply(context.Background(), c, applier.Request{Project: "shop", Namespace: ns, Repository: owner, Scope: grant, Prune: true,
		Objects: manifests(t, configMapYAML("a", "1"))})
	for what, err := range map[string]error{"plan": planErr, "apply": applyErr} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want a refusal saying %q", what, err, want)
		}
	}
	if out := kubectl(t, "", "get", "configmap", "ledger", "-n", other, "-o", "name"); strings.TrimSpace(out) != "configmap/ledger" {
		t.Errorf("the member outside the scope was deleted: %q", out)
	}
}
