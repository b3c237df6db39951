package render

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubeplan/kubeplan/internal/fetchtrap"
)

// Every field of a kustomization that names a file, in the kustomization built and in those
// it reaches, refuses a URL before the build, naming the file and the field; the server the
// URL names is never contacted. (Before, only resources, bases and components were checked,
// and kustomize fetched the others — the response landed in the plan comment.)
func TestKustomizeRefusesURLsInEveryFieldThatNamesAFile(t *testing.T) {
	srv := fetchtrap.New(t)
	u := srv.URL + "/latest/meta-data"
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n"
	cases := []struct {
		name  string
		files map[string]string
		want  string // file: field "ref"
	}{
		{"configMapGenerator files", map[string]string{"p/kustomization.yaml": "configMapGenerator:\n- name: x\n  files: [" + u + "]\n"}, `p/kustomization.yaml: configMapGenerator[0].files[0] "` + u + `" is remote`},
		{"configMapGenerator key=file", map[string]string{"p/kustomization.yaml": "configMapGenerator:\n- name: x\n  files: [creds=" + u + "]\n"}, `configMapGenerator[0].files[0] "creds=` + u + `" is remote`},
		{"configMapGenerator envs", map[string]string{"p/kustomization.yaml": "configMapGenerator:\n- name: x\n  envs: [" + u + "]\n"}, `configMapGenerator[0].envs[0]`},
		{"configMapGenerator env", map[string]string{"p/kustomization.yaml": "configMapGenerator:\n- name: x\n  env: " + u + "\n"}, `configMapGenerator[0].env "`},
		{"secretGenerator files", map[string]string{"p/kustomization.yaml": "secretGenerator:\n- name: x\n  files: [" + u + "]\n"}, `secretGenerator[0].files[0]`},
		{"patches path", map[string]string{"p/kustomization.yaml": "resources: [cm.yaml]\npatches:\n- path: " + u + "\n", "p/cm.yaml": cm}, `patches[0].path`},
		{"patchesStrategicMerge", map[string]string{"p/kustomization.yaml": "resources: [cm.yaml]\npatchesStrategicMerge: [" + u + "]\n", "p/cm.yaml": cm}, `patchesStrategicMerge[0]`},
		{"patchesJson6902", map[string]string{"p/kustomization.yaml": "resources: [cm.yaml]\npatchesJson6902:\n- target: {version: v1, kind: ConfigMap, name: cm}\n  path: " + u + "\n", "p/cm.yaml": cm}, `patchesJson6902[0].path`},
		{"crds", map[string]string{"p/kustomization.yaml": "crds: [" + u + "]\n"}, `crds[0]`},
		{"configurations", map[string]string{"p/kustomization.yaml": "configurations: [" + u + "]\n"}, `configurations[0]`},
		{"replacements", map[string]string{"p/kustomization.yaml": "resources: [cm.yaml]\nreplacements:\n- path: " + u + "\n", "p/cm.yaml": cm}, `replacements[0].path`},
		{"openapi", map[string]string{"p/kustomization.yaml": "openapi:\n  path: " + u + "\n"}, `openapi.path`},
		{"resources", map[string]string{"p/kustomization.yaml": "resources: [" + u + "]\n"}, `resources[0]`},
		{"bases", map[string]string{"p/kustomization.yaml": "bases: [" + u + "]\n"}, `bases[0]`},
		{"components", map[string]string{"p/kustomization.yaml": "components: [" + u + "]\n"}, `components[0]`},
		{"generators", map[string]string{"p/kustomization.yaml": "generators: [" + u + "]\n"}, `generators[0]`},
		{"transformers inline", map[string]string{"p/kustomization.yaml": "resources: [cm.yaml]\ntransformers:\n- |\n  apiVersion: builtin\n  kind: PatchTransformer\n  metadata: {name: p}\n  path: " + u + "\n", "p/cm.yaml": cm},
			`p/kustomization.yaml: transformers[0]: document 1 path "` + u + `" is remote`},
		{"transformer configuration file", map[string]string{"p/kustomization.yaml": "resources: [cm.yaml]\ntransformers: [t.yaml]\n", "p/cm.yaml": cm,
			"p/t.yaml": "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: ok}\npatch: '[]'\n---\napiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: g}\nfiles: [" + u + "]\n"},
			`p/t.yaml: document 2 files[0] "` + u + `" is remote`},
		{"a configuration's field in another case", map[string]string{"p/kustomization.yaml": "resources: [cm.yaml]\ntransformers:\n- |\n  apiVersion: builtin\n  kind: PatchTransformer\n  metadata: {name: p}\n  PATH: " + u + "\n", "p/cm.yaml": cm},
			`transformers[0]: document 1 PATH "` + u + `" is remote`},
		{"a configuration's field through an alias", map[string]string{"p/kustomization.yaml": "generators:\n- |\n  apiVersion: builtin\n  kind: ConfigMapGenerator\n  metadata: {name: g, annotations: {x: &u " + u + "}}\n  files: [*u]\n"},
			`generators[0]: document 1 files[0] "` + u + `" is remote`},
		{"a configuration that does not parse", map[string]string{"p/kustomization.yaml": "generators: [g.yaml]\n", "p/g.yaml": "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: g\nfiles: [" + u + "]\n"},
			`p/g.yaml: invalid generator or transformer configuration`},
		{"validators", map[string]string{"p/kustomization.yaml": "validators: [" + u + "]\n"}, `validators[0]`},
		{"in a base", map[string]string{"p/kustomization.yaml": "resources: [../base]\n", "base/kustomization.yaml": "configMapGenerator:\n- name: x\n  files: [" + u + "]\n"},
			`base/kustomization.yaml: configMapGenerator[0].files[0]`},
		{"in a component", map[string]string{"p/kustomization.yaml": "resources: [cm.yaml]\ncomponents: [../c]\n", "p/cm.yaml": cm,
			"c/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n- path: " + u + "\n"},
			`c/kustomization.yaml: patches[0].path`},
		{"generator configuration file", map[string]string{"p/kustomization.yaml": "generators: [g.yaml]\n",
			"p/g.yaml": "apiVersion: builtin\nkind: SecretGenerator\nmetadata: {name: s}\nenvs: [" + u + "]\n"},
			`p/g.yaml: document 1 envs[0] "` + u + `" is remote`},
		{"in a generator directory", map[string]string{"p/kustomization.yaml": "generators: [gen]\n", "p/gen/kustomization.yaml": "resources: [g.yaml]\n",
			"p/gen/g.yaml": "apiVersion: builtin\nkind: SecretGenerator\nmetadata: {name: s}\nenvs: [" + u + "]\n"},
			`p/gen/g.yaml: document 1 envs[0] "` + u + `" is remote`},
		{"a git base over ssh", map[string]string{"p/kustomization.yaml": "resources: [git@github.com:acme/infra.git//base]\n"}, `resources[0] "git@github.com:acme/infra.git//base" is remote`},
		{"a git base by host", map[string]string{"p/kustomization.yaml": "resources:\n- github.com/acme/infra/base?ref=v1\n"}, `is remote`},
		{"a file URL", map[string]string{"p/kustomization.yaml": "resources: [file:///etc/kubernetes]\n"}, `is remote`},
		{"an absolute path", map[string]string{"p/kustomization.yaml": "configMapGenerator:\n- name: x\n  files: [/etc/passwd]\n"}, `configMapGenerator[0].files[0] "/etc/passwd" is an absolute path`},
		{"a path out of the repository", map[string]string{"p/kustomization.yaml": "patches:\n- path: ../../../etc/passwd\n"}, `patches[0].path "../../../etc/passwd" is outside the repository`},
		{"helm charts", map[string]string{"p/kustomization.yaml": "helmCharts:\n- name: redis\n  repo: " + u + "\n"}, `helmCharts is not supported`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := writeTree(t, c.files)
			before := srv.Hits()
			_, err := Render(context.Background(), root, "p", Options{})
			if err == nil || !IsRenderError(err) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want a render error containing %q", err, c.want)
			}
			if n := srv.Hits() - before; n != 0 {
				t.Fatalf("the server the kustomization names was contacted %d times", n)
			}
		})
	}
}

