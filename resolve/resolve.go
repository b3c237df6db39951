// Package resolve is the one rule by which both the planner and the applier read rendered
// objects against a cluster: the resource each maps to, its namespace, its inventory label,
// whether it can be planned or applied at all, whether it lies in the request's scope, and
// which inventory members are gone from the render. The plan a reviewer approves is computed
// by the same code the apply runs.
package resolve

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/inventory"
	"github.com/kubeplan/kubeplan/manifest"
	"github.com/kubeplan/kubeplan/plan"
)

// Rule is what resolving needs besides the objects.
type Rule struct {
	// Cluster names the cluster in errors.
	Cluster string
	Mapper  meta.RESTMapper
	// Namespace is the default for namespaced objects that name none.
	Namespace string
	// Inventory is the set every object is labelled a member of.
	Inventory inventory.Set
}

// Object is one rendered object resolved against the cluster.
type Object struct {
	// Source names the file the object was rendered from.
	Source string
	// Obj is the rendered object, changed in place: namespace defaulted (cleared for
	// cluster-scoped kinds), inventory label added.
	Obj *unstructured.Unstructured
	Ref plan.ObjectRef
	// Mapping is nil when the cluster does not serve the kind (yet).
	Mapping *meta.RESTMapping
	// Pending: the kind is defined by a CRD in the same render and not served yet.
	Pending bool
	// Problem says why the object can be neither planned nor applied (no name, a name
	// reserved for inventories); "" when it can. An unknown kind is not a Problem: see Unknown.
	Problem string
}

// Unknown reports whether the cluster does not serve the object's kind and the render defines
// no CRD for it.
func (o *Object) Unknown() bool { return o.Mapping == nil && !o.Pending }

// Objects resolves every rendered object, in order. An error means no object can be planned
// or applied: an empty object, a kind the cluster cannot be asked about, an object defined
// twice.
func (r Rule) Objects(objs []manifest.Object) ([]*Object, error) {
	defined := manifest.CRDKinds(objs)
	seen := map[string]string{}
	out := make([]*Object, 0, len(objs))
	for _, src := range objs {
		u := src.Unstructured
		if u == nil {
			return nil, fmt.Errorf("an object from %s is empty", src.Source)
		}
		gvk := u.GroupVersionKind()
		o := &Object{Source: src.Source, Obj: u}
		mapping, err := r.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		switch {
		case err == nil:
			o.Mapping = mapping
			r.place(u, mapping.Scope.Name() == meta.RESTScopeNameNamespace)
		case meta.IsNoMatchError(err):
			// A kind a CRD in this render defines is placed as that CRD says; an unknown kind
			// keeps what was written (the cluster cannot say whether it is namespaced).
			if namespaced, ok := defined[gvk]; ok {
				o.Pending = true
				r.place(u, namespaced)
			}
		default:
			return nil, fmt.Errorf("cluster %s: discover resource for %s: %w", r.Cluster, gvk, cluster.Explain(err))
		}
		r.Inventory.Label(u)
		o.Ref = plan.ObjectRef{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
		switch {
		case u.GetName() == "":
			o.Problem = fmt.Sprintf("%s from %s has no name", gvk.Kind, src.Source)
		case inventory.Reserved(gvk.Group, gvk.Kind, u.GetName()):
			o.Problem = inventory.ReservedReason
		}
		if u.GetName() != "" {
			k := Key(o.Ref)
			if prev, dup := seen[k]; dup {
				return nil, fmt.Errorf("%s is defined twice: in %s and in %s", o.Ref, prev, src.Source)
			}
			seen[k] = src.Source
		}
		out = append(out, o)
	}
	return out, nil
}

// place defaults the namespace of a namespaced object and clears that of a cluster-scoped one,
// which the apiserver would otherwise refuse or (for a kind it does not serve yet) the plan
// would name wrongly.
func (r Rule) place(u *unstructured.Unstructured, namespaced bool) {
	switch {
	case !namespaced:
		u.SetNamespace("")
	case u.GetNamespace() == "":
		u.SetNamespace(r.Namespace)
	}
}

// Key identifies an object by group, kind, namespace and name: two versions of one kind are
// one object.
func Key(r plan.ObjectRef) string {
	return r.Group() + "|" + r.Kind + "|" + r.Namespace + "|" + r.Name
}

// Scope says which objects a request may touch.
type Scope interface {
	Permits(ref plan.ObjectRef) error
}

// CheckScope refuses a request that names an object, or keeps its inventory, outside scope
// (nil permits everything).
func (r Rule) CheckScope(scope Scope, objs []*Object) error {
	if scope == nil {
		return nil
	}
	parent := plan.ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: r.Inventory.ParentNamespace, Name: r.Inventory.ParentName}
	if err := scope.Permits(parent); err != nil {
		return fmt.Errorf("cluster %s: the project's inventory: %w", r.Cluster, err)
	}
	for _, o := range objs {
		if err := scope.Permits(o.Ref); err != nil {
			return fmt.Errorf("cluster %s: %s (from %s): %w", r.Cluster, o.Ref, o.Source, err)
		}
	}
	return nil
}

// Gone lists, in apply order, the live inventory members the render (objs) no longer has: what
// a plan deletes and a prune deletes. Only objects that carry the set's part-of label are
// members; a member outside scope refuses the request. Skipped names the group-kinds the
// inventory records that the cluster no longer serves: their objects cannot be listed.
func (r Rule) Gone(ctx context.Context, dyn dynamic.Interface, repository string, scope Scope, objs []*Object) (gone []inventory.Member, skipped []string, err error) {
	members, skipped, err := r.Inventory.Members(ctx, dyn, r.Mapper, repository)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster %s: %w", r.Cluster, err)
	}
	gone, err = r.gone(members, scope, objs)
	return gone, skipped, err
}

// gone is Gone once the members are read.
func (r Rule) gone(members []inventory.Member, scope Scope, objs []*Object) ([]inventory.Member, error) {
	rendered := map[string]bool{}
	for _, o := range objs {
		rendered[Key(o.Ref)] = true
	}
	var gone []inventory.Member
	for _, m := range members {
		ref := MemberRef(m)
		if rendered[Key(ref)] || m.Object.GetLabels()[inventory.LabelPartOf] != r.Inventory.ID() {
			continue // a list by label returns members only; should it not, nothing else is deleted
		}
		if scope != nil {
			if err := scope.Permits(ref); err != nil {
				return nil, fmt.Errorf("cluster %s: the inventory lists %s: %w", r.Cluster, ref, err)
			}
		}
		gone = append(gone, m)
	}
	sort.SliceStable(gone, func(i, j int) bool { return plan.ApplyOrder(MemberRef(gone[i]), MemberRef(gone[j])) })
	return gone, nil
}

// SkippedNote says that members of kinds the cluster no longer serves cannot be pruned; ""
// when there are none.
func SkippedNote(skipped []string) string {
	if len(skipped) == 0 {
		return ""
	}
	return fmt.Sprintf("inventory lists kinds the cluster no longer serves (%s): their objects cannot be pruned", strings.Join(skipped, ", "))
}

// MemberRef names a live inventory member.
func MemberRef(m inventory.Member) plan.ObjectRef {
	u := m.Object
	return plan.ObjectRef{APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
}
