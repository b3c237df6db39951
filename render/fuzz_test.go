package render

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kubeplan/kubeplan/internal/fetchtrap"

	"sigs.k8s.io/yaml"
)

// Any manifest file in a pull request, rendered as plain YAML and as a kustomization: no
// panic, and what renders is a list of objects each naming its kind, API version and source.
func FuzzRenderManifests(f *testing.F) {
	for _, seed := range []string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: b}\n",
		"apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n",
		"{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {\"name\": \"s\"}, \"stringData\": {\"k\": \"v\"}}",
		"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n",
		"resources: [cm.yaml, ../../etc/passwd, https://example.com/x.yaml]\n",
		"kind: ConfigMap\nmetadata: {name: 1}\n",
		"---\n---\n...\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range []struct {
			renderer Renderer
			file     string
		}{{YAML, "app.yaml"}, {Kustomize, "kustomization.yaml"}} {
			root := t.TempDir()
			dir := filepath.Join(root, "p")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, c.file), data, 0o644); err != nil {
				t.Fatal(err)
			}
			_ = os.WriteFile(filepath.Join(dir, "cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n"), 0o644)
			res, err := Render(context.Background(), root, "p", Options{Renderer: c.renderer, Namespace: "default"})
			if err != nil {
				continue
			}
			for _, o := range res.Objects {
				if o.GetKind() == "" || o.GetAPIVersion() == "" || o.Source == "" {
					t.Fatalf("%s rendered an object without kind, apiVersion or source: %v from %q", c.renderer, o.Object, o.Source)
				}
			}
		}
	})
}

// Any kustomization (and a file beside it it may name as a resource, patch, generator or
// transformer configuration) from a pull request: no panic, and the web server its URLs may name
// ("$URL" in the input) is never contacted, whatever field they are in.
func FuzzKustomizeLoader(f *testing.F) {
	for _, seed := range []struct{ kustomization, extra string }{
		{"resources: [cm.yaml]\nconfigMapGenerator:\n- name: g\n  files: [$URL/a, k=extra.yaml]\n  envs: [$URL/e]\n", ""},
		{"resources: [cm.yaml]\npatches:\n- path: $URL/p\n- path: extra.yaml\npatchesStrategicMerge: [$URL/s]\nreplacements:\n- path: $URL/r\n", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: b}\n"},
		{"resources: [cm.yaml]\ntransformers: [extra.yaml]\n", "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: t}\npath: $URL/t\n"},
		{"generators:\n- |\n  apiVersion: builtin\n  kind: ConfigMapGenerator\n  metadata: {name: g}\n  files: [$URL/g]\n", ""},
		{"crds: [$URL/c]\nconfigurations: [$URL/x]\nopenapi: {path: $URL/o}\ncomponents: [$URL/comp]\nbases: [$URL/b]\n", ""},
		{"resources:\n- git@127.0.0.1:acme/x.git\n- $URL/repo.git//base?ref=main\n", ""},
		{"resources: [cm.yaml, extra.yaml]\nnamePrefix: p-\n", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: &a {k: v}\ndata2: *a\n"},
	} {
		f.Add([]byte(seed.kustomization), []byte(seed.extra))
	}
	srv := fetchtrap.New(f)
	f.Fuzz(func(t *testing.T, kustomization, extra []byte) {
		root := t.TempDir()
		dir := filepath.Join(root, "p")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{"kustomization.yaml": kustomization, "extra.yaml": extra,
			"cm.yaml": []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n")} {
			if err := os.WriteFile(filepath.Join(dir, name), bytes.ReplaceAll(data, []byte("$URL"), []byte(srv.URL)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		before := srv.Hits()
		res, err := Render(context.Background(), root, "p", Options{Renderer: Kustomize, Namespace: "default"})
		if n := srv.Hits() - before; n != 0 {
			t.Fatalf("rendering contacted the server %d times (error %v)", n, err)
		}
		if err == nil {
			for _, o := range res.Objects {
				if o.GetKind() == "" || o.GetAPIVersion() == "" {
					t.Fatalf("rendered an object without kind or apiVersion: %v", o.Object)
				}
			}
		}
	})
}

// Any YAML document: measuring its aliases does not panic, and a document it accepts decodes
// to no more than a small multiple of what it measured (JSON escapes a byte in at most six).
func FuzzAliasExpansion(f *testing.F) {
	for _, seed := range []string{
		"a: &a [x, y]\nb: *a\nc: {<<: *a}\n",
		"d: &d {k: v}\ne: {<<: *d, k2: v2}\nf: [*d, *d]\n",
		"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n",
		"a: &a \"" + strings.Repeat("x", 4096) + "\"\nb: [*a, *a, *a, *a, *a]\n",
		"a: &a [x, *a]\n",
		"- &a !!binary aGVsbG8=\n- *a\n- &t 2001-12-14\n- *t\n",
		"? &k [a, b]\n: *k\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		measured, err := checkAliases(doc, 64<<20)
		if err != nil {
			return
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return
		}
		if measured == 0 {
			measured = int64(len(doc))
		}
		if limit := 6*max(measured, int64(len(doc))) + 64; int64(len(js)) > limit {
			t.Fatalf("accepted a document that decodes to %d bytes of JSON; measured %d", len(js), measured)
		}
	})
}
