package planner_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kubeplan/kubeplan/access"
	"github.com/kubeplan/kubeplan/applier"
	"github.com/kubeplan/kubeplan/internal/testtree"
	"github.com/kubeplan/kubeplan/inventory"
	"github.com/kubeplan/kubeplan/manifest"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/planner"
	"github.com/kubeplan/kubeplan/render"
	"github.com/kubeplan/kubeplan/report"
)

var seq atomic.Int64

// unique names a namespace (or API group) for one run of one test (-count=2 shares a cluster).
func unique(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

// freshNamespace creates a namespace of its own for one run of a test.
func freshNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := unique(prefix)
	kubectl(t, "", "create", "namespace", ns)
	return ns
}

const (
	owner    = "github:acme/shop"
	stranger = "github:mallory/shop"
)

// render lays out files as a project and renders it into namespace ns.
func renderFiles(t *testing.T, ns string, files map[string]string) []manifest.Object {
	t.Helper()
	inProject := map[string]string{}
	for name, content := range files {
		inProject["project/"+name] = content
	}
	res, err := render.Render(context.Background(), testtree.Write(t, inProject), "project", render.Options{Namespace: ns})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return res.Objects
}

// applyAs applies a project for a repository, as a merged pull request would.
func applyAs(t *testing.T, repository, project, ns string, allowDestructive bool, files map[string]string) {
	t.Helper()
	r, err := applier.New(applier.Options{}).Apply(context.Background(), connect(t), applier.Request{Project: project, Namespace: ns,
		Repository: repository, Prune: true, AllowDestructive: allowDestructive, Objects: renderFiles(t, ns, files)})
	if err != nil || r.Failed() {
		t.Fatalf("apply as %s: %v %+v", repository, err, r)
	}
}

// planAs plans a project for a repository ("" is the CLI) within an optional scope.
func planAs(t *testing.T, repository, project, ns string, scope planner.Scope, files map[string]string) (*plan.Plan, error) {
	t.Helper()
	return planner.New(planner.Options{}).Plan(context.Background(), connect(t), planner.Request{Project: project, Namespace: ns,
		Repository: repository, Scope: scope, Objects: renderFiles(t, ns, files)})
}

const secretEnv = "hunter2-do-not-show"

func withEnv(image string) string {
	return strings.Replace(deploymentYAML("web", image), `image: "`+image+`"}`, `image: "`+image+`", env: [{name: API_KEY, value: `+secretEnv+`}]}`, 1)
}

// The hole: a stranger's repository declares the owner's project name and namespace. Its plan
// is refused naming the owner, with nothing of the owner's live objects in it — no "will be
// deleted", no values. The owner plans as before; the CLI plans and names the owner.
func TestAnotherRepositorysInventoryIsRefused(t *testing.T) {
	ns := freshNamespace(t, "owned")
	applyAs(t, owner, "shop", ns, false, map[string]string{
		"settings.yaml": configMapYAML("settings", "s3cret-setting"),
		"deploy.yaml":   withEnv("nginx:1.27"),
	})

	// The stranger renders the owner's ConfigMap name too, hoping for a diff of its live value.
	_, err := planAs(t, stranger, "shop", ns, nil, map[string]string{"settings.yaml": configMapYAML("settings", "mine")})
	var foreign *inventory.ForeignError
	if !errors.As(err, &foreign) || foreign.Owner != owner || foreign.Repository != stranger {
		t.Fatalf("the stranger's plan: %v, want the inventory refused naming %s", err, owner)
	}
	for _, leak := range []string{"s3cret-setting", secretEnv, "will be deleted", "Deployment"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("the refusal shows %q: %v", leak, err)
		}
	}
	if want := "inventory configmap " + ns + "/kubeplan-shop belongs to repository " + owner + ", not to " + stranger; !strings.Contains(err.Error(), want) {
		t.Errorf("refusal %q does not say %q", err, want)
	}

	// The owner dropping the Deployment sees it, and its own values, as ever.
	p, err := planAs(t, owner, "shop", ns, nil, map[string]string{"settings.yaml": configMapYAML("settings", "s3cret-setting")})
	if err != nil {
		t.Fatal(err)
	}
	if del := expectAction(t, p, "Deployment "+ns+"/web", plan.Delete); !strings.Contains(del.Diff, secretEnv) {
		t.Errorf("the owner's deletion diff:\n%s", del.Diff)
	}
	// The CLI has no repository: whoever runs it holds the kubeconfig and may read all this.
	p, err = planAs(t, "", "shop", ns, nil, map[string]string{"settings.yaml": configMapYAML("settings", "s3cret-setting")})
	if err != nil {
		t.Fatal(err)
	}
	if !hasNote(p, "inventory configmap "+ns+"/kubeplan-shop belongs to repository "+owner) {
		t.Errorf("the CLI's plan does not name the owner: %v", p.Notes)
	}
}

