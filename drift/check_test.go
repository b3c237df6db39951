package drift_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubeplan/kubeplan/applier"
	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/drift"
	"github.com/kubeplan/kubeplan/internal/kubetest"
	"github.com/kubeplan/kubeplan/manifest"
	"github.com/kubeplan/kubeplan/planner"
)

var testCluster *kubetest.Cluster

func TestMain(m *testing.M) { os.Exit(kubetest.RunWithCluster(m, "test", &testCluster)) }

var seq atomic.Int64

// namespace creates a namespace of its own for one run of one test (-count=2 shares a cluster).
func namespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.Add(1))
	if _, err := testCluster.Kubectl(context.Background(), "", "create", "namespace", ns); err != nil {
		t.Fatal(err)
	}
	return ns
}

func connect(t *testing.T) *cluster.Client {
	t.Helper()
	c, err := testCluster.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// objects parses fixtures afresh: planner and applier default namespaces in place.
func objects(t *testing.T, docs string) []manifest.Object {
	t.Helper()
	us, err := kubetest.Objects(docs)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]manifest.Object, len(us))
	for i, u := range us {
		out[i] = manifest.Object{Unstructured: u, Source: fmt.Sprintf("app.yaml#%d", i+1)}
	}
	return out
}

// apply applies docs as kubeplan does after a merge (field manager kubeplan, inventory, prune).
func apply(t *testing.T, ns, docs string) {
	t.Helper()
	r, err := applier.New(applier.Options{}).Apply(context.Background(), connect(t), applier.Request{Project: "shop", Namespace: ns, Prune: true, Objects: objects(t, docs)})
	if err != nil || r.Failed() {
		t.Fatalf("apply: %v %+v", err, r)
	}
}

