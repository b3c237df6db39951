// Package render turns a project directory into Kubernetes objects, in-process and reading
// nothing outside the repository it is given: plain YAML/JSON, Kustomize and Helm charts.
package render

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/kubeplan/kubeplan/manifest"
)

// Renderer names the way a directory is turned into objects.
type Renderer string

const (
	Auto      Renderer = "auto"
	YAML      Renderer = "yaml"
	Kustomize Renderer = "kustomize"
	Helm      Renderer = "helm"
)

// ParseRenderer accepts the names used in flags and .kubeplan.yaml.
func ParseRenderer(s string) (Renderer, error) {
	switch r := Renderer(strings.ToLower(strings.TrimSpace(s))); r {
	case "", Auto:
		return Auto, nil
	case YAML, Kustomize, Helm:
		return r, nil
	default:
		return "", fmt.Errorf("unknown renderer %q (want auto, yaml, kustomize or helm)", s)
	}
}

// Options say how to render one project.
type Options struct {
	Renderer Renderer
	// Namespace is the release namespace for Helm (.Release.Namespace).
	Namespace string
	// HelmRelease is the release name for Helm (.Release.Name); defaults to the directory name.
	HelmRelease string
	// ValuesFiles are Helm values files, relative to the chart directory ("/x.yaml": to the
	// repository root).
	ValuesFiles []string
	// KubeVersion, when set (e.g. "v1.37.2"), is what Helm's .Capabilities.KubeVersion reports.
	KubeVersion string
	Limits      Limits
}

// Limits bound what a render may read and produce, so hostile input fails with a clear error.
// A zero field takes its default.
type Limits struct {
	MaxFileBytes  int64 // one file
	MaxTotalBytes int64 // all files read (a file read twice counts twice)
	MaxFiles      int   // files read
	MaxObjects    int   // objects produced
	// MaxOutputBytes bounds what a render produces, as the JSON of its objects: what a plan
	// holds in memory grows with it, whatever the input's size (YAML aliases, a generator
	// naming one file many times, a template loop).
	MaxOutputBytes int64
}

// DefaultLimits fit large real repositories while refusing bombs and runaway inputs.
func DefaultLimits() Limits {
	return Limits{MaxFileBytes: 8 << 20, MaxTotalBytes: 256 << 20, MaxFiles: 50000, MaxObjects: 50000, MaxOutputBytes: 64 << 20}
}

// withDefaults fills the fields left zero.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = d.MaxFileBytes
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = d.MaxTotalBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxObjects <= 0 {
		l.MaxObjects = d.MaxObjects
	}
	if l.MaxOutputBytes <= 0 {
		l.MaxOutputBytes = d.MaxOutputBytes
	}
	return l
}

// Result is what a render produced.
type Result struct {
	Renderer Renderer
	Objects  []manifest.Object
	// Notes are things the user should know that are not errors (skipped files, hooks…).
	Notes []string
}

// Error is a render failure caused by the input; File is relative to the repository root.
type Error struct {
	File   string
	Reason string
	Err    error
}

func (e *Error) Error() string {
	if e.File == "" {
		return e.Reason
	}
	return e.File + ": " + e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// Render renders dir (slash-separated, relative to repoRoot) with opts. Nothing outside
// repoRoot is read, symlinks that leave it are refused, and no program or network is used.
func Render(ctx context.Context, repoRoot, dir string, opts Options) (*Result, error) {
	opts.Limits = opts.Limits.withDefaults()
	dir = path.Clean(strings.TrimPrefix(filepathToSlash(dir), "/"))
	if dir == ".." || strings.HasPrefix(dir, "../") {
		return nil, &Error{File: dir, Reason: "directory is outside the repository"}
	}
	root, err := os.OpenRoot(repoRoot)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", repoRoot, err)
	}
	defer root.Close()
	fsys := root.FS()
	if st, err := fs.Stat(fsys, dir); err != nil {
		return nil, &Error{File: dir, Reason: "project directory not found", Err: err}
	} else if !st.IsDir() {
		return nil, &Error{File: dir, Reason: "not a directory"}
	}

	r := opts.Renderer
	if r == "" || r == Auto {
		r = Detect(fsys, dir)
	}
	var res *Result
	switch r {
	case YAML:
		res, err = renderYAML(ctx, fsys, dir, opts.Limits)
	case Kustomize:
		res, err = renderKustomize(ctx, fsys, dir, opts.Limits)
	case Helm:
		res, err = renderHelm(ctx, fsys, dir, opts)
	default:
		return nil, fmt.Errorf("unknown renderer %q", r)
	}
	if err != nil {
		return nil, err
	}
	res.Renderer = r
	if len(res.Objects) > opts.Limits.MaxObjects {
		return nil, &Error{File: dir, Reason: fmt.Sprintf("renders %d objects, more than the limit of %d", len(res.Objects), opts.Limits.MaxObjects)}
	}
	return res, nil
}

// Detect picks the renderer for a directory: Kustomize when it holds a kustomization file,
// Helm when it holds Chart.yaml, plain YAML otherwise.
func Detect(fsys fs.FS, dir string) Renderer {
	if kustomizationFile(fsys, dir) != "" {
		return Kustomize
	}
	if exists(fsys, path.Join(dir, "Chart.yaml")) {
		return Helm
	}
	return YAML
}

func kustomizationFile(fsys fs.FS, dir string) string {
	for _, name := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if p := path.Join(dir, name); exists(fsys, p) {
			return p
		}
	}
	return ""
}

func exists(fsys fs.FS, p string) bool {
	_, err := fs.Stat(fsys, p)
	return err == nil
}

func filepathToSlash(p string) string { return strings.ReplaceAll(p, string(os.PathSeparator), "/") }

// IsRenderError reports whether err was caused by the input rather than by kubeplan.
func IsRenderError(err error) bool {
	var re *Error
	return errors.As(err, &re)
}