// An inventory kubectl wrote (or kubeplan before it recorded owners) is planned for the first
// repository that asks, which is told that applying claims it.
func TestUnownedInventoryIsPlannedWithANoteThatApplyClaimsIt(t *testing.T) {
	ns := freshNamespace(t, "unowned")
	kubectl(t, configMapYAML("retired", "old"), "apply", "--server-side", "--field-manager=kubeplan", "--prune", "--applyset=configmap/kubeplan-shop", "-n", ns, "-f", "-")
	p, err := planAs(t, owner, "shop", ns, nil, map[string]string{"a.yaml": configMapYAML("a", "1")})
	if err != nil {
		t.Fatal(err)
	}
	expectAction(t, p, "ConfigMap "+ns+"/retired", plan.Delete)
	if !hasNote(p, "inventory configmap "+ns+"/kubeplan-shop records no owning repository (written by kubectl or an earlier kubeplan): applying this plan records "+owner+" as its owner") {
		t.Errorf("notes %v", p.Notes)
	}
}

// A manifest named like an inventory parent fails in the plan: it would rewrite an inventory.
func TestManifestNamedLikeAnInventoryFails(t *testing.T) {
	ns := freshNamespace(t, "reserved")
	p, err := planAs(t, stranger, "evil", ns, nil, map[string]string{"cm.yaml": configMapYAML("kubeplan-shop", "x")})
	if err != nil {
		t.Fatal(err)
	}
	if ch := expectAction(t, p, "ConfigMap "+ns+"/kubeplan-shop", plan.Fail); !strings.Contains(ch.Reason, "reserved for kubeplan's inventories") || ch.Diff != "" {
		t.Errorf("reason %q, diff %q", ch.Reason, ch.Diff)
	}
}

// Access rules hold a plan to the namespaces they grant the repository: an object elsewhere,
// or an inventory elsewhere, refuses the whole plan before anything live is read.
func TestPlanOutsideTheRepositorysNamespacesIsRefused(t *testing.T) {
	ns := freshNamespace(t, "scoped")
	other := unique("payments")
	kubectl(t, "", "create", "namespace", other)
	kubectl(t, configMapYAML("ledger", "top-secret-ledger"), "apply", "-n", other, "-f", "-")
	rules := access.Rules{{Repositories: []string{"acme/shop"}, Namespaces: []string{ns}}}
	grant, err := rules.For("github", "acme/shop", testCluster.Name)
	if err != nil {
		t.Fatal(err)
	}
	intruder := strings.Replace(configMapYAML("ledger", "mine"), "metadata: {", "metadata: {namespace: "+other+", ", 1)
	for name, tc := range map[string]struct {
		ns    string
		files map[string]string
		want  string
	}{
		"an object in another namespace":     {ns, map[string]string{"a.yaml": configMapYAML("a", "1"), "b.yaml": intruder}, "ConfigMap " + other + "/ledger (from project/b.yaml): repository github:acme/shop may not touch namespace " + other},
		"the inventory in another namespace": {other, map[string]string{"a.yaml": configMapYAML("a", "1")}, "the project's inventory: repository github:acme/shop may not touch namespace " + other},
		"a cluster-scoped object":            {ns, map[string]string{"a.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: x}\n"}, "may not touch cluster-scoped ClusterRole x"},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := planAs(t, owner, "shop", tc.ns, grant, tc.files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("plan: %v, want a refusal saying %q", err, tc.want)
			}
			if p != nil || strings.Contains(err.Error(), "top-secret-ledger") {
				t.Fatalf("a refused plan shows something: %v %v", p, err)
			}
		})
	}
}

