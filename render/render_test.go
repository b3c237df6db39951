package render

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubeplan/kubeplan/internal/testtree"
)

// writeTree lays out a repository from path → content and returns its root.
func writeTree(t *testing.T, files map[string]string) string { return testtree.Write(t, files) }

// ids lists rendered objects as "Kind namespace/name", sorted.
func ids(res *Result) []string {
	var out []string
	for _, o := range res.Objects {
		out = append(out, o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
	}
	sort.Strings(out)
	return out
}

func mustRender(t *testing.T, root, dir string, opts Options) *Result {
	t.Helper()
	res, err := Render(context.Background(), root, dir, opts)
	if err != nil {
		t.Fatalf("render %s: %v", dir, err)
	}
	return res
}

func equal(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
`

func TestPlainYAMLReadsEveryManifestRecursively(t *testing.T) {
	root := writeTree(t, map[string]string{
		"apps/web/deploy.yaml": deployment,
		"apps/web/more/objects.yml": `# leading comment
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
---
apiVersion: v1
kind: ConfigMap
metadata: {name: b, namespace: other}
`,
		"apps/web/svc.json":               `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"ports":[{"port":80}]}}`,
		"apps/web/list.yaml":              "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ServiceAccount, metadata: {name: sa1}}\n- {apiVersion: v1, kind: ServiceAccount, metadata: {name: sa2}}\n",
		"apps/web/notes.md":               "# not yaml",
		"apps/web/ci.yaml":                "stages: [build, test]\n",
		"apps/web/sub/kustomization.yaml": "resources: []\n",
		"apps/other/x.yaml":               "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: elsewhere}\n",
	})
	res := mustRender(t, root, "apps/web", Options{})
	if res.Renderer != YAML {
		t.Fatalf("renderer %s, want yaml", res.Renderer)
	}
	equal(t, ids(res), []string{"ConfigMap /a", "ConfigMap other/b", "Deployment /web", "Service /web", "ServiceAccount /sa1", "ServiceAccount /sa2"})
	notes := strings.Join(res.Notes, "\n")
	for _, want := range []string{"apps/web/ci.yaml skipped: not a Kubernetes object", "apps/web/sub skipped: it is a Kustomize or Helm project"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	for _, o := range res.Objects {
		if o.GetName() == "b" && o.Source != "apps/web/more/objects.yml#2" {
			t.Errorf("source of b = %q", o.Source)
		}
	}
}

func TestRenderErrorsNameTheFileAndReason(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"bad yaml", map[string]string{"p/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n"}, "p/a.yaml: document 1:"},
		{"bad yaml in second document", map[string]string{"p/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\nkind: : :\n"}, "p/a.yaml: document 2:"},
		{"object without name", map[string]string{"p/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: x-}\n"}, "p/a.yaml: ConfigMap has no metadata.name"},
		{"missing directory", map[string]string{"q/a.yaml": "{}"}, "p: project directory not found"},
		{"kustomize remote base", map[string]string{"p/kustomization.yaml": "resources:\n- github.com/example/repo//base?ref=v1\n"}, `p/kustomization.yaml: resources[0] "github.com/example/repo//base?ref=v1" is remote`},
		{"kustomize https resource", map[string]string{"p/kustomization.yaml": "resources:\n- https://example.com/all.yaml\n"}, "kubeplan fetches nothing while rendering"},
		{"kustomize missing resource", map[string]string{"p/kustomization.yaml": "resources:\n- missing.yaml\n"}, `p/kustomization.yaml: resources[0] "missing.yaml" cannot be read: no such file`},
		{"kustomize outside repository", map[string]string{"p/kustomization.yaml": "resources:\n- ../../etc\n"}, "is outside the repository"},
		{"kustomize build failure", map[string]string{"p/kustomization.yaml": "resources:\n- a.yaml\npatches:\n- path: nope.yaml\n", "p/a.yaml": deployment}, "p: kustomize build failed"},
		{"helm template failure", map[string]string{"p/Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\n", "p/templates/x.yaml": "{{ .Values.missing.deeper }}"}, "p: helm template failed"},
		{"helm remote dependency", map[string]string{"p/Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\ndependencies:\n- name: redis\n  version: 1.0.0\n  repository: https://charts.example.com\n"}, "dependencies must be vendored under charts/"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := writeTree(t, c.files)
			_, err := Render(context.Background(), root, "p", Options{})
			if err == nil {
				t.Fatal("render succeeded")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
			if !IsRenderError(err) {
				t.Fatalf("error %v is not a render.Error", err)
			}
		})
	}
}

func TestLinksCannotLeaveTheRepository(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.yaml")
	if err := os.WriteFile(secret, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: stolen}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"yaml", "kustomize", "helm"} {
		t.Run(kind, func(t *testing.T) {
			files := map[string]string{}
			link := "p/stolen.yaml"
			switch kind {
			case "kustomize":
				files["p/kustomization.yaml"] = "resources:\n- stolen.yaml\n"
			case "helm":
				files["p/Chart.yaml"] = "apiVersion: v2\nname: c\nversion: 0.1.0\n"
				link = "p/templates/stolen.yaml"
			}
			root := writeTree(t, files)
			if err := os.MkdirAll(filepath.Dir(filepath.Join(root, link)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(secret, filepath.Join(root, link)); err != nil {
				t.Fatal(err)
			}
			res, err := Render(context.Background(), root, "p", Options{})
			if err == nil {
				t.Fatalf("render followed a link out of the repository: %v", ids(res))
			}
			if !strings.Contains(err.Error(), "outside the repository") {
				t.Fatalf("error does not say the link leaves the repository: %v", err)
			}
		})
	}
}

func TestHostileInputFailsClearly(t *testing.T) {
	bomb := `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
