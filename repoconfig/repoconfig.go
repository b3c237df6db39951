// Package repoconfig reads a repository's .kubeplan.yaml, or discovers its projects when it
// has none, and decides which projects a change touches.
package repoconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"sigs.k8s.io/yaml"

	"github.com/kubeplan/kubeplan/policy"
	"github.com/kubeplan/kubeplan/render"
)

// FileName is the repository configuration file, at the repository root.
const FileName = ".kubeplan.yaml"

// Config is a repository's configuration.
type Config struct {
	Version  int       `json:"version"`
	Projects []Project `json:"projects"`
	// Drafts: "plan" (default) plans draft pull requests, "skip" waits until ready for review.
	Drafts string `json:"drafts,omitempty"`
	// Policy adds approval and manifest rules, where the server allows repositories to.
	Policy *policy.Config `json:"policy,omitempty"`
	// Drift says how drift of the clusters from git is reported, for every project
	// (docs/drift.md); a project's own drift key overrides it.
	Drift *Drift `json:"drift,omitempty"`
	// Discovered is true when no file was found and projects were discovered.
	Discovered bool `json:"-"`
}

// Project is one deployable unit: a directory rendered one way, planned on some clusters.
type Project struct {
	Name      string `json:"name"`
	Dir       string `json:"dir"`
	Renderer  string `json:"renderer,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Helm      struct {
		Release string   `json:"release,omitempty"`
		Values  []string `json:"values,omitempty"`
	} `json:"helm,omitempty"`
	// Clusters are names from the server's cluster registry; empty means its default cluster.
	Clusters []string `json:"clusters,omitempty"`
	// WhenModified are path globs (doublestar, from the repository root) that make a change
	// affect this project; empty means everything under Dir.
	WhenModified []string `json:"when_modified,omitempty"`
	Apply        struct {
		// BeforeMerge: allowed (default), required or disabled.
		BeforeMerge string `json:"before_merge,omitempty"`
		// OnMerge rolls out on merge; default true.
		OnMerge *bool `json:"on_merge,omitempty"`
		// Prune deletes objects gone from git; default true.
		Prune *bool `json:"prune,omitempty"`
		// Force takes over fields other field managers own instead of failing on the conflict.
		Force bool `json:"force,omitempty"`
		// AllowDestructive lets an apply delete Namespaces and CustomResourceDefinitions gone
		// from the render, which takes down everything in them; without it such a plan is
		// refused. An approval rule must cover the project × cluster too.
		AllowDestructive bool `json:"allow_destructive,omitempty"`
	} `json:"apply,omitempty"`
	// Drift overrides the repository's drift settings for this project: its mode and
	// default_ignore replace them, its ignore rules are added to them.
	Drift *Drift `json:"drift,omitempty"`
}

// Drift is how drift (the cluster no longer matching git) is reported (docs/drift.md).
type Drift struct {
	// Mode is what objects without a kubeplan.dev/drift annotation get: notify (default),
	// ignore or revert.
	Mode string `json:"mode,omitempty"`
	// Ignore lists fields that do not count as drift, on top of kubeplan's list of fields
	// owned by design (an HPA's replicas, injected CA bundles).
	Ignore []DriftIgnore `json:"ignore,omitempty"`
	// DefaultIgnore false counts the fields of kubeplan's list as drift too; default true.
	DefaultIgnore *bool `json:"default_ignore,omitempty"`
	// Interval between the server's scheduled checks ("1h"), instead of the server's
	// drift.interval.
	Interval string `json:"interval,omitempty"`
}

// DriftIgnore matches drifted fields; every criterion given must hold.
type DriftIgnore struct {
	// Kinds are object kinds ("Deployment"); empty means any.
	Kinds []string `json:"kinds,omitempty"`
	// Path is a field path as kubeplan prints it (".spec.replicas"); it matches the field and
	// everything below it, and * stands for any run of characters.
	Path string `json:"path,omitempty"`
	// Manager is the field manager that now owns the field (* as in Path).
	Manager string `json:"manager,omitempty"`
	// Operation is Apply or Update, Subresource e.g. scale or status.
	Operation   string `json:"operation,omitempty"`
	Subresource string `json:"subresource,omitempty"`
}

// DriftMode is the project's mode for objects without an annotation: notify by default.
func (c *Config) DriftMode(p Project) string {
	for _, d := range []*Drift{p.Drift, c.Drift} {
		if d != nil && d.Mode != "" {
			return d.Mode
		}
	}
	return "notify"
}

// DriftIgnores are the project's ignore rules: the repository's, then the project's.
func (c *Config) DriftIgnores(p Project) []DriftIgnore {
	var out []DriftIgnore
	for _, d := range []*Drift{c.Drift, p.Drift} {
		if d != nil {
			out = append(out, d.Ignore...)
		}
	}
	return out
}

// DriftDefaultIgnore reports whether kubeplan's list of fields owned by design applies
// to the project (default yes).
func (c *Config) DriftDefaultIgnore(p Project) bool {
	for _, d := range []*Drift{p.Drift, c.Drift} {
		if d != nil && d.DefaultIgnore != nil {
			return *d.DefaultIgnore
		}
	}
	return true
}

// DriftInterval is the project's interval between scheduled drift checks (the project's,
// else the repository's); 0 leaves it to the server.
func (c *Config) DriftInterval(p Project) time.Duration {
	for _, d := range []*Drift{p.Drift, c.Drift} {
		if d != nil && d.Interval != "" {
			every, _ := time.ParseDuration(d.Interval) // validated
			return every
		}
	}
	return 0
}

// validate words the first mistake in drift settings; where names the key.
func (d *Drift) validate(where string) error {
	if d == nil {
		return nil
	}
	if d.Interval != "" {
		if every, err := time.ParseDuration(d.Interval); err != nil || every < time.Minute {
			return &Error{Reason: fmt.Sprintf("%s.interval %q (want a duration of at least 1m, such as 15m or 2h)", where, d.Interval)}
		}
	}
	switch d.Mode {
	case "", "notify", "ignore", "revert":
	default:
		return &Error{Reason: fmt.Sprintf("%s.mode %q (want notify, ignore or revert)", where, d.Mode)}
	}
	for i, r := range d.Ignore {
		at := fmt.Sprintf("%s.ignore[%d]", where, i)
		if len(r.Kinds) == 0 && r.Path == "" && r.Manager == "" && r.Operation == "" && r.Subresource == "" {
			return &Error{Reason: at + " matches every field: give kinds, path, manager, operation or subresource"}
		}
		if r.Path != "" && !strings.HasPrefix(r.Path, ".") && !strings.HasPrefix(r.Path, "*") {
			return &Error{Reason: fmt.Sprintf("%s.path %q must start with . (as in .spec.replicas)", at, r.Path)}
		}
		switch r.Operation {
		case "", "Apply", "Update":
		default:
			return &Error{Reason: fmt.Sprintf("%s.operation %q (want Apply or Update)", at, r.Operation)}
		}
	}
	return nil
}

// Error is a problem with the configuration file, worded for the pull request.
type Error struct{ Reason string }

func (e *Error) Error() string { return FileName + ": " + e.Reason }

var projectName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Parse reads and validates a .kubeplan.yaml. Unknown keys are errors: a typo must not
// silently change what gets applied.
func Parse(data []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, &Error{Reason: err.Error()}
	}
	if c.Version != 0 && c.Version != 1 {
		return nil, &Error{Reason: fmt.Sprintf("version %d is not supported (want 1)", c.Version)}
	}
	switch c.Drafts {
	case "", "plan", "skip":
	default:
		return nil, &Error{Reason: fmt.Sprintf("drafts: %q (want plan or skip)", c.Drafts)}
	}
	if err := c.Drift.validate("drift"); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i := range c.Projects {
		p := &c.Projects[i]
		if !projectName.MatchString(p.Name) {
			return nil, &Error{Reason: fmt.Sprintf("projects[%d]: name %q must be lower-case letters, digits and dashes", i, p.Name)}
		}
		if seen[p.Name] {
			return nil, &Error{Reason: fmt.Sprintf("project %q is defined twice", p.Name)}
		}
		seen[p.Name] = true
		p.Dir = path.Clean(strings.TrimPrefix(p.Dir, "/"))
		if p.Dir == ".." || strings.HasPrefix(p.Dir, "../") {
			return nil, &Error{Reason: fmt.Sprintf("project %s: dir %q is outside the repository", p.Name, p.Dir)}
		}
		if _, err := render.ParseRenderer(p.Renderer); err != nil {
			return nil, &Error{Reason: fmt.Sprintf("project %s: %v", p.Name, err)}
		}
		switch p.Apply.BeforeMerge {
		case "", "allowed", "required", "disabled":
		default:
			return nil, &Error{Reason: fmt.Sprintf("project %s: apply.before_merge %q (want allowed, required or disabled)", p.Name, p.Apply.BeforeMerge)}
		}
		for _, g := range p.WhenModified {
			if !doublestar.ValidatePattern(g) {
				return nil, &Error{Reason: fmt.Sprintf("project %s: when_modified pattern %q is not valid", p.Name, g)}
			}
		}
		if err := p.Drift.validate("project " + p.Name + ": drift"); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// Load reads .kubeplan.yaml from a repository checkout, or discovers projects without one.
func Load(repo fs.FS) (*Config, error) {
	data, err := fs.ReadFile(repo, FileName)
	if errors.Is(err, fs.ErrNotExist) {
		projects, err := Discover(repo)
		if err != nil {
			return nil, err
		}
		return &Config{Version: 1, Projects: projects, Discovered: true}, nil
	}
	if err != nil {
		return nil, &Error{Reason: "cannot read: " + err.Error()}
	}
	return Parse(data)
}

// Affected returns the projects a change to the given paths touches.
func (c *Config) Affected(changed []string) []Project {
	var out []Project
	for _, p := range c.Projects {
		if p.Touches(changed) {
			out = append(out, p)
		}
	}
	return out
}

// Touches reports whether any changed path matches the project's globs (default: its dir).
func (p Project) Touches(changed []string) bool {
	globs := p.WhenModified
	if len(globs) == 0 {
		if p.Dir == "." {
			globs = []string{"**"}
		} else {
			globs = []string{p.Dir + "/**"}
		}
	}
	for _, f := range changed {
		for _, g := range globs {
			if ok, _ := doublestar.Match(g, f); ok {
				return true
			}
		}
	}
	return false
}

// BeforeMerge is the project's apply-before-merge mode: allowed (default), required or disabled.
func (p Project) BeforeMerge() string {
	if p.Apply.BeforeMerge == "" {
		return "allowed"
	}
	return p.Apply.BeforeMerge
}

// OnMerge reports whether merging rolls the project out (default yes).
func (p Project) OnMerge() bool { return p.Apply.OnMerge == nil || *p.Apply.OnMerge }

// RenderOptions are how the project renders for a cluster whose version is kubeVersion; a
// project without a namespace renders into "default". Every caller renders a project alike:
// its plan, its roll-out, its drift check.
func (p Project) RenderOptions(kubeVersion string) render.Options {
	renderer, _ := render.ParseRenderer(p.Renderer) // validated by Parse
	ns := p.Namespace
	if ns == "" {
		ns = "default"
	}
	return render.Options{Renderer: renderer, Namespace: ns, HelmRelease: p.Helm.Release, ValuesFiles: p.Helm.Values, KubeVersion: kubeVersion}
}

// Prune reports whether objects gone from git are deleted (default yes).
func (p Project) Prune() bool { return p.Apply.Prune == nil || *p.Apply.Prune }

// Discover finds projects in a repository without configuration: each Helm chart, each
// Kustomize directory that no other kustomization uses as a base, and each top-most directory
// of plain manifests outside those.
func Discover(repo fs.FS) ([]Project, error) {
	var kustomize, helm, plain []string
	bases := map[string]bool{}
	err := fs.WalkDir(repo, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") && p != "." {
			return fs.SkipDir
		}
		switch render.Detect(repo, p) {
		case render.Helm:
			helm = append(helm, p)
			return fs.SkipDir
		case render.Kustomize:
			kustomize = append(kustomize, p)
			for _, ref := range kustomizeRefs(repo, p) {
				bases[ref] = true
			}
			return nil
		}
		if hasManifests(repo, p) {
			plain = append(plain, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("discover projects: %w", err)
	}
	var dirs []struct{ dir, renderer string }
	for _, k := range kustomize {
		if !bases[k] {
			dirs = append(dirs, struct{ dir, renderer string }{k, string(render.Kustomize)})
		}
	}
	for _, h := range helm {
		dirs = append(dirs, struct{ dir, renderer string }{h, string(render.Helm)})
	}
	owned := append(append([]string{}, kustomize...), helm...)
	for _, p := range plain {
		if under(p, owned) || under(p, plain) {
			continue // inside another project, or below a plain directory that already recurses
		}
		dirs = append(dirs, struct{ dir, renderer string }{p, string(render.YAML)})
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].dir < dirs[j].dir })
	var out []Project
	names := map[string]bool{}
	for _, d := range dirs {
		name := nameFor(d.dir)
		for i := 2; names[name]; i++ {
			name = fmt.Sprintf("%s-%d", nameFor(d.dir), i)
		}
		names[name] = true
		out = append(out, Project{Name: name, Dir: d.dir, Renderer: d.renderer})
	}
	return out, nil
}

// under reports whether dir lies strictly below any of roots.
func under(dir string, roots []string) bool {
	for _, r := range roots {
		if r != dir && (r == "." || strings.HasPrefix(dir, r+"/")) {
			return true
		}
	}
	return false
}

func nameFor(dir string) string {
	if dir == "." {
		return "root"
	}
	n := strings.ToLower(strings.NewReplacer("/", "-", "_", "-", ".", "-").Replace(dir))
	n = regexp.MustCompile(`[^a-z0-9-]+`).ReplaceAllString(n, "")
	n = strings.Trim(n, "-")
	if len(n) > 63 {
		n = strings.Trim(n[len(n)-63:], "-")
	}
	if n == "" {
		n = "project"
	}
	return n
}

func hasManifests(repo fs.FS, dir string) bool {
	entries, err := fs.ReadDir(repo, dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		ext := strings.ToLower(path.Ext(e.Name()))
		if e.IsDir() || (ext != ".yaml" && ext != ".yml" && ext != ".json") {
			continue
		}
		data, err := fs.ReadFile(repo, path.Join(dir, e.Name()))
		if err != nil || len(data) > 8<<20 {
			continue
		}
		var probe struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		first := strings.SplitN(string(data), "\n---", 2)[0]
		if yaml.Unmarshal([]byte(first), &probe) == nil && probe.APIVersion != "" && probe.Kind != "" {
			return true
		}
	}
	return false
}

// kustomizeRefs lists the local directories a kustomization uses as resources or components.
func kustomizeRefs(repo fs.FS, dir string) []string {
	for _, name := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		data, err := fs.ReadFile(repo, path.Join(dir, name))
		if err != nil {
			continue
		}
		var k struct {
			Resources  []string `json:"resources"`
			Bases      []string `json:"bases"`
			Components []string `json:"components"`
		}
		if yaml.Unmarshal(data, &k) != nil {
			return nil
		}
		var out []string
		for _, r := range append(append(k.Resources, k.Bases...), k.Components...) {
			out = append(out, path.Clean(path.Join(dir, r)))
		}
		return out
	}
	return nil
}
