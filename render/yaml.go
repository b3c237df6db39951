package render

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/kubeplan/kubeplan/manifest"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// renderYAML reads every .yaml/.yml/.json file under dir. Subdirectories that are Kustomize
// or Helm projects of their own are skipped with a note: their files are not plain manifests.
func renderYAML(ctx context.Context, fsys fs.FS, dir string, limits Limits) (*Result, error) {
	res := &Result{}
	b := newBudget(fsys, limits)
	out := newOutput(dir, limits)
	skipDir := func(p string) bool {
		if kustomizationFile(fsys, p) != "" || exists(fsys, path.Join(p, "Chart.yaml")) {
			res.Notes = append(res.Notes, fmt.Sprintf("%s skipped: it is a Kustomize or Helm project of its own", p))
			return true
		}
		return false
	}
	err := b.walk(dir, skipDir, func(name string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !isManifestFile(name) {
			return nil
		}
		data, err := b.read(name)
		if err != nil {
			return err
		}
		objs, notes, err := decodeManifests(name, data, out)
		if err != nil {
			return err
		}
		res.Objects = append(res.Objects, objs...)
		res.Notes = append(res.Notes, notes...)
		if len(res.Objects) > limits.MaxObjects {
			return &Error{File: dir, Reason: fmt.Sprintf("renders more objects than the limit of %d", limits.MaxObjects)}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// decodeManifests splits a YAML stream (or one JSON document) into Kubernetes objects, counting
// what they decode to in out. Documents that are not Kubernetes objects are skipped with a note;
// List kinds are expanded.
func decodeManifests(name string, data []byte, out *output) ([]manifest.Object, []string, error) {
	var objs []manifest.Object
	var notes []string
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for doc := 1; ; doc++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, &Error{File: name, Reason: fmt.Sprintf("document %d: %v", doc, err), Err: err}
		}
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			continue
		}
		source := name
		if doc > 1 {
			source = fmt.Sprintf("%s#%d", name, doc)
		}
		// Aliases are measured before they are expanded: decoding is what would take the memory.
		if _, err := checkAliases(raw, out.left()); err != nil {
			return nil, nil, &Error{File: name, Reason: fmt.Sprintf("document %d: %v", doc, err), Err: err}
		}
		js, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, nil, &Error{File: name, Reason: fmt.Sprintf("document %d: %v", doc, err), Err: err}
		}
		if err := out.add(name, int64(len(js))); err != nil {
			return nil, nil, err
		}
		var content map[string]any
		// As Kubernetes decodes: integers become int64 (encoding/json would make them float64,
		// and 1000000 would print as 1e+06 in a diff).
		if err := utiljson.Unmarshal(js, &content); err != nil || content == nil {
			notes = append(notes, fmt.Sprintf("%s skipped: not a Kubernetes object (not a mapping)", source))
			continue
		}
		u := &unstructured.Unstructured{Object: content}
		if u.GetAPIVersion() == "" || u.GetKind() == "" {
			notes = append(notes, fmt.Sprintf("%s skipped: not a Kubernetes object (no apiVersion/kind)", source))
			continue
		}
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, nil, &Error{File: source, Reason: "invalid List: " + err.Error(), Err: err}
			}
			for i := range list.Items {
				objs = append(objs, manifest.Object{Unstructured: &list.Items[i], Source: fmt.Sprintf("%s[%d]", source, i)})
			}
			continue
		}
		if u.GetName() == "" {
			// Server-side apply needs a name; generateName cannot be planned or applied idempotently.
			return nil, nil, &Error{File: source, Reason: fmt.Sprintf("%s has no metadata.name", u.GetKind())}
		}
		objs = append(objs, manifest.Object{Unstructured: u, Source: source})
	}
	return objs, notes, nil
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range strings.Split(string(doc), "\n") {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		out = append(out, line...)
		out = append(out, '\n')
	}
	return out
}