// Deleting a Namespace or a CRD is marked destructive with what it takes down, counted by kind
// from the live cluster (everything in the namespace, the CRD's resources in every namespace).
// The counts are for people: a pod more or less does not make the reviewed plan stale.
func TestDestructiveDeletionsCountWhatTheyTakeDown(t *testing.T) {
	ns := freshNamespace(t, "destructive")
	legacy, group := unique("legacy"), unique("g")+".planner.example.com"
	crd := fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gizmos.%[1]s}
spec:
  group: %[1]s
  names: {kind: Gizmo, plural: gizmos}
  scope: Namespaced
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
`, group)
	applyAs(t, owner, "shop", ns, false, map[string]string{
		"settings.yaml": configMapYAML("settings", "a"),
		"legacy.yaml":   fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n", legacy),
		"crd.yaml":      crd,
	})
	gizmo := func(name string) string {
		return fmt.Sprintf("apiVersion: %s/v1\nkind: Gizmo\nmetadata: {name: %s}\nspec: {size: 1}\n", group, name)
	}
	kubectl(t, configMapYAML("one", "1")+"---\n"+configMapYAML("two", "2")+"---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {k: v}\n---\n"+gizmo("g2"), "apply", "-n", legacy, "-f", "-")
	kubectl(t, gizmo("g1"), "apply", "-n", ns, "-f", "-")

	files := map[string]string{"settings.yaml": configMapYAML("settings", "a")}
	p, err := planAs(t, owner, "shop", ns, nil, files)
	if err != nil {
		t.Fatal(err)
	}
	nsDel := expectAction(t, p, "Namespace "+legacy, plan.Delete)
	crdDel := expectAction(t, p, "CustomResourceDefinition gizmos."+group, plan.Delete)
	if !nsDel.Destructive || !crdDel.Destructive || len(p.Destructive()) != 2 {
		t.Fatalf("destructive: namespace %v, CRD %v, plan %d", nsDel.Destructive, crdDel.Destructive, len(p.Destructive()))
	}
	if got, want := nsDel.Cascade.String(), "4 objects (2 ConfigMap, 1 Gizmo."+group+", 1 Secret)"; got != want {
		t.Errorf("namespace takes down %q, want %q", got, want)
	}
	if got, want := crdDel.Cascade.String(), "2 objects (2 Gizmo."+group+")"; got != want {
		t.Errorf("CRD takes down %q, want %q", got, want)
	}
	for _, ch := range p.Changes {
		if ch.Destructive && ch.Object.Kind != "Namespace" && ch.Object.Kind != "CustomResourceDefinition" {
			t.Errorf("%s marked destructive", ch.Object)
		}
	}

	// JSON carries the mark and the counts; the text output says it up front.
	var js bytes.Buffer
	if err := report.JSON(&js, p); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Destructive []string      `json:"destructive"`
		Changes     []plan.Change `json:"changes"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Destructive) != 2 || !strings.Contains(doc.Destructive[0], "Namespace "+legacy+" takes down everything in it: 4 objects") {
		t.Errorf("JSON destructive: %q", doc.Destructive)
	}
	var text bytes.Buffer
	if err := report.Text(&text, p, report.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "DESTRUCTIVE: Namespace "+legacy+" takes down everything in it") {
		t.Errorf("text output:\n%s", text.String())
	}

	// Another object in the namespace: counted, but the plan that was reviewed still stands.
	kubectl(t, configMapYAML("three", "3"), "apply", "-n", legacy, "-f", "-")
	again, err := planAs(t, owner, "shop", ns, nil, files)
	if err != nil {
		t.Fatal(err)
	}
	if got := change(t, again, "Namespace "+legacy).Cascade.Total; got != 5 {
		t.Errorf("namespace takes down %d objects after one more, want 5", got)
	}
	if again.Hash() != p.Hash() {
		t.Error("an object more in a namespace to delete made the plan stale")
	}
	// Planning deleted nothing.
	kubectl(t, "", "get", "namespace", legacy)
	kubectl(t, "", "get", "customresourcedefinition", "gizmos."+group)
}

func hasNote(p *plan.Plan, prefix string) bool {
	for _, n := range p.Notes {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}
