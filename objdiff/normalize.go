// Package objdiff turns a live object and its planned counterpart into the diff a reviewer
// reads: server-owned noise removed, Secret values hidden, unified line diff of sorted YAML.
package objdiff

import (
	"encoding/base64"
	"fmt"
	"sort"

	"go.yaml.in/yaml/v2"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// serverOwnedMetadata are metadata fields the apiserver writes; they change without anyone
// changing the object, so they are never shown.
var serverOwnedMetadata = []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"}

// clientBookkeepingAnnotations are written by tools, not people; last-applied would also
// copy a Secret's values in clear text.
var clientBookkeepingAnnotations = []string{"kubectl.kubernetes.io/last-applied-configuration"}

// Pair normalizes the two sides of a diff: server-owned noise removed and Secret values
// hidden, the planned side saying "changed" where its value differs from the live one.
// Either side may be nil (create, delete).
func Pair(live, desired *unstructured.Unstructured) (*unstructured.Unstructured, *unstructured.Unstructured) {
	l, d := strip(live), strip(desired)
	if IsSecret(live) || IsSecret(desired) {
		var liveValues map[string]string
		if live != nil {
			liveValues = secretValues(live)
		}
		if l != nil {
			maskSecret(l, nil)
		}
		if d != nil {
			maskSecret(d, liveValues)
		}
	}
	return l, d
}

func strip(obj *unstructured.Unstructured) *unstructured.Unstructured {
	if obj == nil {
		return nil
	}
	out := obj.DeepCopy()
	for _, f := range serverOwnedMetadata {
		unstructured.RemoveNestedField(out.Object, "metadata", f)
	}
	unstructured.RemoveNestedField(out.Object, "status")
	if ann := out.GetAnnotations(); ann != nil {
		for _, a := range clientBookkeepingAnnotations {
			delete(ann, a)
		}
		if len(ann) == 0 {
			unstructured.RemoveNestedField(out.Object, "metadata", "annotations")
		} else {
			out.SetAnnotations(ann)
		}
	}
	return out
}

// IsSecret reports whether u is a core/v1 Secret.
func IsSecret(u *unstructured.Unstructured) bool {
	return u != nil && u.GetKind() == "Secret" && (u.GetAPIVersion() == "v1")
}

// Masked returns obj as anyone but the cluster may see it: for a Secret, a copy whose data and
// stringData values are "(hidden)"; any other object as it is.
func Masked(obj *unstructured.Unstructured) *unstructured.Unstructured {
	if !IsSecret(obj) {
		return obj
	}
	c := obj.DeepCopy()
	maskSecret(c, nil)
	return c
}

// maskSecret replaces every value in data and stringData with a marker. Given the live
// values, a value that differs from its live twin is marked changed. stringData is folded
// into data first, as the apiserver does on write.
func maskSecret(s *unstructured.Unstructured, liveValues map[string]string) {
	values := secretValues(s)
	unstructured.RemoveNestedField(s.Object, "stringData")
	if len(values) == 0 {
		unstructured.RemoveNestedField(s.Object, "data")
		return
	}
	masked := make(map[string]any, len(values))
	for k, v := range values {
		masked[k] = hiddenValue
		if lv, had := liveValues[k]; had && lv != v {
			masked[k] = hiddenChangedValue
		}
	}
	s.Object["data"] = masked
}

const (
	hiddenValue        = "(hidden)"
	hiddenChangedValue = "(hidden, changed)"
)

func decodeBase64(s string) string {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Not valid base64: the server will reject it; compare the raw text.
		return s
	}
	return string(b)
}

// secretValues returns a Secret's values keyed by name, decoded from data and stringData.
func secretValues(s *unstructured.Unstructured) map[string]string {
	out := map[string]string{}
	if data, ok := s.Object["data"].(map[string]any); ok {
		for k, v := range data {
			b64, _ := v.(string)
			out[k] = decodeBase64(b64)
		}
	}
	if sd, ok := s.Object["stringData"].(map[string]any); ok {
		for k, v := range sd {
			str, _ := v.(string)
			out[k] = str
		}
	}
	return out
}

// YAML renders obj as YAML with sorted keys (stable across runs). A nil obj is "".
func YAML(obj *unstructured.Unstructured) (string, error) {
	if obj == nil {
		return "", nil
	}
	// Straight to the YAML encoder (sorted keys); sigs.k8s.io/yaml would round-trip via JSON
	// and cost three times as much on every object of every plan.
	b, err := yaml.Marshal(obj.Object)
	if err != nil {
		return "", fmt.Errorf("marshal %s %s: %w", obj.GetKind(), obj.GetName(), err)
	}
	return string(b), nil
}

// ChangedSecretKeys lists keys whose values differ between two Secrets (added, removed or
// changed), sorted: what a plan may say about a Secret without saying anything of its values.
func ChangedSecretKeys(live, desired *unstructured.Unstructured) []string {
	var a, b map[string]string
	if live != nil {
		a = secretValues(live)
	}
	if desired != nil {
		b = secretValues(desired)
	}
	var keys []string
	for k, v := range b {
		if ov, ok := a[k]; !ok || ov != v {
			keys = append(keys, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}
