package render

import (
	"context"
	"os"
	"path/filepath"
	"testing"
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
