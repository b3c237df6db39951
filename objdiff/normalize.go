// Package objdiff turns a live object and its planned counterpart into the diff a reviewer
// reads: server-owned noise removed, Secret values hidden, unified line diff of sorted YAML.
package objdiff

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"sort"
	"strings"

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
// hidden. Either side may be nil (create, delete). The results are for reading (YAML, Diff):
// only the maps normalization changes are copied, the rest is shared with live and planned.
//
// Secret values are never compared with the live ones: a comparison would tell anyone who can
// open a pull request whether a value they guessed is the live one. When there is a live side,
// every key in set (the keys the change writes) reads "(hidden, set by this change)" on the
// planned side, whether or not its value differs; other keys read "(hidden)" on both sides.
func Pair(live, planned *unstructured.Unstructured, set []string) (*unstructured.Unstructured, *unstructured.Unstructured) {
	l, p := strip(live), strip(planned)
	if IsSecret(live) || IsSecret(planned) {
		if l != nil {
			maskSecret(l, nil)
		}
		if p != nil {
			var marked map[string]bool
			if live != nil {
				marked = make(map[string]bool, len(set))
				for _, k := range set {
					marked[k] = true
				}
			}
			maskSecret(p, marked)
		}
	}
	return l, p
}

func strip(obj *unstructured.Unstructured) *unstructured.Unstructured {
	if obj == nil {
		return nil
	}
	// A deep copy of every object of a plan, twice, cost as much as the YAML; only the top
	// level and metadata (and the annotations, below) are changed here.
	out := &unstructured.Unstructured{Object: make(map[string]any, len(obj.Object))}
	for k, v := range obj.Object {
		if k != "status" {
			out.Object[k] = v
		}
	}
	if md, ok := obj.Object["metadata"].(map[string]any); ok {
		m := make(map[string]any, len(md))
		for k, v := range md {
			m[k] = v
		}
		for _, f := range serverOwnedMetadata {
			delete(m, f)
		}
		out.Object["metadata"] = m
	}
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

// maskSecret replaces every value in data and stringData with a marker; keys in set say they
// are set by this change. stringData is folded into data first, as the apiserver does on write.
func maskSecret(s *unstructured.Unstructured, set map[string]bool) {
	values := secretValues(s)
	unstructured.RemoveNestedField(s.Object, "stringData")
	if len(values) == 0 {
		unstructured.RemoveNestedField(s.Object, "data")
		return
	}
	masked := make(map[string]any, len(values))
	for k := range values {
		masked[k] = hiddenValue
		if set[k] {
			masked[k] = hiddenSetValue
		}
	}
	s.Object["data"] = masked
}

const (
	hiddenValue    = "(hidden)"
	hiddenSetValue = "(hidden, set by this change)"
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

// Diff is the unified diff from live to planned, both normalized by Pair, labelled with the
// two names; "" when they read the same. Equal objects, most of a re-plan, are told by
// comparing the maps, without making their YAML.
func Diff(fromName, toName string, live, planned *unstructured.Unstructured) (string, error) {
	// Equal maps have equal YAML; unequal ones may still (an int64 and a float64 of one value),
	// so the YAML decides then, as it always did.
	if live != nil && planned != nil && reflect.DeepEqual(live.Object, planned.Object) {
		return "", nil
	}
	ly, err := YAML(live)
	if err != nil {
		return "", err
	}
	py, err := YAML(planned)
	if err != nil {
		return "", err
	}
	return Unified(fromName, toName, ly, py), nil
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

// SecretKeys lists the keys a Secret's data and stringData name, sorted, without values:
// for a rendered Secret, the keys the change sets.
func SecretKeys(s *unstructured.Unstructured) []string {
	if s == nil {
		return nil
	}
	keys := make([]string, 0, len(secretValues(s)))
	for k := range secretValues(s) {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ChangedSecretKeys lists, sorted, the keys whose value planned sets differently from live (or
// live lacks). It compares values: only for a plan whose reader may read the live Secret.
func ChangedSecretKeys(live, planned *unstructured.Unstructured) []string {
	if planned == nil {
		return nil
	}
	was := map[string]string{}
	if live != nil {
		was = secretValues(live)
	}
	var out []string
	for k, v := range secretValues(planned) {
		if old, ok := was[k]; !ok || old != v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// WrittenSecretKeys lists, sorted, the keys a change writes to a Secret: those it sets, and
// those the live Secret has and the planned one no longer does. Values are not compared, so
// a key set to the value it already has is listed too.
func WrittenSecretKeys(live, planned *unstructured.Unstructured, set []string) []string {
	keys := map[string]bool{}
	for _, k := range set {
		keys[k] = true
	}
	var kept map[string]string
	if planned != nil {
		kept = secretValues(planned)
	}
	if live != nil {
		for k := range secretValues(live) {
			if _, ok := kept[k]; !ok {
				keys[k] = true
			}
		}
	}
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// minScrubbed is the shortest value ScrubSecretValues replaces: shorter ones would take
// ordinary words and letters out of the message.
const minScrubbed = 4

// ScrubSecretValues replaces in msg every value of the given Secrets (as written and base64
// encoded) with "(hidden)": an apiserver, webhook or admission policy may quote the object it
// refuses. Objects that are not Secrets are ignored.
func ScrubSecretValues(msg string, secrets ...*unstructured.Unstructured) string {
	var pairs []string
	for _, s := range secrets {
		if !IsSecret(s) {
			continue
		}
		for _, v := range secretValues(s) {
			for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v))} {
				if len(form) >= minScrubbed {
					pairs = append(pairs, form, hiddenValue)
				}
			}
		}
	}
	if len(pairs) == 0 {
		return msg
	}
	// Longest first, so that a value containing another goes as a whole.
	type pair struct{ old, new string }
	ps := make([]pair, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		ps = append(ps, pair{pairs[i], pairs[i+1]})
	}
	sort.SliceStable(ps, func(i, j int) bool { return len(ps[i].old) > len(ps[j].old) })
	args := make([]string, 0, len(pairs))
	for _, p := range ps {
		args = append(args, p.old, p.new)
	}
	return strings.NewReplacer(args...).Replace(msg)
}
