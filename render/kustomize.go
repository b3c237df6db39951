package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/kubeplan/kubeplan/manifest"
	yamlv3 "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/openapi"
)

// renderKustomize runs kustomize's krusty on the repository, read through checkoutFS.
//
// kustomize fetches with HTTP any file a kustomization names by an http(s) URL (a patch, a
// generator's files, CRDs, an OpenAPI schema…; no timeout, no size limit) and clones any base
// that looks like a git URL with the git program. Both are refused before the build: every
// field that names a file, in every kustomization and generator or transformer configuration
// the build would read, is checked first (kustomizeCheck). krusty takes no context, so this
// in-process render cannot be stopped once started, and kustomize keeps the OpenAPI schema a
// kustomization's `openapi` names process-wide, for later builds too: kubeplan serve renders
// each kustomization in a child process of its own (package isolate), which also cannot reach
// the network at all.
func renderKustomize(ctx context.Context, fsys fs.FS, dir string, limits Limits) (res *Result, err error) {
	kc := &kustomizeCheck{fsys: fsys, b: newBudget(fsys, limits), seen: map[string]bool{}}
	if err := kc.kustomization(dir, false); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if kc.openAPI {
		// Leave the next build in this process kustomize's own schema, not this one's.
		defer openapi.ResetOpenAPI()
	}

	// kustomize panics on some input (an OpenAPI schema that is not one): that is this
	// project's error.
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, &Error{File: dir, Reason: fmt.Sprintf("kustomize build failed: %v", p)}
		}
	}()
	cfs := &checkoutFS{b: newBudget(fsys, limits)}
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.PluginConfig = types.DisabledPluginConfig()
	resMap, err := krusty.MakeKustomizer(opts).Run(cfs, abs(dir))
	if cfs.err != nil {
		return nil, cfs.err
	}
	if err != nil {
		return nil, &Error{File: dir, Reason: "kustomize build failed: " + strings.ReplaceAll(err.Error(), "'/", "'"), Err: err}
	}
	res = &Result{}
	out := newOutput(dir, limits)
	for _, r := range resMap.Resources() {
		// Through JSON, decoded as Kubernetes does: kyaml's Map() holds Go ints, which
		// unstructured objects cannot hold (DeepCopy panics on them).
		js, err := r.MarshalJSON()
		if err == nil {
			err = out.add("", int64(len(js)))
			if err != nil {
				return nil, err
			}
		}
		var m map[string]any
		if err == nil {
			err = utiljson.Unmarshal(js, &m)
		}
		if err != nil {
			return nil, &Error{File: dir, Reason: fmt.Sprintf("kustomize output %s: %v", r.CurId(), err), Err: err}
		}
		u := &unstructured.Unstructured{Object: m}
		res.Objects = append(res.Objects, manifest.Object{Unstructured: u, Source: dir + " (kustomize)"})
	}
	return res, nil
}

// kustomizeCheck walks every kustomization a build of dir would read — its resources, bases
// and components, and the directories its generators, transformers and validators name — and
// every field of them that names a file, refusing what kustomize would fetch or clone and what
// lies outside the repository.
type kustomizeCheck struct {
	fsys fs.FS
	b    *budget
	// seen holds the kustomization directories checked, and whether as plugin configurations.
	seen map[string]bool
	// openAPI: some kustomization sets kustomize's (process-wide) OpenAPI schema.
	openAPI bool
}

// refErr says why a reference in a kustomization is refused.
func refErr(file, field, ref, why string) error {
	return &Error{File: file, Reason: fmt.Sprintf("%s %q %s", field, ref, why)}
}

const refusedURL = "is remote (a URL or git reference): kubeplan fetches nothing while rendering; copy what it names into the repository"

