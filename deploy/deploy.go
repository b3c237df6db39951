// Package deploy renders kubeplan's own installation: the Helm chart in deploy/helm/kubeplan
// and the Kustomize base in deploy/kustomize, which is that chart rendered with the values in
// deploy/kustomize/chart-values.yaml (`go generate ./deploy` writes it; a test checks it), so
// the two cannot drift apart. Both go through kubeplan's own renderer.
package deploy

//go:generate go run ./gen

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kubeplan/kubeplan/render"
)

// Paths relative to the repository root, and what the Kustomize base is rendered as.
const (
	ChartDir        = "deploy/helm/kubeplan"
	KustomizeDir    = "deploy/kustomize"
	KustomizeValues = KustomizeDir + "/chart-values.yaml"
	// Release and Namespace name the base's objects as `helm install kubeplan -n kubeplan` does.
	Release   = "kubeplan"
	Namespace = "kubeplan"
	// KubeVersion is what the chart sees as .Capabilities.KubeVersion for the base: the
	// oldest Kubernetes the chart supports (Chart.yaml's kubeVersion).
	KubeVersion = "v1.30.0"
)

// RenderChart renders the chart in repoRoot as release Release in namespace with the given
// values files ("/x.yaml" is relative to repoRoot, others to the chart), as Helm would for
// Kubernetes kubeVersion.
func RenderChart(ctx context.Context, repoRoot, namespace, kubeVersion string, valuesFiles ...string) (*render.Result, error) {
	return render.Render(ctx, repoRoot, ChartDir, render.Options{
		Renderer: render.Helm, Namespace: namespace, HelmRelease: Release,
		ValuesFiles: valuesFiles, KubeVersion: kubeVersion,
	})
}

const header = "# Generated from deploy/helm/kubeplan with chart-values.yaml by `go generate ./deploy`; do not edit.\n"

// KustomizeBase returns the files of a Kustomize base (name → content): the chart rendered in
// namespace with valuesFile (relative to repoRoot, "/"-separated), one file per kind, and the
// kustomization.yaml listing them.
func KustomizeBase(ctx context.Context, repoRoot, namespace, valuesFile string) (map[string][]byte, error) {
	res, err := RenderChart(ctx, repoRoot, namespace, KubeVersion, "/"+strings.TrimPrefix(valuesFile, "/"))
	if err != nil {
		return nil, err
	}
	byFile := map[string][]string{}
	for _, o := range res.Objects {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err)
		}
		name := strings.ToLower(o.GetKind()) + ".yaml"
		byFile[name] = append(byFile[name], string(data))
	}
	files := map[string][]byte{}
	var names []string
	for name, docs := range byFile {
		sort.Strings(docs)
		files[name] = []byte(header + strings.Join(docs, "---\n"))
		names = append(names, name)
	}
	sort.Strings(names)
	kust := header + "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
	for _, n := range names {
		kust += "  - " + n + "\n"
	}
	files["kustomization.yaml"] = []byte(kust)
	return files, nil
}

// WriteKustomizeBase writes the base into dir, removing generated files it no longer has.
func WriteKustomizeBase(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	for _, p := range old {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if _, keep := files[path.Base(filepath.ToSlash(p))]; !keep && strings.HasPrefix(string(data), header) {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
