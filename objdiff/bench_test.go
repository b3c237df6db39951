package objdiff

import (
	"fmt"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// A Deployment-sized object changed: normalize both sides, marshal and diff, as the planner
// does per object.
func BenchmarkPairYAMLUnified(b *testing.B) {
	live := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "prod", "resourceVersion": "42", "uid": "u", "managedFields": []any{map[string]any{"manager": "kubeplan"}}},
		"spec":     map[string]any{"replicas": int64(2), "template": map[string]any{"spec": map[string]any{"containers": containers(20, "1.0")}}},
		"status":   map[string]any{"replicas": int64(2)},
	}}
	planned := live.DeepCopy()
	planned.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"] = containers(20, "1.1")
	b.ReportAllocs()
	for b.Loop() {
		l, p := Pair(live, planned, nil)
		ly, _ := YAML(l)
		py, _ := YAML(p)
		if Unified("a", "b", ly, py) == "" {
			b.Fatal("no diff")
		}
	}
}

func containers(n int, tag string) []any {
	var out []any
	for i := 0; i < n; i++ {
		out = append(out, map[string]any{"name": fmt.Sprintf("c%d", i), "image": "img:" + tag, "args": []any{"a", "b", "c", "d", "e", "f"}})
	}
	return out
}

// The same Deployment planned unchanged, as most objects of a re-plan are: normalize both
// sides and tell that they are equal, as the planner does per object.
func BenchmarkPairDiffUnchanged(b *testing.B) {
	live := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "prod", "resourceVersion": "42", "uid": "u", "managedFields": []any{map[string]any{"manager": "kubeplan"}}},
		"spec":     map[string]any{"replicas": int64(2), "template": map[string]any{"spec": map[string]any{"containers": containers(20, "1.0")}}},
		"status":   map[string]any{"replicas": int64(2)},
	}}
	planned := live.DeepCopy()
	b.ReportAllocs()
	for b.Loop() {
		l, p := Pair(live, planned, nil)
		if d, _ := Diff("a", "b", l, p); d != "" {
			b.Fatal("diff of an unchanged object")
		}
	}
}
