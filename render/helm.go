package render

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/ignore"
	"sigs.k8s.io/yaml"
)

// renderHelm renders a chart like `helm template --include-crds`: files are read through the
// repository root (links cannot leave it), dependencies must be vendored under charts/, and
// no repository or registry is contacted. Hooks are left out: kubeplan applies releases' objects,
// not Helm's lifecycle.
func renderHelm(ctx context.Context, fsys fs.FS, dir string, opts Options) (*Result, error) {
	b := newBudget(fsys, opts.Limits)
	rules := ignore.Empty()
	if data, err := fs.ReadFile(fsys, path.Join(dir, ".helmignore")); err == nil {
		if rules, err = ignore.Parse(bytes.NewReader(data)); err != nil {
			return nil, &Error{File: path.Join(dir, ".helmignore"), Reason: err.Error(), Err: err}
		}
	}
	rules.AddDefaults()

	var files []*loader.BufferedFile
	err := b.walk(dir, nil, func(name string) error {
		rel := strings.TrimPrefix(strings.TrimPrefix(name, dir), "/")
		if fi, err := fs.Stat(fsys, name); err == nil && rules.Ignore(rel, fi) {
			return nil
		}
		data, err := b.read(name)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: rel, Data: data})
		return nil
	})
	if err != nil {
		return nil, err
	}
	chrt, err := loader.LoadFiles(files)
	if err != nil {
		return nil, &Error{File: dir, Reason: "invalid Helm chart: " + err.Error(), Err: err}
	}
	if err := action.CheckDependencies(chrt, chrt.Metadata.Dependencies); err != nil {
		return nil, &Error{File: path.Join(dir, "Chart.yaml"), Reason: "dependencies must be vendored under charts/ (kubeplan does not fetch Helm repositories): " + err.Error(), Err: err}
	}

	vals := map[string]any{}
	for _, vf := range opts.ValuesFiles {
		name := path.Clean(path.Join(dir, vf))
		if strings.HasPrefix(vf, "/") {
			name = path.Clean(strings.TrimPrefix(vf, "/"))
		}
		if name == ".." || strings.HasPrefix(name, "../") {
			return nil, &Error{File: vf, Reason: "values file is outside the repository"}
		}
		data, err := b.read(name)
		if err != nil {
			return nil, err
		}
		var v map[string]any
		if err := yaml.Unmarshal(data, &v); err != nil {
			return nil, &Error{File: name, Reason: "invalid values file: " + err.Error(), Err: err}
		}
		vals = mergeValues(vals, v)
	}

	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun = true
	install.DryRunOption = "client"
	install.ClientOnly = true
	install.Replace = true
	install.IncludeCRDs = true
	install.Namespace = opts.Namespace
	if install.Namespace == "" {
		install.Namespace = "default"
	}
	install.ReleaseName = opts.HelmRelease
	if install.ReleaseName == "" {
		install.ReleaseName = path.Base(dir)
	}
	if opts.KubeVersion != "" {
		kv, err := chartutil.ParseKubeVersion(opts.KubeVersion)
		if err != nil {
			return nil, fmt.Errorf("helm kube version %q: %w", opts.KubeVersion, err)
		}
		install.KubeVersion = kv
	}
	rel, err := install.RunWithContext(ctx, chrt, vals)
	if err != nil {
		return nil, &Error{File: dir, Reason: "helm template failed: " + err.Error(), Err: err}
	}

	out := newOutput(dir, opts.Limits)
	// The text is already in memory (the render child's cap bounds that); its objects would be
	// several times more.
	if int64(len(rel.Manifest)) > out.max {
		return nil, &Error{File: dir, Reason: fmt.Sprintf("renders more than %s of manifests, the limit", mib(out.max))}
	}
	res := &Result{}
	for _, doc := range splitHelmManifest(rel.Manifest) {
		objs, notes, err := decodeManifests(path.Join(dir, doc.source), []byte(doc.body), out)
		if err != nil {
			return nil, err
		}
		res.Objects = append(res.Objects, objs...)
		res.Notes = append(res.Notes, notes...)
	}
	if n := len(rel.Hooks); n > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%s: %d Helm hook(s) left out: kubeplan does not run Helm hooks", dir, n))
	}
	return res, nil
}

type helmDoc struct{ source, body string }

var helmSource = regexp.MustCompile(`(?m)^# Source: [^/]+/(.+)$`)

// splitHelmManifest splits Helm's manifest on document markers, keeping each document's
// "# Source:" template path so errors and plans name the template.
func splitHelmManifest(manifest string) []helmDoc {
	var docs []helmDoc
	for _, body := range regexp.MustCompile(`(?m)^---\s*$`).Split(manifest, -1) {
		if strings.TrimSpace(body) == "" {
			continue
		}
		source := "(helm)"
		if m := helmSource.FindStringSubmatch(body); m != nil {
			source = m[1]
		}
		docs = append(docs, helmDoc{source: source, body: body})
	}
	return docs
}

// mergeValues merges src into dst the way repeated `helm -f` does: maps deep, others replaced.
func mergeValues(dst, src map[string]any) map[string]any {
	for k, v := range src {
		if vm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				dst[k] = mergeValues(dm, vm)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}
