package objdiff

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// A reviewer sees a diff exactly when the normalized YAML of the two sides differs: Diff may
// tell equal objects by their maps, but never calls unequal YAML equal or the reverse.
func TestDiffShowsWhatTheYAMLShows(t *testing.T) {
	deployment := func(replicas any, extra map[string]any) *unstructured.Unstructured {
		md := map[string]any{"name": "web", "namespace": "prod"}
		for k, v := range extra {
			md[k] = v
		}
		return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
			"metadata": md, "spec": map[string]any{"replicas": replicas}}}
	}
	serverNoise := map[string]any{"resourceVersion": "7", "uid": "u1", "managedFields": []any{map[string]any{"manager": "kubeplan"}}}
	for _, tc := range []struct {
		name          string
		live, planned *unstructured.Unstructured
		changed       bool
	}{
		{"same object, server fields aside", deployment(int64(2), serverNoise), deployment(int64(2), nil), false},
		{"an int and a float of one value read the same", deployment(int64(2), nil), deployment(float64(2), nil), false},
		{"replicas changed", deployment(int64(2), serverNoise), deployment(int64(3), nil), true},
		{"created", nil, deployment(int64(1), nil), true},
		{"deleted", deployment(int64(1), serverNoise), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, p := Pair(tc.live, tc.planned, nil)
			ly, err := YAML(l)
			if err != nil {
				t.Fatal(err)
			}
			py, err := YAML(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Diff("live/web", "planned/web", l, p)
			if err != nil {
				t.Fatal(err)
			}
			if want := Unified("live/web", "planned/web", ly, py); got != want {
				t.Errorf("Diff:\n%s\nwant the YAML's diff:\n%s", got, want)
			}
			if (got != "") != tc.changed {
				t.Errorf("changed = %v, want %v", got != "", tc.changed)
			}
		})
	}
}

// Pair shares what it does not change with its inputs; the live object and the dry-run
// answer must come out of it as they went in (the policy rules and drift read them after).
func TestPairLeavesItsInputsAlone(t *testing.T) {
	live := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "db", "resourceVersion": "9", "uid": "u",
			"annotations": map[string]any{"kubectl.kubernetes.io/last-applied-configuration": "{}", "team": "a"}},
		"data": map[string]any{"password": "c2VjcmV0"}, "status": map[string]any{"x": "y"}}}
	planned := live.DeepCopy()
	planned.Object["stringData"] = map[string]any{"user": "admin"}
	wantLive, wantPlanned := live.DeepCopy(), planned.DeepCopy()

	l, p := Pair(live, planned, []string{"user"})
	if _, err := Diff("a", "b", l, p); err != nil {
		t.Fatal(err)
	}
	if !equalObjects(live, wantLive) || !equalObjects(planned, wantPlanned) {
		t.Errorf("Pair changed its inputs:\nlive %v\nplanned %v", live.Object, planned.Object)
	}
	if _, ok := l.Object["status"]; ok {
		t.Errorf("normalized live keeps status: %v", l.Object)
	}
	if got := l.GetAnnotations(); len(got) != 1 || got["team"] != "a" {
		t.Errorf("normalized live annotations = %v, want only team", got)
	}
}

func equalObjects(a, b *unstructured.Unstructured) bool {
	ay, _ := YAML(a)
	by, _ := YAML(b)
	return ay == by
}
