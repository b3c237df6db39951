package plan

import "testing"

func TestCascadeString(t *testing.T) {
	for _, tc := range []struct {
		c    *Cascade
		want string
	}{
		{nil, "an uncounted number of objects"},
		{&Cascade{}, "nothing else"},
		{&Cascade{Total: 1, Kinds: []KindCount{{"Secret", 1}}}, "1 object (1 Secret)"},
		{&Cascade{Total: 500, AtLeast: true, Kinds: []KindCount{{"Pod", 500}}}, "at least 500 objects (500 Pod)"},
		{&Cascade{Total: 3, AtLeast: true, Kinds: []KindCount{{"Pod", 3}}, Uncounted: []string{"metrics.k8s.io/v1beta1"}}, "at least 3 objects (3 Pod); not counted: metrics.k8s.io/v1beta1"},
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.c, got, tc.want)
		}
	}
}

// What a namespace holds changes all the time and does not make a reviewed plan stale; whether a
// deletion is destructive is part of what was reviewed.
func TestHashIgnoresCascadeCounts(t *testing.T) {
	ns := ObjectRef{APIVersion: "v1", Kind: "Namespace", Name: "legacy"}
	p := &Plan{Project: "web", Cluster: "prod", Changes: []Change{{Object: ns, Action: Delete, Destructive: true, Cascade: &Cascade{Total: 3}}}}
	q := &Plan{Project: "web", Cluster: "prod", Changes: []Change{{Object: ns, Action: Delete, Destructive: true, Cascade: &Cascade{Total: 4}}}}
	if p.Hash() != q.Hash() {
		t.Error("a different count changed the hash")
	}
	if p.Changes[0].Cascade.Total != 3 {
		t.Error("Hash changed the plan")
	}
	q.Changes[0].Destructive = false
	if p.Hash() == q.Hash() {
		t.Error("the destructive mark is not part of the hash")
	}
	if !Destroys(ns) || !Destroys(ObjectRef{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition", Name: "x.example.com"}) ||
		Destroys(ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "a", Name: "b"}) {
		t.Error("Destroys")
	}
}