`
	t.Run("yaml bomb", func(t *testing.T) {
		root := writeTree(t, map[string]string{"p/bomb.yaml": bomb})
		_, err := Render(context.Background(), root, "p", Options{})
		if err == nil || !strings.Contains(err.Error(), "p/bomb.yaml") {
			t.Fatalf("want an error naming the file, got %v", err)
		}
	})
	t.Run("oversize file", func(t *testing.T) {
		root := writeTree(t, map[string]string{"p/big.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata: {x: \"" + strings.Repeat("x", 2048) + "\"}\n"})
		limits := DefaultLimits()
		limits.MaxFileBytes = 1024
		_, err := Render(context.Background(), root, "p", Options{Limits: limits})
		if err == nil || !strings.Contains(err.Error(), "p/big.yaml: file is larger than the limit of 1024 bytes") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("too many objects", func(t *testing.T) {
		var b strings.Builder
		for i := 0; i < 20; i++ {
			b.WriteString("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c" + strings.Repeat("x", i) + "}\n")
		}
		root := writeTree(t, map[string]string{"p/many.yaml": b.String()})
		limits := DefaultLimits()
		limits.MaxObjects = 10
		_, err := Render(context.Background(), root, "p", Options{Limits: limits})
		if err == nil || !strings.Contains(err.Error(), "more objects than the limit of 10") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestKustomizeOverlay(t *testing.T) {
	root := writeTree(t, map[string]string{
		"base/kustomization.yaml": "resources:\n- deploy.yaml\nconfigMapGenerator:\n- name: settings\n  literals: [MODE=base]\n",
		"base/deploy.yaml":        deployment,
		"overlays/prod/kustomization.yaml": `namespace: prod
namePrefix: prod-
resources:
- ../../base
patches:
- path: replicas.yaml
images:
- name: nginx
  newTag: "1.28"
`,
		"overlays/prod/replicas.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 5}\n",
	})
	res := mustRender(t, root, "overlays/prod", Options{})
	if res.Renderer != Kustomize {
		t.Fatalf("renderer %s, want kustomize", res.Renderer)
	}
	got := ids(res)
	if len(got) != 2 || got[1] != "Deployment prod/prod-web" || !strings.HasPrefix(got[0], "ConfigMap prod/prod-settings-") {
		t.Fatalf("objects: %v", got)
	}
	for _, o := range res.Objects {
		if o.GetKind() != "Deployment" {
			continue
		}
		spec := o.Object["spec"].(map[string]any)
		if fmt.Sprint(spec["replicas"]) != "5" {
			t.Errorf("replicas patch not applied: %v", spec["replicas"])
		}
		image := spec["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)["image"]
		if image != "nginx:1.28" {
			t.Errorf("image = %v, want nginx:1.28", image)
		}
	}
}

func TestHelmChartWithValuesCRDsAndHooks(t *testing.T) {
	root := writeTree(t, map[string]string{
		"charts/app/Chart.yaml":       "apiVersion: v2\nname: app\nversion: 0.1.0\n",
		"charts/app/values.yaml":      "replicas: 1\nimage: nginx:1.27\nextraConfig: false\n",
		"charts/app/values-prod.yaml": "replicas: 3\nextraConfig: true\n",
		"charts/app/crds/widget.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
`,
		"charts/app/templates/deploy.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  namespace: {{ .Release.Namespace }}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: {{ .Values.image | quote }}}]}
