package deploy_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/kubeplan/kubeplan/applier"
	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/config"
	"github.com/kubeplan/kubeplan/deploy"
	"github.com/kubeplan/kubeplan/internal/imagebuild"
	"github.com/kubeplan/kubeplan/internal/kubetest"
	"github.com/kubeplan/kubeplan/internal/testtree"
	"github.com/kubeplan/kubeplan/manifest"
	"github.com/kubeplan/kubeplan/outcome"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/planner"
	"github.com/kubeplan/kubeplan/render"
)

var testCluster *kubetest.Cluster

func TestMain(m *testing.M) { os.Exit(kubetest.RunWithCluster(m, "test", &testCluster)) }

// repoRoot is the repository holding the chart (tests run in deploy/).
const repoRoot = ".."

// unique returns prefix-<random>, so that names differ between runs (go test -count=2).
func unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// renderChart renders the chart with values (YAML) in namespace ns, as `helm install -f` would.
func renderChart(t *testing.T, ns, values string) (*render.Result, error) {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, deploy.ChartDir), os.DirFS(filepath.Join(repoRoot, deploy.ChartDir))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "values.yaml"), []byte(values), 0o644); err != nil {
		t.Fatal(err)
	}
	return deploy.RenderChart(context.Background(), root, ns, "v1.37.2", "/values.yaml")
}

func mustRenderChart(t *testing.T, ns, values string) []manifest.Object {
	t.Helper()
	res, err := renderChart(t, ns, values)
	if err != nil {
		t.Fatalf("render chart: %v", err)
	}
	return res.Objects
}

// find returns the rendered object of that kind and name, failing the test if there is none.
func find(t *testing.T, objs []manifest.Object, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o.Unstructured
		}
	}
	t.Fatalf("chart renders no %s %s; it renders %s", kind, name, kinds(objs))
	return nil
}

func kinds(objs []manifest.Object) string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	return strings.Join(out, " ")
}

func field(t *testing.T, u *unstructured.Unstructured, path ...string) any {
	t.Helper()
	v, _, err := unstructured.NestedFieldNoCopy(u.Object, path...)
	if err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), strings.Join(path, "."), err)
	}
	return v
}

