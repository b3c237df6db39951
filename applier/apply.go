package applier

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/outcome"
)

// crdPoll is how often CRDs are checked for Established while phase 1 waits.
const crdPoll = 100 * time.Millisecond

// applyPhase applies, in parallel, the unsettled resolved objects of the given ranks.
func (a *Applier) applyPhase(ctx context.Context, c *cluster.Client, items []*item, force bool, ranks ...int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(a.opts.Workers)
	for _, it := range items {
		if it.settled() || it.Mapping == nil || !slices.Contains(ranks, it.rank) {
			continue
		}
		g.Go(func() error { return applyOne(gctx, c, it, force) })
	}
	return g.Wait()
}

// applyOne server-side applies one object. A refusal by the apiserver fails the object; any
// other error (transport, ctx done) is returned and stops the apply.
func applyOne(ctx context.Context, c *cluster.Client, it *item, force bool) error {
	res := c.Dynamic.Resource(it.Mapping.Resource).Namespace(it.Obj.GetNamespace())
	before, err := res.Get(ctx, it.Obj.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		before = nil
	case err != nil:
		if !isAPIStatus(err) {
			return fmt.Errorf("cluster %s: read %s: %w", c.Name, it.Ref, err)
		}
		it.fail("read live object: %s", err)
		return nil
	}
	after, err := res.Apply(ctx, it.Obj.GetName(), it.Obj, metav1.ApplyOptions{FieldManager: cluster.FieldManager, Force: force})
	if err != nil {
		if !isAPIStatus(err) {
			return fmt.Errorf("cluster %s: apply %s: %w", c.Name, it.Ref, err)
		}
		it.fail("%s", describeRejection(err, it.Obj.GetNamespace()))
		return nil
	}
	it.live = after
	switch {
	case before == nil:
		it.res.Action = outcome.Created
	case before.GetResourceVersion() == after.GetResourceVersion():
		it.res.Action = outcome.Unchanged
	default:
		it.res.Action = outcome.Configured
	}
	return nil
}

// settleCRDs waits until the CRDs applied in phase 1 are Established, then resolves the kinds
// they define (resetting the RESTMapper so it sees them). CRDs not Established within
// CRDTimeout, and objects whose kind is still not served, fail.
func (a *Applier) settleCRDs(ctx context.Context, c *cluster.Client, items []*item, crdOf map[schema.GroupVersionKind]*item) error {
	var crds []*item
	for _, it := range items {
		if it.isCRD() && it.applied() {
			crds = append(crds, it)
		}
	}
	deadline := time.Now().Add(a.opts.CRDTimeout)
	waiting := map[*item]string{} // CRD → why it is not established yet
	for _, it := range crds {
		waiting[it] = "not established yet"
	}
	for first := true; len(waiting) > 0; first = false {
		for it := range waiting {
			live := it.live
			if !first {
				u, err := c.Dynamic.Resource(it.Mapping.Resource).Get(ctx, it.Ref.Name, metav1.GetOptions{})
				if err != nil {
					if !isAPIStatus(err) {
						return fmt.Errorf("cluster %s: read %s: %w", c.Name, it.Ref, err)
					}
					waiting[it] = oneLine(err.Error())
					continue
				}
				live = u
			}
			established, failed, why := crdEstablished(live)
			switch {
			case established:
				delete(waiting, it)
			case failed:
				it.fail("CustomResourceDefinition not established: %s", why)
				delete(waiting, it)
			default:
				waiting[it] = why
			}
		}
		if len(waiting) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for it, why := range waiting {
				it.fail("CustomResourceDefinition not established after %s: %s", a.opts.CRDTimeout, why)
			}
			break
		}
		if err := sleep(ctx, crdPoll); err != nil {
			return fmt.Errorf("cluster %s: wait for CustomResourceDefinitions: %w", c.Name, err)
		}
	}
	if len(crds) > 0 {
		c.Mapper.Reset()
	}

	// Discovery may serve a new kind a moment after its CRD is Established.
	for {
		var pending []*item
		for _, it := range items {
			if !it.Pending || it.settled() {
				continue
			}
			gvk := it.Obj.GroupVersionKind()
			mapping, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			switch {
			case err == nil:
				it.Mapping, it.Pending = mapping, false
				if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
					it.Obj.SetNamespace("")
				}
				continue
			case !meta.IsNoMatchError(err):
				return fmt.Errorf("cluster %s: discover resource for %s: %w", c.Name, gvk, err)
			}
			crd := crdOf[gvk]
			switch {
			case crd == nil:
				it.fail("unknown kind %s in %s: cluster %s does not serve it", gvk.Kind, gvk.GroupVersion(), c.Name)
			case crd.res.Action == outcome.Failed:
				it.fail("kind %s is not served: its %s failed (%s)", gvk.Kind, crd.Ref, crd.res.Error)
			default:
				pending = append(pending, it)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			for _, it := range pending {
				gvk := it.Obj.GroupVersionKind()
				it.fail("kind %s in %s is not served %s after its CustomResourceDefinition was applied", gvk.Kind, gvk.GroupVersion(), a.opts.CRDTimeout)
			}
			return nil
		}
		if err := sleep(ctx, crdPoll); err != nil {
			return fmt.Errorf("cluster %s: wait for new kinds to be served: %w", c.Name, err)
		}
		c.Mapper.Reset()
	}
}

// crdEstablished reads a CRD's conditions: Established=True, or NamesAccepted=False (failed).
func crdEstablished(u *unstructured.Unstructured) (established, failed bool, why string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	why = "not established yet"
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		typ, _ := m["type"].(string)
		status, _ := m["status"].(string)
		msg, _ := m["message"].(string)
		switch {
		case typ == "Established" && status == "True":
			return true, false, ""
		case typ == "NamesAccepted" && status == "False":
			return false, true, msg
		case typ == "Established" && msg != "":
			why = msg
		}
	}
	return false, false, why
}

func isAPIStatus(err error) bool {
	var status apierrors.APIStatus
	return errors.As(err, &status)
}

// describeRejection words an apiserver refusal of an apply on one line.
func describeRejection(err error, ns string) string {
	if apierrors.IsConflict(err) {
		if msg := conflictMessage(err); msg != "" {
			return msg
		}
	}
	if ns != "" && cluster.NamespaceNotFound(err, ns) {
		return fmt.Sprintf("namespace %s does not exist (create it in this project or before applying): %s", ns, oneLine(err.Error()))
	}
	return oneLine(cluster.DescribeRejection(err, "rejected"))
}

// conflictMessage turns a server-side apply conflict into
// `conflict: field manager "hpa-controller" owns .spec.replicas (set force …)`.
func conflictMessage(err error) string {
	var managers []string
	fields := map[string][]string{}
	for _, c := range cluster.Conflicts(err) {
		if _, ok := fields[c.Manager]; !ok {
			managers = append(managers, c.Manager)
		}
		fields[c.Manager] = append(fields[c.Manager], c.Field)
	}
	if len(managers) == 0 {
		return ""
	}
	var parts []string
	for _, m := range managers {
		parts = append(parts, fmt.Sprintf("field manager %s owns %s", m, strings.Join(fields[m], ", ")))
	}
	return "conflict: " + strings.Join(parts, "; ") + " (set force for this project to take it over)"
}