// The refusal comes before any fetch: a URL that answers one byte at a time cannot hold a
// render (krusty takes no context; a fetch once started ran for as long as the server liked).
func TestATricklingURLDoesNotHoldAKustomizeRender(t *testing.T) {
	srv := fetchtrap.New(t)
	root := writeTree(t, map[string]string{"p/kustomization.yaml": "configMapGenerator:\n- name: slow\n  files: [" + srv.URL + "/trickle]\n"})
	done := make(chan error, 1)
	go func() {
		_, err := Render(context.Background(), root, "p", Options{})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "is remote") {
			t.Fatalf("error %v, want the URL refused", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the render is still fetching the trickling URL after 30s")
	}
	if srv.Hits() != 0 {
		t.Fatalf("the trickling server was contacted")
	}
}

// What kustomizations ordinarily use still renders through the confined file system:
// components, configMap and secret generators reading files and env files, patches from files,
// replacements and CRDs from files, and a transformer configuration file (whose fieldSpecs
// `path` is not a file).
func TestKustomizeFeaturesRenderFromTheRepository(t *testing.T) {
	root := writeTree(t, map[string]string{
		"base/kustomization.yaml": "resources: [deploy.yaml]\n",
		"base/deploy.yaml":        deployment,
		"comp/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nconfigMapGenerator:\n- name: from-component\n  literals: [A=1]\n",
		"app/kustomization.yaml": `resources: [../base]
components: [../comp]
configMapGenerator:
- name: settings
  files: [app.properties, renamed=extra.txt]
  envs: [env.txt]
secretGenerator:
- name: creds
  literals: [password=hunter2]
patches:
- path: replicas.yaml
replacements:
- path: replacement.yaml
transformers: [labels.yaml]
crds: [crd.json]
`,
		"app/app.properties":   "mode=prod\n",
		"app/extra.txt":        "extra\n",
		"app/env.txt":          "FOO=bar\n",
		"app/replicas.yaml":    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 4}\n",
		"app/replacement.yaml": "source: {kind: ConfigMap, name: settings, fieldPath: data.FOO}\ntargets:\n- select: {kind: Deployment}\n  fieldPaths: [metadata.annotations.foo]\n  options: {create: true}\n",
		"app/labels.yaml":      "apiVersion: builtin\nkind: LabelTransformer\nmetadata: {name: team}\nlabels: {team: shop}\nfieldSpecs:\n- {path: metadata/labels, create: true}\n",
		"app/crd.json":         "{}",
	})
	res := mustRender(t, root, "app", Options{})
	got := ids(res)
	if len(got) != 4 {
		t.Fatalf("objects: %v", got)
	}
	for _, o := range res.Objects {
		if o.GetLabels()["team"] != "shop" {
			t.Errorf("%s %s lacks the transformer's label", o.GetKind(), o.GetName())
		}
		switch o.GetKind() {
		case "Deployment":
			if o.GetAnnotations()["foo"] != "bar" {
				t.Errorf("replacement not applied: %v", o.GetAnnotations())
			}
			if r, _, _ := unstructuredInt(o.Object, "spec", "replicas"); r != 4 {
				t.Errorf("patch not applied: replicas %d", r)
			}
		case "ConfigMap":
			if strings.HasPrefix(o.GetName(), "settings-") {
				data := o.Object["data"].(map[string]any)
				if data["app.properties"] != "mode=prod\n" || data["renamed"] != "extra\n" || data["FOO"] != "bar" {
					t.Errorf("generator data: %v", data)
				}
			}
		}
	}
}