func admin(t *testing.T) *cluster.Client {
	t.Helper()
	c, err := testCluster.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func createNamespaces(t *testing.T, names ...string) {
	t.Helper()
	for _, ns := range names {
		if _, err := testCluster.Kubectl(context.Background(), "", "create", "namespace", ns); err != nil {
			t.Fatal(err)
		}
	}
}

// planOK plans objects as project in ns with client c and fails the test on any failed object.
func planOK(t *testing.T, c *cluster.Client, project, ns string, objs []manifest.Object) *plan.Plan {
	t.Helper()
	p, err := planner.New(planner.Options{}).Plan(context.Background(), c, planner.Request{Project: project, Namespace: ns, Objects: objs})
	if err != nil {
		t.Fatalf("plan %s: %v", project, err)
	}
	for _, ch := range p.Changes {
		if ch.Action == plan.Fail {
			t.Errorf("plan %s: %s fails: %s", project, ch.Object, ch.Reason)
		}
	}
	return p
}

func applyObjects(t *testing.T, c *cluster.Client, project, ns string, objs []manifest.Object, prune bool) *outcome.Result {
	t.Helper()
	r, err := applier.New(applier.Options{}).Apply(context.Background(), c, applier.Request{Project: project, Namespace: ns, Objects: objs, Prune: prune})
	if err != nil {
		t.Fatalf("apply %s: %v", project, err)
	}
	return r
}

func TestChartRendersAndPlansCleanlyInEveryShape(t *testing.T) {
	c := admin(t)
	for _, tc := range []struct {
		name   string
		values string
		want   []string // kinds/names the shape must render
		absent []string
	}{
		{name: "defaults", values: `{}`,
			want:   []string{"ServiceAccount/kubeplan", "ConfigMap/kubeplan", "Deployment/kubeplan", "Service/kubeplan", "PersistentVolumeClaim/kubeplan", "NetworkPolicy/kubeplan", "ClusterRole/", "ClusterRoleBinding/"},
			absent: []string{"Ingress/", "PodDisruptionBudget/", "Role/", "RoleBinding/"}},
		{name: "namespaced", values: "rbac: {mode: namespaced, namespaces: [NS-a, NS-b]}\n",
			want:   []string{"Role/kubeplan", "RoleBinding/kubeplan"},
			absent: []string{"ClusterRole/", "ClusterRoleBinding/"}},
		{name: "postgres-replicas", values: `
replicas: 3
state: {postgres: {secretName: kubeplan-db}}
ingress: {enabled: true, host: kubeplan.example.com, tlsSecretName: kubeplan-tls, className: nginx}
clusters:
  - {name: prod-eu, kubeconfigSecret: {name: prod-eu-kubeconfig}, context: admin}
  - {name: in-cluster, inCluster: true}
defaultCluster: in-cluster
config: {repositories: ["acme/*"], github: {appID: 42}}
`,
			want:   []string{"Ingress/kubeplan", "PodDisruptionBudget/kubeplan", "Deployment/kubeplan"},
			absent: []string{"PersistentVolumeClaim/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := unique("kp-" + tc.name)
			values := strings.ReplaceAll(tc.values, "NS-", ns+"-")
			createNamespaces(t, ns, ns+"-a", ns+"-b")
			objs := mustRenderChart(t, ns, values)
			rendered := kinds(objs)
			for _, w := range tc.want {
				if !strings.Contains(" "+rendered, " "+w) {
					t.Errorf("renders %s, want %s among them", rendered, w)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(" "+rendered, " "+a) {
					t.Errorf("renders %s, want no %s", rendered, a)
				}
			}
			p := planOK(t, c, "kubeplan", ns, objs)
			if n := p.Counts().Create; n != len(objs) {
				t.Errorf("plan creates %d objects, want all %d rendered: %s", n, len(objs), p.Summary())
			}
		})
	}
}

func TestChartRefusesSeveralReplicasWithoutPostgres(t *testing.T) {
	_, err := renderChart(t, "kubeplan", "replicas: 2\n")
	if err == nil || !strings.Contains(err.Error(), "replicas: 2 needs a shared PostgreSQL store") || !strings.Contains(err.Error(), "state.postgres.secretName") {
		t.Fatalf("render with replicas 2 and no PostgreSQL: %v, want a refusal saying what to set", err)
	}

	// With the URL from a Secret it renders: rolling updates, no SQLite volume, a PDB.
	objs := mustRenderChart(t, "kubeplan", "replicas: 2\nstate: {postgres: {secretName: kubeplan-db, secretKey: dsn}}\n")
	d := find(t, objs, "Deployment", "kubeplan")
	if got := field(t, d, "spec", "strategy", "type"); got != "RollingUpdate" {
		t.Errorf("strategy %v, want RollingUpdate with a shared store", got)
	}
	ctr := field(t, d, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
	var ref any
	for _, e := range ctr["env"].([]any) {
		if e := e.(map[string]any); e["name"] == "KUBEPLAN_STATE" {
			ref = e["valueFrom"]
		}
	}
	if want := map[string]any{"secretKeyRef": map[string]any{"name": "kubeplan-db", "key": "dsn"}}; !reflect.DeepEqual(ref, want) {
		t.Errorf("KUBEPLAN_STATE comes from %v, want %v", ref, want)
	}
	np, _ := yaml.Marshal(find(t, objs, "NetworkPolicy", "kubeplan").Object["spec"])
	if !strings.Contains(string(np), "port: 5432") {
		t.Errorf("network policy lets no traffic reach the database:\n%s", np)
	}
	if strings.Contains(kinds(objs), "PersistentVolumeClaim") {
		t.Errorf("several replicas render a PVC: %s", kinds(objs))
	}
}

func TestValuesMistakesFailAtInstall(t *testing.T) {
	for _, tc := range []struct{ values, want string }{
		{"replica: 2\n", "replica"}, // a typo is not silently ignored
		{"rbac: {mode: admin}\n", "rbac"},
		{"rbac: {rules: [{apiGroups: ['*'], resources: ['*']}]}\n", `"*" would grant every kind`},
		{"rbac: {clusterRules: [{apiGroups: [''], resources: ['*']}]}\n", `"*" would grant every kind`},
		{"rbac: {mode: namespaced}\n", "rbac.mode namespaced needs rbac.namespaces"},
		{"clusters: [{name: x, inCluster: true, kubeconfigSecret: {name: s}}]\n", "clusters"},
		{"clusters: []\n", "clusters"},
		{"image: {repository: r, digest: latest}\n", "digest"},
		{"config: {state: /x.db}\n", "config.state is set by the chart"},
		{"defaultCluster: nope\n", `defaultCluster "nope" is not one of clusters`},
		{"forgeSecret: ''\n", "forgeSecret"},
	} {
		_, err := renderChart(t, "kubeplan", tc.values)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("values %q: error %v, want one naming %q", tc.values, err, tc.want)
		}
	}
}

func TestDeploymentIsHardenedAndRunsTheImage(t *testing.T) {
	objs := mustRenderChart(t, "kubeplan", "{}")
	d := find(t, objs, "Deployment", "kubeplan")
	pod := field(t, d, "spec", "template", "spec").(map[string]any)
	ctr := pod["containers"].([]any)[0].(map[string]any)
	chart, err := os.ReadFile(filepath.Join(repoRoot, deploy.ChartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct{ AppVersion string }
	if err := yaml.Unmarshal(chart, &meta); err != nil {
		t.Fatal(err)
	}
	if got, want := ctr["image"], "ghcr.io/kubeplan/kubeplan:"+meta.AppVersion; got != want {
		t.Errorf("image %v, want %s (the chart's appVersion)", got, want)
	}
	psc := pod["securityContext"].(map[string]any)
	sc := ctr["securityContext"].(map[string]any)
	for what, got := range map[string]any{
		"pod runAsNonRoot":             psc["runAsNonRoot"],
		"pod runAsUser is the image's": psc["runAsUser"] == int64(imagebuild.UID),
		"pod seccomp RuntimeDefault":   psc["seccompProfile"].(map[string]any)["type"] == "RuntimeDefault",
		"read-only root filesystem":    sc["readOnlyRootFilesystem"],
		"no privilege escalation":      sc["allowPrivilegeEscalation"] == false,
		"all capabilities dropped":     len(sc["capabilities"].(map[string]any)["drop"].([]any)) == 1 && sc["capabilities"].(map[string]any)["drop"].([]any)[0] == "ALL",
		"liveness on /healthz":         ctr["livenessProbe"].(map[string]any)["httpGet"].(map[string]any)["path"] == "/healthz",
		"readiness on /readyz":         ctr["readinessProbe"].(map[string]any)["httpGet"].(map[string]any)["path"] == "/readyz",
		"resource requests":            ctr["resources"].(map[string]any)["requests"] != nil,
		"graceful termination":         pod["terminationGracePeriodSeconds"] == int64(60) && ctr["lifecycle"] != nil,
		"one SQLite writer at a time":  field(t, d, "spec", "strategy", "type") == "Recreate",
	} {
		if got != true {
			t.Errorf("%s: not so (%v)", what, got)
		}
	}
}

// TestChartConfigIsWhatKubeplanServeLoads checks that the configuration file the chart writes
// loads and validates as `kubeplan serve` would read it, and that every kubeconfig it names is
// where the Deployment mounts the cluster's Secret.
func TestChartConfigIsWhatKubeplanServeLoads(t *testing.T) {
	objs := mustRenderChart(t, "kubeplan", `
clusters:
  - {name: staging, inCluster: true}
  - {name: prod-eu, kubeconfigSecret: {name: prod-eu-kubeconfig, key: config}, context: admin}
defaultCluster: prod-eu
config: {repositories: ["acme/*"], workers: 4}
`)
	cm := find(t, objs, "ConfigMap", "kubeplan")
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(field(t, cm, "data", "config.yaml").(string)), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KUBEPLAN_GITHUB_TOKEN": "t", "KUBEPLAN_GITHUB_WEBHOOK_SECRET": "s"}
	cfg, err := config.Load(path, func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("kubeplan serve would not load the chart's config: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("kubeplan serve would refuse the chart's config: %v", err)
	}
	if cfg.Workers != 4 || cfg.DefaultCluster != "prod-eu" || len(cfg.Clusters) != 2 || !cfg.Clusters[0].InCluster || cfg.Clusters[1].Context != "admin" {
		t.Errorf("config %+v lost values", cfg)
	}

	// The kubeconfig the file names is where the Deployment mounts the cluster's Secret.
	pod := field(t, find(t, objs, "Deployment", "kubeplan"), "spec", "template", "spec").(map[string]any)
	var volume string
	for _, v := range pod["volumes"].([]any) {
		v := v.(map[string]any)
		if sec, ok := v["secret"].(map[string]any); ok && sec["secretName"] == "prod-eu-kubeconfig" {
			if want := []any{map[string]any{"key": "config", "path": "kubeconfig"}}; reflect.DeepEqual(sec["items"], want) {
				volume = v["name"].(string)
			}
		}
	}
	var mountedAt string
	for _, m := range pod["containers"].([]any)[0].(map[string]any)["volumeMounts"].([]any) {
		if m := m.(map[string]any); m["name"] == volume {
			mountedAt = m["mountPath"].(string) + "/kubeconfig"
		}
	}
	if volume == "" || mountedAt != cfg.Clusters[1].Kubeconfig {
		t.Errorf("config names kubeconfig %s; Secret prod-eu-kubeconfig (key config) is volume %q mounted at %q", cfg.Clusters[1].Kubeconfig, volume, mountedAt)
	}
	if pod["automountServiceAccountToken"] != true {
		t.Error("no ServiceAccount token for the in-cluster target")
	}

	// Without an in-cluster target the pod gets no ServiceAccount token at all.
	objs = mustRenderChart(t, "kubeplan", "clusters: [{name: prod, kubeconfigSecret: {name: k}}]\n")
	if got := field(t, find(t, objs, "Deployment", "kubeplan"), "spec", "template", "spec", "automountServiceAccountToken"); got != false {
		t.Errorf("automountServiceAccountToken %v with only remote clusters, want false", got)
	}
}

// serviceAccountClient connects as the ServiceAccount sa in ns the way an operator would hand
// kubeplan a remote cluster: a TokenRequest token in a kubeconfig.
func serviceAccountClient(t *testing.T, ns, sa string) *cluster.Client {
	t.Helper()
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(testCluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	expiry := int64(600)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s: %v", ns, sa, err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["test"] = &clientcmdapi.Cluster{Server: testCluster.Config.Host, CertificateAuthorityData: testCluster.Config.CAData}
	kc.AuthInfos["kubeplan"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["kubeplan"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "kubeplan"}
	kc.CurrentContext = "kubeplan"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	c, err := cluster.Connect(ctx, cluster.Target{Name: "as-" + sa, Kubeconfig: path}, cluster.DefaultTuning())
	if err != nil {
		t.Fatalf("connect as %s: %v", sa, err)
	}
	return c
}

// sampleProject is a typical application: the kinds the chart's default rules allow.
func sampleProject(t *testing.T, withCache bool) []manifest.Object {
	t.Helper()
	files := map[string]string{
		"app/web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.28"}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {ports: [{port: 80}], selector: {app: web}}
---
apiVersion: v1
kind: Secret
metadata: {name: web-credentials}
stringData: {password: hunter2}
`,
		"app/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {mode: blue}\n",
	}
	if withCache {
		files["app/cache.yaml"] = `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: cache}
spec:
  serviceName: cache
  selector: {matchLabels: {app: cache}}
  template:
    metadata: {labels: {app: cache}}
    spec: {containers: [{name: cache, image: "redis:7"}]}
`
	}
	res, err := render.Render(context.Background(), testtree.Write(t, files), "app", render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Objects
}

func exists(t *testing.T, gvr schema.GroupVersionResource, ns, name string) bool {
	t.Helper()
	_, err := admin(t).Dynamic.Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	return err == nil
}

var (
	deploymentsGVR  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	statefulSetsGVR = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
)

// installChart applies the rendered chart as an administrator would (`helm install`).
func installChart(t *testing.T, ns, values string) {
	t.Helper()
	objs := mustRenderChart(t, ns, values)
	if r := applyObjects(t, admin(t), "kubeplan", ns, objs, false); r.Failed() {
		t.Fatalf("install chart: %v", r.Objects)
	}
}

func TestNamespacedRBACPlansAndAppliesInListedNamespacesOnly(t *testing.T) {
	home, allowed, other := unique("kp-home"), unique("kp-team"), unique("kp-other")
	createNamespaces(t, home, allowed, other)
	installChart(t, home, "rbac: {mode: namespaced, namespaces: ["+allowed+"]}\n")
	c := serviceAccountClient(t, home, "kubeplan")

	// In the listed namespace: plan (a dry-run, authorized like the apply), apply, plan again,
	// and prune an object gone from git. All as kubeplan's ServiceAccount.
	p := planOK(t, c, "shop", allowed, sampleProject(t, true))
	if got := p.Counts(); got.Create != 5 {
		t.Fatalf("plan in %s: %+v, want 5 creations\n%s", allowed, got, p.Summary())
	}
	if r := applyObjects(t, c, "shop", allowed, sampleProject(t, true), true); r.Failed() || r.Counts().Created != 5 {
		t.Fatalf("apply in %s: %s %v", allowed, r.Counts(), r.Objects)
	}
	// The Secret plans as an update whatever it holds: a pull request's plan never compares
	// Secret values (docs/plan.md); everything else is unchanged.
	if p := planOK(t, c, "shop", allowed, sampleProject(t, true)); p.Counts().Unchanged != 4 || p.Counts().Update != 1 {
		t.Errorf("plan after apply: %s, want all unchanged but the Secret", p.Summary())
	}
	p = planOK(t, c, "shop", allowed, sampleProject(t, false))
	if got := p.Counts(); got.Delete != 1 || got.Unchanged != 3 || got.Update != 1 {
		t.Errorf("plan without the cache: %+v, want its deletion planned from the inventory", got)
	}
	if r := applyObjects(t, c, "shop", allowed, sampleProject(t, false), true); r.Failed() || r.Counts().Pruned != 1 {
		t.Fatalf("apply with prune: %s %v", r.Counts(), r.Objects)
	}
	if exists(t, statefulSetsGVR, allowed, "cache") {
		t.Error("the pruned StatefulSet is still there")
	}

	// Anywhere else kubeplan is refused, by the apiserver, for the plan and for the apply.
	p, err := planner.New(planner.Options{}).Plan(context.Background(), c, planner.Request{Project: "shop", Namespace: other, Objects: sampleProject(t, false)})
	if err == nil {
		for _, ch := range p.Changes {
			if ch.Action != plan.Fail || !strings.Contains(ch.Reason, "forbidden") {
				t.Errorf("plan in unlisted namespace %s: %s %s (%s), want it refused as forbidden", other, ch.Object, ch.Action, ch.Reason)
			}
		}
	} else if !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("plan in unlisted namespace %s: %v, want forbidden", other, err)
	}
	if r, err := applier.New(applier.Options{}).Apply(context.Background(), c, applier.Request{Project: "shop", Namespace: other, Objects: sampleProject(t, false)}); err == nil && !r.Failed() {
		t.Errorf("apply in unlisted namespace %s succeeded: %v", other, r.Objects)
	}
	if exists(t, deploymentsGVR, other, "web") {
		t.Errorf("kubeplan created a Deployment in unlisted namespace %s", other)
	}

	// In the listed namespace too, only the listed kinds: RBAC objects are not among them.
	role := objectsFromYAML(t, "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: sneaky}\nrules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*']}]\n")
	p, err = planner.New(planner.Options{}).Plan(context.Background(), c, planner.Request{Project: "sneaky", Namespace: allowed, Objects: role})
	if err == nil && (len(p.Changes) != 1 || p.Changes[0].Action != plan.Fail || !strings.Contains(p.Changes[0].Reason, "forbidden")) {
		t.Errorf("plan of a Role: %+v, want it refused as forbidden", p.Changes)
	} else if err != nil && !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("plan of a Role: %v, want forbidden", err)
	}
}

func TestClusterRBACManagesListedKindsEverywhereButIsNotAdmin(t *testing.T) {
	home, team := unique("kp-home"), unique("kp-app")
	createNamespaces(t, home)
	installChart(t, home, "{}")
	c := serviceAccountClient(t, home, "kubeplan")

	// A project that brings its own namespace: the default ClusterRole covers it.
	ns := objectsFromYAML(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+team+"}\n")
	objs := append(ns, sampleProject(t, false)...)
	planOK(t, c, "shop", team, objs)
	if r := applyObjects(t, c, "shop", team, objs, true); r.Failed() || r.Counts().Created != 5 {
		t.Fatalf("apply with cluster RBAC: %s %v", r.Counts(), r.Objects)
	}

	// Not cluster-admin: a ClusterRole, or a kind outside the rules, is refused.
	for _, doc := range []string{
		"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: " + unique("escalate") + "}\nrules: []\n",
		"apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: " + unique("urgent") + "}\nvalue: 1000\n",
	} {
		p, err := planner.New(planner.Options{}).Plan(context.Background(), c, planner.Request{Project: unique("x"), Namespace: team, Objects: objectsFromYAML(t, doc)})
		if err == nil && (len(p.Changes) != 1 || p.Changes[0].Action != plan.Fail || !strings.Contains(p.Changes[0].Reason, "forbidden")) {
			t.Errorf("plan of %s: %+v, want it refused as forbidden", strings.Split(doc, "\n")[1], p.Changes)
		} else if err != nil && !strings.Contains(err.Error(), "forbidden") {
			t.Errorf("plan of %s: %v, want forbidden", strings.Split(doc, "\n")[1], err)
		}
	}
}

func objectsFromYAML(t *testing.T, docs string) []manifest.Object {
	t.Helper()
	us, err := kubetest.Objects(docs)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]manifest.Object, len(us))
	for i, u := range us {
		out[i] = manifest.Object{Unstructured: u, Source: "test.yaml"}
	}
	return out
}

// TestKustomizeBaseIsTheChartRendered checks deploy/kustomize against the chart: the files are
// exactly what `go generate ./deploy` writes now, and Kustomize builds them into exactly the
// objects the chart renders.
func TestKustomizeBaseIsTheChartRendered(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want, err := deploy.KustomizeBase(ctx, repoRoot, deploy.Namespace, deploy.KustomizeValues)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(repoRoot, deploy.KustomizeDir)
	for name, data := range want {
		have, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || string(have) != string(data) {
			t.Errorf("%s/%s differs from the chart rendered with %s (%v): run `go generate ./deploy`", deploy.KustomizeDir, name, deploy.KustomizeValues, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := want[e.Name()]; !ok && e.Name() != filepath.Base(deploy.KustomizeValues) {
			t.Errorf("%s/%s is not part of the generated base: run `go generate ./deploy`", deploy.KustomizeDir, e.Name())
		}
	}

	base, err := render.Render(ctx, repoRoot, deploy.KustomizeDir, render.Options{Renderer: render.Kustomize})
	if err != nil {
		t.Fatalf("kustomize build %s: %v", deploy.KustomizeDir, err)
	}
	chart, err := deploy.RenderChart(ctx, repoRoot, deploy.Namespace, deploy.KubeVersion, "/"+deploy.KustomizeValues)
	if err != nil {
		t.Fatal(err)
	}
	index := func(objs []manifest.Object) map[string]string {
		m := map[string]string{}
		for _, o := range objs {
			y, err := yaml.Marshal(o.Object)
			if err != nil {
				t.Fatal(err)
			}
			m[o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName()] = string(y)
		}
		return m
	}
	fromBase, fromChart := index(base.Objects), index(chart.Objects)
	for k, v := range fromChart {
		if fromBase[k] != v {
			t.Errorf("%s: the base builds\n%s\nthe chart renders\n%s", k, fromBase[k], v)
		}
	}
	for k := range fromBase {
		if _, ok := fromChart[k]; !ok {
			t.Errorf("the base builds %s, which the chart does not render", k)
		}
	}
}
