package render

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// renderKustomize runs kustomize's krusty in-process on an in-memory copy of the repository,
// so nothing outside it can be read. Remote bases and plugins are refused before the build:
// kustomize would otherwise clone remote bases with the git program.
func renderKustomize(ctx context.Context, fsys fs.FS, dir string, limits Limits) (*Result, error) {
	if err := checkKustomizeRefs(fsys, dir, map[string]bool{}); err != nil {
		return nil, err
	}
	mem := filesys.MakeFsInMemory()
	b := newBudget(fsys, limits)
	err := b.walk(".", nil, func(name string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := b.read(name)
		if err != nil {
			return err
		}
		return mem.WriteFile("/"+name, data)
	})
	if err != nil {
		return nil, err
	}

	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.PluginConfig = types.DisabledPluginConfig()
	resMap, err := krusty.MakeKustomizer(opts).Run(mem, "/"+dir)
	if err != nil {
		return nil, &Error{File: dir, Reason: "kustomize build failed: " + strings.ReplaceAll(err.Error(), "'/", "'"), Err: err}
	}
	res := &Result{}
	for _, r := range resMap.Resources() {
		// Through JSON, decoded as Kubernetes does: kyaml's Map() holds Go ints, which
		// unstructured objects cannot hold (DeepCopy panics on them).
		js, err := r.MarshalJSON()
		var m map[string]any
		if err == nil {
			err = utiljson.Unmarshal(js, &m)
		}
		if err != nil {
			return nil, &Error{File: dir, Reason: fmt.Sprintf("kustomize output %s: %v", r.CurId(), err), Err: err}
		}
		u := &unstructured.Unstructured{Object: m}
		res.Objects = append(res.Objects, Object{Unstructured: u, Source: dir + " (kustomize)"})
	}
	return res, nil
}

// checkKustomizeRefs follows resources, bases and components from dir's kustomization and
// refuses any that is not inside the repository: remote bases are not fetched.
func checkKustomizeRefs(fsys fs.FS, dir string, seen map[string]bool) error {
	if seen[dir] {
		return nil
	}
	seen[dir] = true
	kfile := kustomizationFile(fsys, dir)
	if kfile == "" {
		return &Error{File: dir, Reason: "no kustomization.yaml in this directory"}
	}
	data, err := fs.ReadFile(fsys, kfile)
	if err != nil {
		return &Error{File: kfile, Reason: "cannot read: " + describeFSError(err), Err: err}
	}
	var k struct {
		Resources  []string `json:"resources"`
		Bases      []string `json:"bases"`
		Components []string `json:"components"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		return &Error{File: kfile, Reason: "invalid kustomization: " + err.Error(), Err: err}
	}
	for _, ref := range append(append(k.Resources, k.Bases...), k.Components...) {
		if looksRemote(ref) {
			return &Error{File: kfile, Reason: fmt.Sprintf("remote resource %q is not allowed: kubeplan renders only what is in the repository", ref)}
		}
		target := path.Clean(path.Join(dir, ref))
		if target == ".." || strings.HasPrefix(target, "../") || path.IsAbs(ref) {
			return &Error{File: kfile, Reason: fmt.Sprintf("resource %q is outside the repository", ref)}
		}
		st, err := fs.Stat(fsys, target)
		if err != nil {
			// kustomize treats a path it cannot find as a remote URL and clones it: refuse here.
			return &Error{File: kfile, Reason: fmt.Sprintf("resource %q: %s", ref, describeFSError(err)), Err: err}
		}
		if st.IsDir() {
			if err := checkKustomizeRefs(fsys, target, seen); err != nil {
				return err
			}
		}
	}
	return nil
}

func looksRemote(ref string) bool {
	for _, p := range []string{"://", "git@", "?ref=", ".git//", "github.com/", "gitlab.com/", "bitbucket.org/"} {
		if strings.Contains(ref, p) {
			return true
		}
	}
	return false
}