func unstructuredInt(obj map[string]any, fields ...string) (int64, bool, error) {
	var v any = obj
	for _, f := range fields {
		m, ok := v.(map[string]any)
		if !ok {
			return 0, false, nil
		}
		v = m[f]
	}
	n, ok := v.(int64)
	return n, ok, nil
}

// A kustomization at the repository's root renders (its directory is ".", which kustomize's
// file system used to be asked for as "/." and did not find).
func TestAKustomizationAtTheRepositoryRoot(t *testing.T) {
	root := writeTree(t, map[string]string{
		"kustomization.yaml": "namespace: shop\nresources: [apps/cm.yaml]\nconfigMapGenerator:\n- name: g\n  files: [apps/cm.yaml]\n",
		"apps/cm.yaml":       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
	})
	for _, dir := range []string{".", "", "/", "./"} {
		res, err := Render(context.Background(), root, dir, Options{})
		if err != nil {
			t.Fatalf("render %q: %v", dir, err)
		}
		if res.Renderer != Kustomize || len(res.Objects) != 2 {
			t.Fatalf("render %q: %s %v", dir, res.Renderer, ids(res))
		}
	}
}

// kustomize reads through the render's limits: a file named many times is read (and held)
// many times, so each read counts, and what the build produces counts against the output
// limit. (Before, the repository was copied once into memory and N generator entries naming
// one 4 MiB file grew the process by about 20 MB each.)
func TestKustomizeReadsAndOutputCountAgainstTheLimits(t *testing.T) {
	blob := strings.Repeat("x", 64<<10)
	var gens strings.Builder
	gens.WriteString("configMapGenerator:\n")
	for i := range 20 {
		fmt.Fprintf(&gens, "- name: g%d\n  files: [blob.txt]\n", i)
	}
	root := writeTree(t, map[string]string{"p/kustomization.yaml": gens.String(), "p/blob.txt": blob})

	t.Run("reads", func(t *testing.T) {
		limits := Limits{MaxTotalBytes: 512 << 10}
		_, err := Render(context.Background(), root, "p", Options{Limits: limits})
		if err == nil || !IsRenderError(err) || !strings.Contains(err.Error(), "p/blob.txt: files read exceed the limit of 524288 bytes in all") {
			t.Fatalf("error %v, want the read limit named", err)
		}
	})
	t.Run("output", func(t *testing.T) {
		limits := Limits{MaxOutputBytes: 512 << 10}
		_, err := Render(context.Background(), root, "p", Options{Limits: limits})
		if err == nil || !IsRenderError(err) || !strings.Contains(err.Error(), "p: renders more than 512 KiB of manifests, the limit") {
			t.Fatalf("error %v, want the output limit named", err)
		}
	})
	t.Run("within the limits", func(t *testing.T) {
		if res := mustRender(t, root, "p", Options{}); len(res.Objects) != 20 {
			t.Fatalf("objects: %v", ids(res))
		}
	})
}