// kustomization checks dir's kustomization; with plugins, what it renders are generator,
// transformer or validator configurations (it was named by generators, transformers or
// validators), whose file-naming fields are checked too.
func (kc *kustomizeCheck) kustomization(dir string, plugins bool) error {
	key := fmt.Sprint(dir, plugins)
	if kc.seen[key] {
		return nil
	}
	kc.seen[key] = true
	kfile := kustomizationFile(kc.fsys, dir)
	if kfile == "" {
		return &Error{File: dir, Reason: "no kustomization.yaml in this directory"}
	}
	data, err := kc.b.read(kfile)
	if err != nil {
		return err
	}
	if _, err := checkAliases(data, kc.b.limits.MaxOutputBytes); err != nil {
		return &Error{File: kfile, Reason: err.Error(), Err: err}
	}
	// kustomize's own type and decoder, so that the fields checked are the fields it reads.
	var k types.Kustomization
	if err := k.Unmarshal(data); err != nil {
		return &Error{File: kfile, Reason: "invalid kustomization: " + strings.TrimPrefix(err.Error(), "invalid Kustomization: "), Err: err}
	}

	if len(k.HelmCharts) > 0 || len(k.HelmChartInflationGenerator) > 0 || k.HelmGlobals != nil {
		return &Error{File: kfile, Reason: "helmCharts is not supported: kubeplan does not run Helm from a kustomization (it would fetch the chart); make the chart a project of its own"}
	}
	// Directories (or files) the build reads as resources.
	for _, f := range []struct {
		name string
		refs []string
	}{{"resources", k.Resources}, {"bases", k.Bases}, {"components", k.Components}} {
		for i, ref := range f.refs {
			if err := kc.resource(kfile, dir, fmt.Sprintf("%s[%d]", f.name, i), ref, plugins); err != nil {
				return err
			}
		}
	}
	// Files the build loads.
	files := map[string]string{}
	add := func(field, ref string) { files[field] = ref }
	for i, r := range k.Crds {
		add(fmt.Sprintf("crds[%d]", i), r)
	}
	for i, r := range k.Configurations {
		add(fmt.Sprintf("configurations[%d]", i), r)
	}
	for i, p := range k.Patches {
		add(fmt.Sprintf("patches[%d].path", i), p.Path)
	}
	for i, p := range k.PatchesJson6902 {
		add(fmt.Sprintf("patchesJson6902[%d].path", i), p.Path)
	}
	for i, p := range k.PatchesStrategicMerge {
		// An entry is a patch itself or the path of one.
		if !strings.Contains(string(p), "\n") {
			add(fmt.Sprintf("patchesStrategicMerge[%d]", i), string(p))
		}
	}
	for i, r := range k.Replacements {
		add(fmt.Sprintf("replacements[%d].path", i), r.Path)
	}
	add("openapi.path", k.OpenAPI["path"])
	kc.openAPI = kc.openAPI || len(k.OpenAPI) > 0
	for i, g := range k.ConfigMapGenerator {
		kvFiles(add, fmt.Sprintf("configMapGenerator[%d]", i), g.KvPairSources)
	}
	for i, g := range k.SecretGenerator {
		kvFiles(add, fmt.Sprintf("secretGenerator[%d]", i), g.KvPairSources)
	}
	for _, field := range sortedKeys(files) {
		if err := kc.file(kfile, dir, field, files[field]); err != nil {
			return err
		}
	}
	// Plugin configurations: inline, in files, or kustomizations in directories.
	for _, f := range []struct {
		name string
		refs []string
	}{{"generators", k.Generators}, {"transformers", k.Transformers}, {"validators", k.Validators}} {
		for i, ref := range f.refs {
			if err := kc.plugin(kfile, dir, fmt.Sprintf("%s[%d]", f.name, i), ref); err != nil {
				return err
			}
		}
	}
	return nil
}

// kvFiles adds the files of a ConfigMap or Secret generator: `files` ("key=path" or "path"),
// `envs` and `env`.
func kvFiles(add func(field, ref string), field string, kv types.KvPairSources) {
	for i, s := range kv.FileSources {
		add(fmt.Sprintf("%s.files[%d]", field, i), s)
	}
	for i, s := range kv.EnvSources {
		add(fmt.Sprintf("%s.envs[%d]", field, i), s)
	}
	add(field+".env", kv.EnvSource)
}

// resource checks an entry of resources, bases or components: a file or a kustomization
// directory in the repository (with plugins, of plugin configurations).
func (kc *kustomizeCheck) resource(kfile, dir, field, ref string, plugins bool) error {
	if isRemote(ref) {
		return refErr(kfile, field, ref, refusedURL)
	}
	target, err := kc.local(kfile, dir, field, ref)
	if err != nil {
		return err
	}
	st, err := fs.Stat(kc.fsys, target)
	if err != nil {
		// kustomize treats a path it cannot find as a git URL and clones it: refuse here.
		return refErr(kfile, field, ref, "cannot be read: "+describeFSError(err))
	}
	if st.IsDir() {
		return kc.kustomization(target, plugins)
	}
	if plugins {
		data, err := kc.b.read(target)
		if err != nil {
			return err
		}
		return kc.pluginConfig(target, "", data)
	}
	return nil
}

// file checks a field that names a file kustomize loads (a generator's `files` entry may be
// "key=path").
func (kc *kustomizeCheck) file(kfile, dir, field, ref string) error {
	if ref == "" {
		return nil
	}
	if isRemote(ref) {
		return refErr(kfile, field, ref, refusedURL)
	}
	p := ref
	if k, v, ok := strings.Cut(ref, "="); ok && k != "" && !strings.Contains(v, "=") {
		p = v
	}
	_, err := kc.local(kfile, dir, field, p)
	return err
}

// local resolves a relative reference inside the repository.
func (kc *kustomizeCheck) local(kfile, dir, field, ref string) (string, error) {
	if path.IsAbs(ref) {
		return "", refErr(kfile, field, ref, "is an absolute path: kubeplan reads only the repository")
	}
	target := path.Clean(path.Join(dir, ref))
	if target == ".." || strings.HasPrefix(target, "../") {
		return "", refErr(kfile, field, ref, "is outside the repository")
	}
	return target, nil
}

// pluginFileKeys are the fields of kustomize's built-in generator and transformer
// configurations that name files (ConfigMapGenerator files/envs/env, PatchTransformer path,
// PatchStrategicMergeTransformer paths, ReplacementTransformer replacements[].path,
// ValueAddTransformer targetFilePath, HelmChartInflationGenerator values files and homes).
var pluginFileKeys = []string{"path", "paths", "files", "envs", "env", "targetFilePath",
	"valuesFile", "additionalValuesFiles", "chartHome", "configHome"}