`,
		"charts/app/templates/extra.yaml": `{{- if .Values.extraConfig }}
apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-extra}
data: {kube: {{ .Capabilities.KubeVersion.Version | quote }}}
{{- end }}
`,
		"charts/app/templates/hook.yaml": `apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations: {"helm.sh/hook": pre-install}
spec: {template: {spec: {restartPolicy: Never, containers: [{name: m, image: busybox}]}}}
`,
		"charts/app/templates/NOTES.txt": "Thanks!",
	})
	res := mustRender(t, root, "charts/app", Options{HelmRelease: "shop", Namespace: "prod", ValuesFiles: []string{"values-prod.yaml"}, KubeVersion: "v1.37.2"})
	if res.Renderer != Helm {
		t.Fatalf("renderer %s, want helm", res.Renderer)
	}
	equal(t, ids(res), []string{"ConfigMap /shop-extra", "CustomResourceDefinition /widgets.example.com", "Deployment prod/shop-web"})
	for _, o := range res.Objects {
		switch o.GetKind() {
		case "Deployment":
			if r := o.Object["spec"].(map[string]any)["replicas"]; fmt.Sprint(r) != "3" {
				t.Errorf("values-prod.yaml not applied: replicas %v", r)
			}
			if o.Source != "charts/app/templates/deploy.yaml" {
				t.Errorf("source %q", o.Source)
			}
		case "ConfigMap":
			if v := o.Object["data"].(map[string]any)["kube"]; v != "v1.37.2" {
				t.Errorf("KubeVersion not passed to Helm: %v", v)
			}
		}
	}
	if !strings.Contains(strings.Join(res.Notes, "\n"), "1 Helm hook(s) left out") {
		t.Errorf("notes do not mention the hook: %v", res.Notes)
	}
}

func TestDetect(t *testing.T) {
	root := writeTree(t, map[string]string{
		"k/kustomization.yml": "resources: []\n",
		"h/Chart.yaml":        "apiVersion: v2\nname: h\nversion: 0.1.0\n",
		"y/a.yaml":            deployment,
	})
	fsys := os.DirFS(root)
	for dir, want := range map[string]Renderer{"k": Kustomize, "h": Helm, "y": YAML} {
		if got := Detect(fsys, dir); got != want {
			t.Errorf("Detect(%s) = %s, want %s", dir, got, want)
		}
	}
	if _, err := ParseRenderer("jsonnet"); err == nil {
		t.Error("ParseRenderer accepted jsonnet")
	}
}

func TestRenderIsCancellable(t *testing.T) {
	root := writeTree(t, map[string]string{"p/a.yaml": deployment})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Render(ctx, root, "p", Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// Every renderer hands out objects as Kubernetes decodes them: integers as int64, fractions as
// float64. (Kustomize's own maps hold Go ints, which unstructured objects cannot deep-copy,
// and encoding/json turns integers into float64 that print as 1e+06.)
func TestEveryRendererDecodesNumbersAsKubernetesDoes(t *testing.T) {
	deploy := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 3, progressDeadlineSeconds: 1000000, template: {spec: {containers: [{name: a, image: nginx, resources: {limits: {cpu: 0.5}}}]}}}\n"
	root := writeTree(t, map[string]string{
		"plain/deploy.yaml":           deploy,
		"kust/deploy.yaml":            deploy,
		"kust/kustomization.yaml":     "resources: [deploy.yaml]\n",
		"chart/Chart.yaml":            "apiVersion: v2\nname: chart\nversion: 0.1.0\n",
		"chart/templates/deploy.yaml": deploy,
	})
	for _, dir := range []string{"plain", "kust", "chart"} {
		res, err := Render(context.Background(), root, dir, Options{Namespace: "default"})
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		u := res.Objects[0]
		replicas, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "replicas")
		deadline, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec", "progressDeadlineSeconds")
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		cpu, _, _ := unstructured.NestedFieldNoCopy(containers[0].(map[string]any), "resources", "limits", "cpu")
		if _, ok := replicas.(int64); !ok {
			t.Errorf("%s: replicas is %T, want int64", dir, replicas)
		}
		if deadline != int64(1000000) {
			t.Errorf("%s: progressDeadlineSeconds is %T %v, want int64 1000000", dir, deadline, deadline)
		}
		if cpu != 0.5 {
			t.Errorf("%s: cpu is %T %v, want float64 0.5", dir, cpu, cpu)
		}
		_ = u.DeepCopy() // panics on a type unstructured objects may not hold
	}
}