// A resource whose YAML aliases expand like a bomb is refused before kustomize expands it.
func TestKustomizeRefusesAliasBombs(t *testing.T) {
	root := writeTree(t, map[string]string{
		"p/kustomization.yaml": "resources: [cm.yaml]\n",
		"p/cm.yaml":            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata:\n  a: &a \"" + strings.Repeat("x", 300<<10) + "\"\n  b: *a\n  c: *a\n  d: *a\n  e: *a\n",
	})
	_, err := Render(context.Background(), root, "p", Options{})
	if err == nil || !IsRenderError(err) || !strings.Contains(err.Error(), "p/cm.yaml: its YAML aliases expand it to more than 1.2 MiB (4 times its size or 1 MiB, whichever is more); kubeplan refuses documents that expand like a YAML bomb") {
		t.Fatalf("error %v, want the bomb refused naming the file", err)
	}
}

// kustomize's file system is the repository, read-only: nothing can be written, nothing outside
// it read.
func TestKustomizeFileSystemIsTheRepositoryReadOnly(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret.txt")
	if err := os.WriteFile(outside, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := writeTree(t, map[string]string{"p/a.txt": "a"})
	if err := os.Symlink(outside, filepath.Join(root, "p", "link.txt")); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := &checkoutFS{b: newBudget(r.FS(), DefaultLimits())}
	if data, err := c.ReadFile("/p/a.txt"); err != nil || string(data) != "a" {
		t.Fatalf("read a file of the repository: %q %v", data, err)
	}
	for _, p := range []string{"/p/link.txt", "/../" + filepath.Base(filepath.Dir(outside)) + "/secret.txt", outside} {
		if data, err := c.ReadFile(p); err == nil {
			t.Errorf("read %s: %q", p, data)
		}
	}
	if err := c.WriteFile("/p/new.txt", []byte("x")); err == nil {
		t.Error("wrote into the repository")
	}
	if err := c.RemoveAll("/p"); err == nil {
		t.Error("removed from the repository")
	}
	if _, err := os.Stat(filepath.Join(root, "p", "a.txt")); err != nil {
		t.Fatal(err)
	}
	if d, f, err := c.CleanedAbs("/p/../p/a.txt"); err != nil || d != "/p" || f != "a.txt" {
		t.Errorf("CleanedAbs: %q %q %v", d, f, err)
	}
}
