package planner_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/internal/kubetest"
	"github.com/kubeplan/kubeplan/internal/testtree"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/planner"
	"github.com/kubeplan/kubeplan/render"
	"github.com/kubeplan/kubeplan/report"
)

var testCluster *kubetest.Cluster

func TestMain(m *testing.M) { os.Exit(kubetest.RunWithCluster(m, "test", &testCluster)) }

func connect(t *testing.T) *cluster.Client {
	t.Helper()
	c, err := testCluster.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// kubectl runs kubectl against the test cluster, failing the test on error.
func kubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := testCluster.Kubectl(context.Background(), stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// namespace creates a fresh namespace for one test, named after it; the suffix keeps runs
// apart (go test -count=2).
func namespace(t *testing.T) string {
	t.Helper()
	ns := strings.ToLower(strings.NewReplacer("/", "-", "_", "-", ",", "-").Replace(t.Name()))
	if len(ns) > 50 {
		ns = ns[:50]
	}
	ns = fmt.Sprintf("%s-%06d", strings.Trim(ns, "-"), rand.IntN(1_000_000))
	kubectl(t, "", "create", "namespace", ns)
	return ns
}

// planFiles renders a project laid out from files and plans it against the test cluster.
func planFiles(t *testing.T, project, ns string, files map[string]string) *plan.Plan {
	t.Helper()
	p, err := tryPlan(t, project, ns, files)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

func tryPlan(t *testing.T, project, ns string, files map[string]string) (*plan.Plan, error) {
	t.Helper()
	inProject := map[string]string{}
	for name, content := range files {
		inProject["project/"+name] = content
	}
	root := testtree.Write(t, inProject)
	res, err := render.Render(context.Background(), root, "project", render.Options{Namespace: ns})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return planner.New(planner.Options{}).Plan(context.Background(), connect(t), planner.Request{
		Project: project, Objects: res.Objects, Notes: res.Notes, Renderer: string(res.Renderer), Namespace: ns,
	})
}

// change finds the planned change for "Kind namespace/name" (or "Kind name").
func change(t *testing.T, p *plan.Plan, ref string) plan.Change {
	t.Helper()
	for _, ch := range p.Changes {
		if ch.Object.String() == ref {
			return ch
		}
	}
	var have []string
	for _, ch := range p.Changes {
		have = append(have, ch.Object.String())
	}
	t.Fatalf("no change for %s; plan has %v", ref, have)
	return plan.Change{}
}

func expectAction(t *testing.T, p *plan.Plan, ref string, want plan.Action) plan.Change {
	t.Helper()
	ch := change(t, p, ref)
	if ch.Action != want {
		t.Fatalf("%s: action %s, want %s (reason %q)\n%s", ref, ch.Action, want, ch.Reason, ch.Diff)
	}
	return ch
}

func deploymentYAML(name, image string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %s
spec:
  replicas: 2
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec: {containers: [{name: app, image: %q}]}
`, name, name, name, image)
}

func configMapYAML(name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\ndata: {value: %q}\n", name, value)
}

func TestPlanCreatesUpdatesKeepsAndPrunesOnlyItsOwnInventory(t *testing.T) {
	ns := namespace(t)
	// The project as applied before, recorded in its ApplySet the way kubectl records one.
	applied := deploymentYAML("web", "nginx:1.27") + "---\n" + configMapYAML("settings", "a") + "---\n" + configMapYAML("retired", "old") +
		"---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}], selector: {app: web}}\n"
	kubectl(t, applied, "apply", "--server-side", "--field-manager=kubeplan", "--prune", "--applyset=configmap/kubeplan-shop", "-n", ns, "-f", "-")
	// Somebody else's object in the same namespace, never applied by kubeplan.
	kubectl(t, configMapYAML("not-ours", "x"), "apply", "--server-side", "-n", ns, "-f", "-")

	p := planFiles(t, "shop", ns, map[string]string{
		"deploy.yaml":   deploymentYAML("web", "nginx:1.28"),
		"settings.yaml": configMapYAML("settings", "a"),
		"new.yaml":      configMapYAML("feature-flags", "on"),
		"svc.yaml":      "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}], selector: {app: web}}\n",
	})

	if got, want := p.Summary(), "test / shop — 1 to create, 1 to change, 1 to delete"; got != want {
		t.Fatalf("summary %q, want %q", got, want)
	}
	upd := expectAction(t, p, "Deployment "+ns+"/web", plan.Update)
	if !strings.Contains(upd.Diff, "-      - image: nginx:1.27\n+      - image: nginx:1.28\n") {
		t.Errorf("deployment diff does not show the image bump:\n%s", upd.Diff)
	}
	for _, noise := range []string{"managedFields", "resourceVersion", "uid:", "creationTimestamp", "generation:", "status:"} {
		if strings.Contains(upd.Diff, noise) {
			t.Errorf("diff shows server-owned %s:\n%s", noise, upd.Diff)
		}
	}
	expectAction(t, p, "ConfigMap "+ns+"/settings", plan.Unchanged)
	expectAction(t, p, "Service "+ns+"/web", plan.Unchanged)
	created := expectAction(t, p, "ConfigMap "+ns+"/feature-flags", plan.Create)
	if !strings.Contains(created.Diff, "+  value: \"on\"") || !strings.Contains(created.Diff, "applyset.kubernetes.io/part-of") {
		t.Errorf("create diff:\n%s", created.Diff)
	}
	del := expectAction(t, p, "ConfigMap "+ns+"/retired", plan.Delete)
	if !strings.Contains(del.Diff, "-  value: old") {
		t.Errorf("delete diff:\n%s", del.Diff)
	}
	for _, ch := range p.Changes {
		if ch.Object.Name == "not-ours" || ch.Object.Name == "kubeplan-shop" {
			t.Errorf("plan touches %s, which is not in the project's inventory", ch.Object)
		}
	}
	if p.Hash() != planFiles(t, "shop", ns, map[string]string{
		"deploy.yaml": deploymentYAML("web", "nginx:1.28"), "settings.yaml": configMapYAML("settings", "a"),
		"new.yaml": configMapYAML("feature-flags", "on"), "svc.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}], selector: {app: web}}\n",
	}).Hash() {
		t.Error("the same inputs against the same live state gave a different plan hash")
	}
	// Someone edits a field the plan changes: the plan that was reviewed is no longer the plan.
	kubectl(t, "", "-n", ns, "set", "image", "deployment/web", "app=nginx:1.26")
	again := planFiles(t, "shop", ns, map[string]string{
		"deploy.yaml": deploymentYAML("web", "nginx:1.28"), "settings.yaml": configMapYAML("settings", "a"),
		"new.yaml": configMapYAML("feature-flags", "on"), "svc.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}], selector: {app: web}}\n",
	})
	if again.Hash() == p.Hash() {
		t.Error("a live edit did not change the plan hash")
	}
}

func TestFirstPlanOfAProjectDeletesNothing(t *testing.T) {
	ns := namespace(t)
	kubectl(t, configMapYAML("existing", "x"), "apply", "--server-side", "-n", ns, "-f", "-")
	p := planFiles(t, "fresh", ns, map[string]string{"a.yaml": configMapYAML("a", "1")})
	if c := p.Counts(); c.Delete != 0 || c.Create != 1 {
		t.Fatalf("counts %+v", c)
	}
}

func TestObjectsInANamespaceThePlanCreates(t *testing.T) {
	p := planFiles(t, "newns", "default", map[string]string{
		"ns.yaml":     "apiVersion: v1\nkind: Namespace\nmetadata: {name: brand-new}\n",
		"deploy.yaml": strings.Replace(deploymentYAML("api", "api:1"), "name: api\n", "name: api\n  namespace: brand-new\n", 1),
	})
	expectAction(t, p, "Namespace brand-new", plan.Create)
	ch := expectAction(t, p, "Deployment brand-new/api", plan.Create)
	if ch.Reason != "namespace brand-new new in this plan, validated at apply" {
		t.Errorf("reason %q", ch.Reason)
	}
	if p.Changes[0].Object.Kind != "Namespace" {
		t.Errorf("namespaces are not listed first: %v", p.Changes[0].Object)
	}
}

func TestMissingNamespaceNotCreatedByThePlanFails(t *testing.T) {
	p := planFiles(t, "nons", "nowhere", map[string]string{"a.yaml": configMapYAML("a", "1")})
	ch := expectAction(t, p, "ConfigMap nowhere/a", plan.Fail)
	if !strings.Contains(ch.Reason, `namespaces "nowhere" not found`) {
		t.Errorf("reason %q", ch.Reason)
	}
}

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  names: {kind: Gadget, plural: gadgets, singular: gadget}
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

func TestCustomResourceWhoseCRDThePlanCreates(t *testing.T) {
	ns := namespace(t)
	files := map[string]string{
		"crd.yaml":    widgetCRD,
		"gadget.yaml": "apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g1}\nspec: {size: 3}\n",
	}
	p := planFiles(t, "gadgets", ns, files)
	expectAction(t, p, "CustomResourceDefinition gadgets.example.com", plan.Create)
	ch := expectAction(t, p, "Gadget "+ns+"/g1", plan.Create)
	if ch.Reason != "CRD new in this plan, validated at apply" || !strings.Contains(ch.Diff, "+  size: 3") {
		t.Errorf("reason %q diff:\n%s", ch.Reason, ch.Diff)
	}
	if c := p.Counts(); c.Fail != 0 {
		t.Errorf("plan has failures: %+v", p.Changes)
	}
}

func TestUnknownKindFailsThatObjectOnly(t *testing.T) {
	ns := namespace(t)
	p := planFiles(t, "unknown", ns, map[string]string{
		"x.yaml": "apiVersion: nothing.example.com/v1\nkind: Phantom\nmetadata: {name: p}\n",
		"a.yaml": configMapYAML("a", "1"),
	})
	// The cluster cannot say whether an unknown kind is namespaced: it keeps what was written.
	ch := expectAction(t, p, "Phantom p", plan.Fail)
	if !strings.Contains(ch.Reason, "unknown kind Phantom in nothing.example.com/v1") {
		t.Errorf("reason %q", ch.Reason)
	}
	expectAction(t, p, "ConfigMap "+ns+"/a", plan.Create)
}

func TestImmutableFieldChangeWillFail(t *testing.T) {
	ns := namespace(t)
	kubectl(t, deploymentYAML("web", "nginx:1"), "apply", "--server-side", "--field-manager=kubeplan", "-n", ns, "-f", "-")
	changed := strings.ReplaceAll(deploymentYAML("web", "nginx:1"), "{app: web}", "{app: web, tier: front}")
	p := planFiles(t, "immutable", ns, map[string]string{"deploy.yaml": changed})
	ch := expectAction(t, p, "Deployment "+ns+"/web", plan.Fail)
	if !strings.HasPrefix(ch.Reason, "will fail: ") || !strings.Contains(ch.Reason, "field is immutable") {
		t.Errorf("reason %q", ch.Reason)
	}
}

func TestAdmissionRejectionShownPerObject(t *testing.T) {
	ns := namespace(t)
	kubectl(t, `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-latest-`+ns+`}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}]
  validations:
  - expression: "object.spec.template.spec.containers.all(c, !c.image.endsWith(':latest'))"
    message: "images must be pinned, not :latest"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-latest-`+ns+`}
