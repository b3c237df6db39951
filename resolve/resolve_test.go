package resolve

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kubeplan/kubeplan/internal/kubetest"
	"github.com/kubeplan/kubeplan/inventory"
	"github.com/kubeplan/kubeplan/manifest"
	"github.com/kubeplan/kubeplan/plan"
)

var testCluster *kubetest.Cluster

func TestMain(m *testing.M) { os.Exit(kubetest.RunWithCluster(m, "test", &testCluster)) }

// rule resolves against the test cluster's discovery, into namespace "team".
func rule(t *testing.T) Rule {
	t.Helper()
	c, err := testCluster.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return Rule{Cluster: c.Name, Mapper: c.Mapper, Namespace: "team", Inventory: inventory.ForProject("shop", "team")}
}

// objects parses one YAML document per file, named 0.yaml, 1.yaml…
func objects(t *testing.T, docs ...string) []manifest.Object {
	t.Helper()
	var out []manifest.Object
	for i, doc := range docs {
		us, err := kubetest.Objects(doc)
		if err != nil || len(us) != 1 {
			t.Fatalf("fixture %d: %v", i, err)
		}
		out = append(out, manifest.Object{Unstructured: us[0], Source: fmt.Sprintf("%d.yaml", i)})
	}
	return out
}

// crd defines kind in group resolve.example.com, of the given scope ("Namespaced", "Cluster").
// The cluster never serves it: these tests only resolve.
func crd(kind, scope string) string {
	plural := strings.ToLower(kind) + "s"
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %[1]s.resolve.example.com}
spec:
  group: resolve.example.com
  scope: %[3]s
  names: {plural: %[1]s, singular: %[4]s, kind: %[2]s}
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
`, plural, kind, scope, strings.ToLower(kind))
}

func TestObjects(t *testing.T) {
	type want struct {
		ref     string
		pending bool
		unknown bool
		problem string
	}
	for _, tc := range []struct {
		name string
		docs []string
		want []want
	}{
		{"namespaced kinds take the default namespace",
			[]string{"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: other}\n"},
			[]want{{ref: "ConfigMap team/a"}, {ref: "ConfigMap other/b"}}},
		{"cluster-scoped kinds lose a namespace",
			[]string{"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader, namespace: team}\n"},
			[]want{{ref: "ClusterRole reader"}}},
		{"a cluster-scoped kind of a CRD in the render loses a namespace",
			[]string{crd("Thing", "Cluster"), "apiVersion: resolve.example.com/v1\nkind: Thing\nmetadata: {name: t1, namespace: team}\n"},
			[]want{{ref: "CustomResourceDefinition things.resolve.example.com"}, {ref: "Thing t1", pending: true}}},
		{"a namespaced kind of a CRD in the render takes the default namespace",
			[]string{crd("Gadget", "Namespaced"), "apiVersion: resolve.example.com/v1\nkind: Gadget\nmetadata: {name: g1}\n"},
			[]want{{ref: "CustomResourceDefinition gadgets.resolve.example.com"}, {ref: "Gadget team/g1", pending: true}}},
		{"an unknown kind keeps what was written",
			[]string{"apiVersion: nothing.example.com/v1\nkind: Phantom\nmetadata: {name: p, namespace: x}\n", "apiVersion: nothing.example.com/v1\nkind: Phantom\nmetadata: {name: q}\n"},
			[]want{{ref: "Phantom x/p", unknown: true}, {ref: "Phantom q", unknown: true}}},
		{"objects without a name are problems, not duplicates",
			[]string{"apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: x-}\n", "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: y-}\n"},
			[]want{{ref: "ConfigMap team/", problem: "ConfigMap from 0.yaml has no name"}, {ref: "ConfigMap team/", problem: "ConfigMap from 1.yaml has no name"}}},
		{"inventory names are reserved",
			[]string{"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kubeplan-other}\n"},
			[]want{{ref: "ConfigMap team/kubeplan-other", problem: inventory.ReservedReason}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rule(t)
			got, err := r.Objects(objects(t, tc.docs...))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d objects, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				o := got[i]
				if g := (want{o.Ref.String(), o.Pending, o.Problem == "" && o.Unknown(), o.Problem}); g != w {
					t.Errorf("object %d: %+v, want %+v", i, g, w)
				}
				if o.Obj.GetNamespace() != o.Ref.Namespace || o.Source != fmt.Sprintf("%d.yaml", i) {
					t.Errorf("object %d: namespace %q, source %q: not what its ref says", i, o.Obj.GetNamespace(), o.Source)
				}
				if o.Obj.GetLabels()[inventory.LabelPartOf] != r.Inventory.ID() {
					t.Errorf("object %d not labelled a member: %v", i, o.Obj.GetLabels())
				}
			}
		})
	}
}

func TestObjectsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		objs []manifest.Object
		want string
	}{
		{"empty object", []manifest.Object{{Source: "empty.yaml"}}, "an object from empty.yaml is empty"},
		{"defined twice", objects(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: team}\n"),
			"ConfigMap team/a is defined twice: in 0.yaml and in 1.yaml"},
		{"reserved and defined twice", objects(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kubeplan-x}\n", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kubeplan-x}\n"),
			"ConfigMap team/kubeplan-x is defined twice: in 0.yaml and in 1.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := rule(t).Objects(tc.objs); err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

type onlyNamespace string

func (n onlyNamespace) Permits(ref plan.ObjectRef) error {
	if ref.Namespace != string(n) {
		return errors.New("may not touch namespace " + ref.Namespace)
	}
	return nil
}

// gone is what both a plan and a prune delete: members not rendered, that carry the set's
// label, and lie in scope.
func TestGone(t *testing.T) {
	r := Rule{Cluster: "prod", Inventory: inventory.ForProject("shop", "team")}
	member := func(apiVersion, kind, ns, name, label string) inventory.Member {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		u.SetNamespace(ns)
		u.SetName(name)
		if label != "" {
			u.SetLabels(map[string]string{inventory.LabelPartOf: label})
		}
		return inventory.Member{Object: u}
	}
	id := r.Inventory.ID()
	rendered := []*Object{
		{Ref: plan.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: "team", Name: "kept"}},
		{Ref: plan.ObjectRef{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "team", Name: "web"}},
	}
	for _, tc := range []struct {
		name    string
		members []inventory.Member
		scope   Scope
		want    []string
		wantErr string
	}{
		{"rendered members stay, in any version of their group",
			[]inventory.Member{member("v1", "ConfigMap", "team", "kept", id), member("apps/v1beta2", "Deployment", "team", "web", id)}, nil, nil, ""},
		{"members gone from the render go, in apply order",
			[]inventory.Member{member("v1", "ConfigMap", "team", "old", id), member("v1", "Namespace", "", "legacy", id), member("v1", "ConfigMap", "other", "old", id)},
			nil, []string{"Namespace legacy", "ConfigMap other/old", "ConfigMap team/old"}, ""},
		{"an object without the set's label is never deleted",
			[]inventory.Member{member("v1", "ConfigMap", "team", "unlabelled", ""), member("v1", "ConfigMap", "team", "elsewhere", "applyset-other-v1")}, nil, nil, ""},
		{"a member outside scope refuses",
			[]inventory.Member{member("v1", "ConfigMap", "team", "old", id), member("v1", "ConfigMap", "other", "old", id)}, onlyNamespace("team"), nil,
			"cluster prod: the inventory lists ConfigMap other/old: may not touch namespace other"},
		{"what is rendered is not checked against scope here",
			[]inventory.Member{member("v1", "ConfigMap", "team", "kept", id)}, onlyNamespace("nowhere"), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gone, err := r.gone(tc.members, tc.scope, rendered)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range gone {
				got = append(got, MemberRef(m).String())
			}
			if strings.Join(got, "; ") != strings.Join(tc.want, "; ") {
				t.Errorf("gone %v, want %v", got, tc.want)
			}
		})
	}
}
