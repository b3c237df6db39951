package planner

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/resolve"
)

// readLive fetches the live state of every resolvable object, keyed by resolve.Key(ref).
// Objects that share a resource and namespace in numbers are read with one LIST; the rest with
// GETs.
func (p *Planner) readLive(ctx context.Context, c *cluster.Client, objs []*desired) (map[string]*unstructured.Unstructured, error) {
	type bucket struct {
		gvr schema.GroupVersionResource
		ns  string
	}
	buckets := map[bucket][]*desired{}
	for _, d := range objs {
		if d.Mapping != nil && d.change == nil {
			b := bucket{d.Mapping.Resource, d.Obj.GetNamespace()}
			buckets[b] = append(buckets[b], d)
		}
	}

	var mu sync.Mutex
	live := map[string]*unstructured.Unstructured{}
	store := func(ref plan.ObjectRef, u *unstructured.Unstructured) {
		mu.Lock()
		live[resolve.Key(ref)] = u
		mu.Unlock()
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
				want := map[string]*desired{}
				for _, d := range members {
					want[d.Obj.GetName()] = d
				}
				list, err := res.List(gctx, metav1.ListOptions{})
				if err != nil {
					return fail(fmt.Sprintf("%s in namespace %q", b.gvr.Resource, b.ns), err)
				}
				for i := range list.Items {
					if d, ok := want[list.Items[i].GetName()]; ok {
						store(d.Ref, &list.Items[i])
					}
				}
				return nil
			})
			continue
		}
		for _, d := range members {
			g.Go(func() error {
				u, err := res.Get(gctx, d.Obj.GetName(), metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return nil
				}
				if err != nil {
					return fail(d.Ref.String(), err)
				}
				store(d.Ref, u)
				return nil
			})
		}
	}
	return live, g.Wait()
}