spec:
  policyName: no-latest-`+ns+`
  validationActions: [Deny]
  matchResources: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: `+ns+`}}}
`, "apply", "--server-side", "-f", "-")
	// The policy takes effect asynchronously; plan until it does.
	var p *plan.Plan
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		p = planFiles(t, "admission", ns, map[string]string{"deploy.yaml": deploymentYAML("web", "nginx:latest"), "ok.yaml": deploymentYAML("ok", "nginx:1.28")})
		if change(t, p, "Deployment "+ns+"/web").Action == plan.Fail {
			break
		}
	}
	ch := expectAction(t, p, "Deployment "+ns+"/web", plan.Fail)
	if !strings.Contains(ch.Reason, "images must be pinned, not :latest") {
		t.Errorf("reason %q", ch.Reason)
	}
	expectAction(t, p, "Deployment "+ns+"/ok", plan.Create)
}

func TestTakeoverOfFieldsOwnedByAnotherManager(t *testing.T) {
	ns := namespace(t)
	kubectl(t, deploymentYAML("web", "nginx:1"), "apply", "--server-side", "--field-manager=kubeplan", "-n", ns, "-f", "-")
	// An autoscaler owns replicas now.
	kubectl(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 7}\n", "apply", "--server-side", "--force-conflicts", "--field-manager=hpa-controller", "-n", ns, "-f", "-")

	p := planFiles(t, "takeover", ns, map[string]string{"deploy.yaml": deploymentYAML("web", "nginx:1")})
	ch := expectAction(t, p, "Deployment "+ns+"/web", plan.Update)
	if strings.Join(ch.Warnings, "\n") != `takes over .spec.replicas from field manager "hpa-controller"` || !ch.Conflicts {
		t.Errorf("warnings %q, conflicts %v", ch.Warnings, ch.Conflicts)
	}
	if !strings.Contains(ch.Diff, "-  replicas: 7\n+  replicas: 2\n") {
		t.Errorf("diff:\n%s", ch.Diff)
	}
}

func TestClusterScopedObjectsIgnoreTheDefaultNamespace(t *testing.T) {
	ns := namespace(t)
	p := planFiles(t, "rbac", ns, map[string]string{
		"role.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: " + ns + "-reader, namespace: ignored}\nrules: [{apiGroups: [''], resources: [pods], verbs: [get]}]\n",
	})
	expectAction(t, p, "ClusterRole "+ns+"-reader", plan.Create)
}

func TestObjectDefinedTwiceIsAnError(t *testing.T) {
	ns := namespace(t)
	_, err := tryPlan(t, "dup", ns, map[string]string{"a.yaml": configMapYAML("same", "1"), "b.yaml": configMapYAML("same", "2")})
	if err == nil || !strings.Contains(err.Error(), "ConfigMap "+ns+"/same is defined twice: in project/a.yaml and in project/b.yaml") {
		t.Fatalf("got %v", err)
	}
}

func TestSecretValuesNeverAppearInAnyOutput(t *testing.T) {
	ns := namespace(t)
	const oldValue, newValue, keptValue, addedValue = "0ld-s3cret-value", "n3w-s3cret-value", "k3pt-s3cret-value", "4dded-s3cret-value"
	kubectl(t, fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: %s, user: %s}\n", oldValue, keptValue),
		"apply", "--server-side", "--field-manager=kubeplan", "-n", ns, "-f", "-")
	// Also client-side apply, which copies values into the last-applied annotation.
	kubectl(t, fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: legacy}\nstringData: {token: %s}\n", oldValue), "apply", "-n", ns, "-f", "-")

	p := planFiles(t, "secrets", ns, map[string]string{
		"db.yaml":     fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: %s, user: %s, api-key: %s}\n", newValue, keptValue, addedValue),
		"new.yaml":    fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: fresh}\ndata: {token: %s}\n", b64(newValue)),
		"legacy.yaml": fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: legacy}\nstringData: {token: %s}\n", newValue),
	})
	db := expectAction(t, p, "Secret "+ns+"/db", plan.Update)
	// Values are never compared with the live ones: every key the change sets is listed,
	// the kept one too (TestGuessingASecretValueLearnsNothing says why).
	if got := strings.Join(db.SecretKeys, ","); got != "api-key,password,user" {
		t.Errorf("secret keys %q, want api-key,password,user", got)
	}
	if !strings.Contains(db.Diff, "\n-  password: (hidden)\n") || !strings.Contains(db.Diff, "\n+  password: (hidden, set by this change)\n") ||
		!strings.Contains(db.Diff, "\n+  api-key: (hidden, set by this change)\n") {
		t.Errorf("secret diff does not say which keys the change sets:\n%s", db.Diff)
	}
	expectAction(t, p, "Secret "+ns+"/fresh", plan.Create)
	legacy := expectAction(t, p, "Secret "+ns+"/legacy", plan.Update)
	if !legacy.Conflicts || !strings.Contains(strings.Join(legacy.Warnings, "\n"), `may take over .data.token from field manager "kubectl-client-side-apply"`) {
		t.Errorf("legacy Secret: conflicts %v, warnings %q", legacy.Conflicts, legacy.Warnings)
	}

	files := map[string]string{
		"db.yaml":     fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: %s, user: %s, api-key: %s}\n", newValue, keptValue, addedValue),
		"new.yaml":    fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: fresh}\ndata: {token: %s}\n", b64(newValue)),
		"legacy.yaml": fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: legacy}\nstringData: {token: %s}\n", newValue),
	}
	if planFiles(t, "secrets", ns, files).Hash() != p.Hash() {
		t.Error("the same Secrets against the same live state gave a different plan hash")
	}
	// Someone rotates the password by hand after the plan was reviewed. The diff reads the
	// same (the password is still set, values hidden), but it is not the plan that was
	// reviewed: the hash must move, so that /apply re-plans instead of undoing the rotation.
	kubectl(t, "", "-n", ns, "patch", "secret", "db", "--type=merge", "-p", `{"stringData":{"password":"r0tated-by-hand"}}`)
	rotated := planFiles(t, "secrets", ns, files)
	if got := expectAction(t, rotated, "Secret "+ns+"/db", plan.Update); got.Diff != db.Diff {
		t.Errorf("the diff changed with a hidden value:\n%s\nwas\n%s", got.Diff, db.Diff)
	}
	if rotated.Hash() == p.Hash() {
		t.Error("a Secret value changed live after planning left the plan hash as it was")
	}

	var outputs bytes.Buffer
	if err := report.Text(&outputs, p, report.TextOptions{ShowUnchanged: true}); err != nil {
		t.Fatal(err)
	}
	if err := report.Markdown(&outputs, p); err != nil {
		t.Fatal(err)
	}
	if err := report.JSON(&outputs, p); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{oldValue, newValue, keptValue, addedValue} {
		for _, enc := range []string{v, b64(v), b64(v)[:12]} {
			if strings.Contains(outputs.String(), enc) {
				t.Fatalf("secret value %q appears in the output:\n%s", enc, outputs.String())
			}
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestUnreachableAPIServerIsOneClearError(t *testing.T) {
	cfg := *testCluster.Config
	cfg.Host = "https://127.0.0.1:1" // nothing listens on port 1
	_, err := cluster.ConnectConfig(context.Background(), "gone", &cfg, cluster.DefaultTuning())
	if err == nil {
		t.Fatal("connected to nothing")
	}
	if got, want := err.Error(), "cluster gone: apiserver https://127.0.0.1:1 is unreachable: connection refused"; got != want {
		t.Fatalf("error %q, want %q", got, want)
	}
}

func TestManyObjectsArePlannedInParallelWithListReads(t *testing.T) {
	ns := namespace(t)
	files := map[string]string{}
	var applied strings.Builder
	for i := 0; i < 60; i++ {
		files[fmt.Sprintf("cm-%02d.yaml", i)] = configMapYAML(fmt.Sprintf("cm-%02d", i), fmt.Sprint(i%3))
		if i%2 == 0 {
			applied.WriteString("---\n" + configMapYAML(fmt.Sprintf("cm-%02d", i), "0"))
		}
	}
	kubectl(t, applied.String(), "apply", "--server-side", "--field-manager=kubeplan", "--applyset=configmap/kubeplan-many", "--prune", "-n", ns, "-f", "-")
	p := planFiles(t, "many", ns, files)
	c := p.Counts()
	// 30 new; of the 30 existing, those with i%3 == 0 are unchanged (i = 0, 6, 12…: 10 of them).
	if c.Create != 30 || c.Update != 20 || c.Unchanged != 10 || c.Delete != 0 {
		t.Fatalf("counts %+v", c)
	}
}

func TestInspectSeesEveryChangeWithItsObjects(t *testing.T) {
	ns := namespace(t)
	kubectl(t, configMapYAML("kept", "old")+"---\n"+configMapYAML("gone", "x"), "apply", "--server-side", "--field-manager=kubeplan",
		"--prune", "--applyset=configmap/kubeplan-inspect", "-n", ns, "-f", "-")
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "p"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "p", "all.yaml"), []byte(configMapYAML("kept", "new")+"---\n"+configMapYAML("fresh", "1")), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := render.Render(context.Background(), root, "p", render.Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]string{}
	p, err := planner.New(planner.Options{}).Plan(context.Background(), connect(t), planner.Request{
		Project: "inspect", Objects: res.Objects, Namespace: ns,
		Inspect: func(ch *plan.Change, planned, live *unstructured.Unstructured) {
			value := func(u *unstructured.Unstructured) string {
				if u == nil {
					return "nil"
				}
				v, _, _ := unstructured.NestedString(u.Object, "data", "value")
				return v
			}
			mu.Lock()
			defer mu.Unlock()
			seen[ch.Object.Name] = fmt.Sprintf("%s planned=%s live=%s", ch.Action, value(planned), value(live))
			ch.Findings = append(ch.Findings, plan.Finding{Rule: "seen", Severity: plan.Warn, Message: "inspected"})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"kept":  "update planned=new live=old",
		"fresh": "create planned=1 live=nil",
		"gone":  "delete planned=nil live=x",
	}
	for name, w := range want {
		if seen[name] != w {
			t.Errorf("%s: inspected as %q, want %q", name, seen[name], w)
		}
	}
	for _, ch := range p.Changes {
		if len(ch.Findings) != 1 {
			t.Errorf("%s: findings added by Inspect not kept: %+v", ch.Object, ch.Findings)
		}
	}
}

// A Kustomize overlay planned against a live cluster: the renderer most projects use for
// environments. (Its objects once held Go ints, and planning them panicked.)
func TestKustomizeOverlayIsPlanned(t *testing.T) {
	ns := namespace(t)
	deploy := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 1\n  progressDeadlineSeconds: 1000000\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: app, image: nginx, ports: [{containerPort: 80}]}]}\n"
	p := planFiles(t, "web", ns, map[string]string{
		"base/deploy.yaml":        deploy,
		"base/kustomization.yaml": "resources: [deploy.yaml]\n",
		"kustomization.yaml":      "resources: [base]\nreplicas: [{name: web, count: 5}]\ncommonLabels: {env: prod}\n",
	})
	if p.Renderer != string(render.Kustomize) {
		t.Fatalf("rendered with %s, want kustomize", p.Renderer)
	}
	web := expectAction(t, p, "Deployment "+ns+"/web", plan.Create)
	for _, want := range []string{"+  replicas: 5\n", "+  progressDeadlineSeconds: 1000000\n", "+    env: prod\n", "+        - containerPort: 80\n"} {
		if !strings.Contains(web.Diff, want) {
			t.Errorf("create diff lacks %q:\n%s", want, web.Diff)
		}
	}
}

// A Helm chart with a values file planned against a live cluster, like `helm template` with a
// release name and namespace.
func TestHelmChartIsPlanned(t *testing.T) {
	ns := namespace(t)
	root := testtree.Write(t, map[string]string{
		"chart/Chart.yaml":            "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"chart/values.yaml":           "replicas: 1\nimage: nginx:1.27\n",
		"chart/values-prod.yaml":      "replicas: 4\n",
		"chart/templates/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: {{ .Release.Name }}, namespace: {{ .Release.Namespace }}}\nspec:\n  replicas: {{ .Values.replicas }}\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: app, image: {{ .Values.image | quote }}}]}\n",
	})
	res, err := render.Render(context.Background(), root, "chart", render.Options{Namespace: ns, HelmRelease: "shop", ValuesFiles: []string{"values-prod.yaml"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := planner.New(planner.Options{}).Plan(context.Background(), connect(t), planner.Request{Project: "shop", Objects: res.Objects, Renderer: string(res.Renderer), Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	shop := expectAction(t, p, "Deployment "+ns+"/shop", plan.Create)
	for _, want := range []string{"+  replicas: 4\n", "+      - image: nginx:1.27\n"} {
		if !strings.Contains(shop.Diff, want) {
			t.Errorf("create diff lacks %q:\n%s", want, shop.Diff)
		}
	}
}
