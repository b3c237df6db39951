package planner

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubeplan/kubeplan/cluster"
)

// readLive fetches the live state of every resolvable object: live[i] is objs[i]'s, nil when
// it does not exist (or is not read). Objects that share a resource and namespace in numbers
// are read with one LIST; the rest with GETs. Listed objects the plan does not name are
// dropped as soon as the list is read. With dropManaged, the managedFields of objects only
// kubeplan applies are dropped too (see soleApplier): half the size of a typical live object,
// and nothing reads them.
func (p *Planner) readLive(ctx context.Context, c *cluster.Client, objs []*desired, dropManaged bool) ([]*unstructured.Unstructured, error) {
	type bucket struct {
		gvr schema.GroupVersionResource
		ns  string
	}
	buckets := map[bucket][]int{}
	for i, d := range objs {
		if d.Mapping != nil && d.change == nil {
			b := bucket{d.Mapping.Resource, d.Obj.GetNamespace()}
			buckets[b] = append(buckets[b], i)
		}
	}

	// Each object is written by one goroutine only, at its own index.
	live := make([]*unstructured.Unstructured, len(objs))
	store := func(i int, u *unstructured.Unstructured) {
		if dropManaged && soleApplier(u) {
			u.SetManagedFields(nil)
		}
		live[i] = u
	}
	fail := func(what string, err error) error {
		var status apierrors.APIStatus
		if errors.As(err, &status) {
			return fmt.Errorf("cluster %s: read live %s: %w", c.Name, what, err)
		}
		return fmt.Errorf("cluster %s: read live %s: apiserver %s %w", c.Name, what, c.Config.Host, cluster.Explain(err))
	}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Workers)
	for b, members := range buckets {
		res := c.Dynamic.Resource(b.gvr).Namespace(b.ns)
		if len(members) >= p.opts.ListThreshold {
			g.Go(func() error {
				want := make(map[string]int, len(members))
				for _, i := range members {
					want[objs[i].Obj.GetName()] = i
				}
				list, err := res.List(gctx, metav1.ListOptions{})
				if err != nil {
					return fail(fmt.Sprintf("%s in namespace %q", b.gvr.Resource, b.ns), err)
				}
				for k := range list.Items {
					if i, ok := want[list.Items[k].GetName()]; ok {
						// A copy of the item, not a pointer into list.Items: that would keep
						// every listed object alive, named by the plan or not.
						u := list.Items[k]
						store(i, &u)
					}
				}
				return nil
			})
			continue
		}
		for _, i := range members {
			d := objs[i]
			g.Go(func() error {
				u, err := res.Get(gctx, d.Obj.GetName(), metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return nil
				}
				if err != nil {
					return fail(d.Ref.String(), err)
				}
				store(i, u)
				return nil
			})
		}
	}
	return live, g.Wait()
}

// soleApplier reports whether kubeplan's server-side applies are all that u's managedFields
// record. The plan reads an object's managedFields only for what other managers own
// (takeoverWarnings, valueTakeovers), so such an object's are not needed.
func soleApplier(u *unstructured.Unstructured) bool {
	for _, mf := range u.GetManagedFields() {
		if mf.Manager != cluster.FieldManager || mf.Operation != metav1.ManagedFieldsOperationApply {
			return false
		}
	}
	return true
}