// isPluginFileKey matches keys as kustomize does: it decodes configurations with
// encoding/json, which matches field names without regard to case (Unicode folding: "PATH",
// "fileſ").
func isPluginFileKey(k string) bool {
	for _, f := range pluginFileKeys {
		if strings.EqualFold(k, f) {
			return true
		}
	}
	return false
}

// plugin checks an entry of generators, transformers or validators: inline configuration,
// or, like a resource, a file of configurations or a kustomization directory of them.
func (kc *kustomizeCheck) plugin(kfile, dir, field, ref string) error {
	if strings.Contains(ref, "\n") || strings.HasPrefix(strings.TrimSpace(ref), "{") {
		return kc.pluginConfig(kfile, field, []byte(ref))
	}
	return kc.resource(kfile, dir, field, ref, true)
}

// pluginConfig checks every document of a plugin configuration: any file-naming field, at any
// depth and through aliases, may not be remote or absolute. It parses as kustomize does (kyaml
// is this YAML parser); what it cannot parse is refused, as kustomize would refuse it, rather
// than left unchecked.
func (kc *kustomizeCheck) pluginConfig(file, field string, data []byte) error {
	if _, err := checkAliases(data, kc.b.limits.MaxOutputBytes); err != nil && !errors.Is(err, errUncheckable) {
		return &Error{File: file, Reason: prefix(field) + err.Error(), Err: err}
	}
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	for doc := 1; ; doc++ {
		var root yamlv3.Node
		err := dec.Decode(&root)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &Error{File: file, Reason: fmt.Sprintf("%sinvalid generator or transformer configuration: %v", prefix(field), err), Err: err}
		}
		w := fileKeyWalk{busy: map[*yamlv3.Node]bool{}, check: func(at, ref string) error {
			where := strings.TrimPrefix(prefix(field)+fmt.Sprintf("document %d ", doc)+at, " ")
			if isRemote(ref) {
				return refErr(file, where, ref, refusedURL)
			}
			if path.IsAbs(ref) {
				return refErr(file, where, ref, "is an absolute path: kubeplan reads only the repository")
			}
			return nil
		}}
		if err := w.walk(&root, "", false); err != nil {
			return err
		}
		if w.helm {
			return &Error{File: file, Reason: prefix(field) + "HelmChartInflationGenerator is not supported: kubeplan does not run Helm from a kustomization"}
		}
	}
}

func prefix(field string) string {
	if field == "" {
		return ""
	}
	return field + ": "
}

// fileKeyWalk calls check for every string under a key of pluginFileKeys, at any depth.
type fileKeyWalk struct {
	busy  map[*yamlv3.Node]bool
	check func(at, ref string) error
	helm  bool
}

// walk visits n; underFileKey says n is the value of a file-naming key.
func (w *fileKeyWalk) walk(n *yamlv3.Node, at string, underFileKey bool) error {
	if n == nil || w.busy[n] {
		return nil
	}
	w.busy[n] = true
	defer delete(w.busy, n)
	switch n.Kind {
	case yamlv3.AliasNode:
		return w.walk(n.Alias, at, underFileKey)
	case yamlv3.ScalarNode:
		if underFileKey {
			return w.check(at, n.Value)
		}
	case yamlv3.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			for k.Kind == yamlv3.AliasNode && k.Alias != nil {
				k = k.Alias
			}
			if strings.EqualFold(k.Value, "kind") && v.Value == "HelmChartInflationGenerator" {
				w.helm = true
			}
			child := strings.TrimPrefix(at+"."+k.Value, ".")
			if err := w.walk(v, child, isPluginFileKey(k.Value)); err != nil {
				return err
			}
		}
	default: // document, sequence
		for i, c := range n.Content {
			child := at
			if n.Kind == yamlv3.SequenceNode {
				child = fmt.Sprintf("%s[%d]", at, i)
			}
			if err := w.walk(c, child, underFileKey && n.Kind == yamlv3.SequenceNode); err != nil {
				return err
			}
		}
	}
	return nil
}

// scpLike is git's user@host:path form, which kustomize clones.
var scpLike = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]*@[^/:]+[:/]`)

// isRemote reports whether kustomize would fetch or clone ref rather than read a file: any URL
// (it GETs http and https, and clones ssh://, file://, git:: and user@host: forms), and git
// hosts' short forms. Broader than kustomize on purpose: a local path never looks like these.
func isRemote(ref string) bool {
	r := strings.ToLower(strings.TrimSpace(ref))
	if strings.Contains(r, "://") || strings.HasPrefix(r, "git::") || scpLike.MatchString(r) {
		return true
	}
	for _, scheme := range []string{"http:", "https:", "ssh:", "file:", "git:"} {
		if strings.HasPrefix(r, scheme) {
			return true
		}
	}
	for _, p := range []string{"github.com/", "github.com:", "gitlab.com/", "bitbucket.org/", "?ref=", ".git//"} {
		if strings.Contains(r, p) {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