func check(t *testing.T, ns, docs string, s drift.Settings) *drift.Report {
	t.Helper()
	r, err := drift.Check(context.Background(), planner.New(planner.Options{}), connect(t),
		planner.Request{Project: "shop", Namespace: ns, Objects: objects(t, docs), CompareSecretValues: true}, s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var (
	deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	configmaps  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	secrets     = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
)

// edit changes a live object with an Update as field manager, as kubectl edit or a controller
// would; subresource is "" or e.g. "scale".
func edit(t *testing.T, gvr schema.GroupVersionResource, ns, name, manager, subresource string, change func(u *unstructured.Unstructured)) {
	t.Helper()
	ctx := context.Background()
	var sub []string
	if subresource != "" {
		sub = []string{subresource}
	}
	res := connect(t).Dynamic.Resource(gvr).Namespace(ns)
	u, err := res.Get(ctx, name, metav1.GetOptions{}, sub...)
	if err != nil {
		t.Fatal(err)
	}
	change(u)
	if _, err := res.Update(ctx, u, metav1.UpdateOptions{FieldManager: manager}, sub...); err != nil {
		t.Fatal(err)
	}
}

func deployment(name string, replicas int, annotations string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %s, annotations: {%s}}
spec:
  replicas: %d
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
`, name, annotations, replicas, name, name)
}

const settingsCM = `apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {color: blue, size: large}
`

// object finds an object in the report.
func object(t *testing.T, r *drift.Report, kind, name string) drift.Object {
	t.Helper()
	for _, o := range r.Objects {
		if o.Object.Kind == kind && o.Object.Name == name {
			return o
		}
	}
	t.Fatalf("%s %s not in the report: %+v", kind, name, r.Objects)
	return drift.Object{}
}

func text(t *testing.T, r *drift.Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := drift.Text(&b, r, drift.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A field changed by hand with another field manager is drift, named with that manager; a
// field removed by hand is drift with no author; what nobody touched is not reported.
func TestFieldChangedByHandNamesItsManager(t *testing.T) {
	ns := namespace(t, "edited")
	docs := deployment("web", 2, "") + "---\n" + settingsCM
	apply(t, ns, docs)
	if r := check(t, ns, docs, drift.Settings{}); r.Drifted() || len(r.Objects) != 0 || r.Signature() != "" || r.Checked != 2 {
		t.Fatalf("right after apply: %s", text(t, r))
	}

	edit(t, deployments, ns, "web", "kubectl-edit", "", func(u *unstructured.Unstructured) {
		_ = unstructured.SetNestedField(u.Object, int64(5), "spec", "replicas")
	})
	edit(t, configmaps, ns, "settings", "kubectl-edit", "", func(u *unstructured.Unstructured) {
		unstructured.RemoveNestedField(u.Object, "data", "size")
	})
	r := check(t, ns, docs, drift.Settings{})
	if !r.Drifted() || r.Counts() != (drift.Counts{Changed: 2}) {
		t.Fatalf("counts %+v:\n%s", r.Counts(), text(t, r))
	}
	web := object(t, r, "Deployment", "web")
	if len(web.Fields) != 1 || web.Fields[0].Path != ".spec.replicas" || web.Fields[0].Cause != drift.Taken ||
		len(web.Fields[0].Owners) != 1 || web.Fields[0].Owners[0].Manager != "kubectl-edit" || web.Fields[0].Owners[0].Operation != "Update" ||
		web.Fields[0].Owners[0].Time == nil || web.Mode != drift.Notify || !web.Counted() {
		t.Fatalf("deployment: %+v", web)
	}
	if !strings.Contains(web.Diff, "-  replicas: 5") || !strings.Contains(web.Diff, "+  replicas: 2") {
		t.Errorf("deployment diff:\n%s", web.Diff)
	}
	cm := object(t, r, "ConfigMap", "settings")
	if len(cm.Fields) != 1 || cm.Fields[0].Path != ".data.size" || cm.Fields[0].Cause != drift.Removed {
		t.Fatalf("configmap: %+v", cm)
	}
	out := text(t, r)
	if !strings.Contains(out, `      .spec.replicas changed by "kubectl-edit" (Update) at `) ||
		!strings.Contains(out, "      .data.size removed from the live object (managedFields do not record by whom)") {
		t.Fatalf("text:\n%s", out)
	}

	// Seen again, the same drift has the same signature; one more drifted field changes it.
	again := check(t, ns, docs, drift.Settings{})
	if again.Signature() != r.Signature() || r.Signature() == "" {
		t.Fatalf("signature moved without new drift: %s then %s", r.Signature(), again.Signature())
	}
	edit(t, deployments, ns, "web", "kubectl-set-image", "", func(u *unstructured.Unstructured) {
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		containers[0].(map[string]any)["image"] = "nginx:1.28"
		_ = unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers")
	})
	more := check(t, ns, docs, drift.Settings{})
	if more.Signature() == r.Signature() {
		t.Fatal("a new drifted field left the signature as it was")
	}
	web = object(t, more, "Deployment", "web")
	if len(web.Fields) != 2 || web.Fields[0].Path != ".spec.replicas" ||
		web.Fields[1].Path != `.spec.template.spec.containers[name="web"].image` || web.Fields[1].Owners[0].Manager != "kubectl-set-image" {
		t.Fatalf("deployment after the image change: %+v", web.Fields)
	}
}

// An object deleted out of band is missing; an object git no longer has but the cluster
// still does is extra.
func TestDeletedAndLeftOverObjects(t *testing.T) {
	ns := namespace(t, "deleted")
	docs := deployment("web", 1, "") + "---\n" + settingsCM
	apply(t, ns, docs)
	if err := connect(t).Dynamic.Resource(configmaps).Namespace(ns).Delete(context.Background(), "settings", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	r := check(t, ns, docs, drift.Settings{})
	if r.Counts() != (drift.Counts{Missing: 1}) || object(t, r, "ConfigMap", "settings").State != drift.Missing {
		t.Fatalf("after the delete:\n%s", text(t, r))
	}
	if out := text(t, r); !strings.Contains(out, "  + missing  ConfigMap "+ns+"/settings — not in the cluster (deleted out of band, or never applied)\n") {
		t.Fatalf("text:\n%s", out)
	}

	apply(t, ns, docs)
	r = check(t, ns, settingsCM, drift.Settings{})
	if r.Counts() != (drift.Counts{Extra: 1}) || object(t, r, "Deployment", "web").State != drift.Extra {
		t.Fatalf("with the Deployment gone from git:\n%s", text(t, r))
	}
}

// A HorizontalPodAutoscaler's replicas (kube-controller-manager through the scale
// subresource) are shown as owned by design and not counted, unless the project turns the
// default rules off; the same field scaled by a person is drift.
func TestHPAReplicasAreNotDrift(t *testing.T) {
	ns := namespace(t, "hpa")
	docs := deployment("web", 2, "")
	apply(t, ns, docs)
	scale := func(manager string, replicas int64) {
		edit(t, deployments, ns, "web", manager, "scale", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, replicas, "spec", "replicas")
		})
	}
	scale("kube-controller-manager", 4)
	r := check(t, ns, docs, drift.Settings{})
	if r.Drifted() || r.Counts() != (drift.Counts{ByDesign: 1}) || r.Signature() != "" {
		t.Fatalf("HPA-scaled replicas count as drift:\n%s", text(t, r))
	}
	f := object(t, r, "Deployment", "web").Fields
	if len(f) != 1 || f[0].Path != ".spec.replicas" || f[0].ByDesign == "" || f[0].Owners[0].Subresource != "scale" || f[0].Owners[0].Manager != "kube-controller-manager" {
		t.Fatalf("fields: %+v", f)
	}
	if out := text(t, r); !strings.Contains(out, "owned by design, not counted") || !strings.Contains(out, "not counted: a HorizontalPodAutoscaler scales it") {
		t.Fatalf("text:\n%s", out)
	}
	if r := check(t, ns, docs, drift.Settings{NoDefaults: true}); !r.Drifted() {
		t.Fatalf("with the default rules off, the HPA's replicas are drift:\n%s", text(t, r))
	}

	scale("kubectl", 3)
	r = check(t, ns, docs, drift.Settings{})
	if !r.Drifted() {
		t.Fatalf("replicas scaled by hand are not drift:\n%s", text(t, r))
	}
	// The apiserver records no time for writes through the scale subresource.
	if out := text(t, r); !strings.Contains(out, `.spec.replicas changed by "kubectl" (Update, subresource scale)`+"\n") {
		t.Fatalf("text:\n%s", out)
	}
	// A project rule covers it too.
	rule := drift.Rule{Kinds: []string{"Deployment"}, Path: ".spec.replicas", Manager: "kube*"}
	if r := check(t, ns, docs, drift.Settings{Ignore: []drift.Rule{rule}}); r.Drifted() {
		t.Fatalf("a project rule for the field leaves it counted:\n%s", text(t, r))
	}
}

// The annotation sets each object's mode: ignore silences the object, revert is recorded;
// the project's default mode applies to the rest.
func TestModes(t *testing.T) {
	ns := namespace(t, "modes")
	docs := deployment("quiet", 1, drift.Annotation+": ignore") + "---\n" +
		deployment("strict", 1, drift.Annotation+": revert") + "---\n" +
		deployment("plain", 1, "")
	apply(t, ns, docs)
	for _, name := range []string{"quiet", "strict", "plain"} {
		edit(t, deployments, ns, name, "kubectl-edit", "", func(u *unstructured.Unstructured) {
			_ = unstructured.SetNestedField(u.Object, int64(3), "spec", "replicas")
		})
	}
	r := check(t, ns, docs, drift.Settings{})
	if r.Counts() != (drift.Counts{Changed: 2}) || len(r.Ignored) != 1 || r.Ignored[0].Name != "quiet" {
		t.Fatalf("report:\n%s", text(t, r))
	}
	if m := object(t, r, "Deployment", "strict").Mode; m != drift.Revert {
		t.Errorf("strict: mode %s", m)
	}
	if out := text(t, r); !strings.Contains(out, "mode revert: reverted by kubeplan serve's scheduled check where the server allows it; kubeplan drift only reports") ||
		!strings.Contains(out, "  = ignored  Deployment "+ns+"/quiet — not reported (kubeplan.dev/drift: ignore)") {
		t.Fatalf("text:\n%s", out)
	}
	// The project's mode applies to objects without the annotation.
	r = check(t, ns, docs, drift.Settings{Mode: drift.Ignore})
	if r.Counts() != (drift.Counts{Changed: 1}) || len(r.Ignored) != 2 || object(t, r, "Deployment", "strict").Mode != drift.Revert {
		t.Fatalf("project mode ignore:\n%s", text(t, r))
	}
}

// A mode the annotation misspells fails the check before the cluster is asked anything.
func TestBadAnnotationFailsFirst(t *testing.T) {
	_, err := drift.Check(context.Background(), planner.New(planner.Options{}), nil,
		planner.Request{Project: "shop", Objects: objects(t, deployment("web", 1, drift.Annotation+": loud"))}, drift.Settings{})
	if err == nil || !strings.Contains(err.Error(), `Deployment web (from app.yaml#1): annotation kubeplan.dev/drift: "loud" is not a drift mode`) {
		t.Fatalf("error: %v", err)
	}
}

// A Secret changed by hand is reported by key and manager; its values appear nowhere.
func TestSecretDriftShowsNoValues(t *testing.T) {
	ns := namespace(t, "secret")
	docs := "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: git-value-not-shown}\n"
	apply(t, ns, docs)
	edit(t, secrets, ns, "db", "kubectl-edit", "", func(u *unstructured.Unstructured) {
		_ = unstructured.SetNestedField(u.Object, "aGFuZC12YWx1ZS1ub3Qtc2hvd24=", "data", "password") // hand-value-not-shown
	})
	r := check(t, ns, docs, drift.Settings{})
	db := object(t, r, "Secret", "db")
	if len(db.Fields) != 1 || db.Fields[0].Path != ".data.password" || db.Fields[0].Owners[0].Manager != "kubectl-edit" {
		t.Fatalf("secret: %+v", db)
	}
	var all bytes.Buffer
	all.WriteString(text(t, r))
	if err := drift.Markdown(&all, r); err != nil {
		t.Fatal(err)
	}
	if err := drift.JSON(&all, r); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"git-value-not-shown", "hand-value-not-shown", "aGFuZC12YWx1ZS1ub3Qtc2hvd24", "Z2l0LXZhbHVlLW5vdC1zaG93bg"} {
		if strings.Contains(all.String(), v) {
			t.Fatalf("a Secret value (%s) appears in the report:\n%s", v, all.String())
		}
	}
}

// Git changed since kubeplan last applied (a merge not rolled out yet): the object differs,
// and no other field manager is named for it.
func TestGitAheadOfTheCluster(t *testing.T) {
	ns := namespace(t, "ahead")
	apply(t, ns, settingsCM)
	r := check(t, ns, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: red}\n", drift.Settings{})
	cm := object(t, r, "ConfigMap", "settings")
	if got := fmt.Sprint(cm.Fields); got != "[.data.color changed in git since kubeplan last applied it .data.size changed in git since kubeplan last applied it]" {
		t.Fatalf("fields: %+v", cm.Fields)
	}
}
