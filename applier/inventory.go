package applier

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/inventory"
	"github.com/kubeplan/kubeplan/outcome"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/resolve"
)

var configMapGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// scope is what an ApplySet parent records: the group-kinds and namespaces of its members
// (and, read from a parent, its owning repository).
type scope struct {
	groupKinds map[string]bool // schema.GroupKind.String()
	namespaces map[string]bool
	owner      string
}

func newScope() scope { return scope{groupKinds: map[string]bool{}, namespaces: map[string]bool{}} }

func (s scope) add(gk schema.GroupKind, ns string) {
	s.groupKinds[gk.String()] = true
	if ns != "" {
		s.namespaces[ns] = true
	}
}

func (s scope) union(o scope) scope {
	u := newScope()
	for _, x := range []scope{s, o} {
		for gk := range x.groupKinds {
			u.groupKinds[gk] = true
		}
		for ns := range x.namespaces {
			u.namespaces[ns] = true
		}
	}
	return u
}

// scopeOf is the scope of the rendered objects the cluster knows the kind of (or will, through
// a CRD in the request when pending is true).
func scopeOf(items []*item, pending bool) scope {
	s := newScope()
	for _, it := range items {
		if it.Mapping != nil || pending && it.Pending {
			s.add(it.gk, it.Ref.Namespace)
		}
	}
	return s
}

// readParent reads the scope the existing parent records (empty when there is none yet). A
// parent another repository owns is refused.
func readParent(ctx context.Context, c *cluster.Client, inv inventory.Set, repository string) (scope, []string, error) {
	s := newScope()
	parent, err := inv.ReadParent(ctx, c.Dynamic)
	if err != nil {
		return s, nil, fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	if parent == nil {
		return s, nil, nil
	}
	if err := inv.CheckOwner(parent, repository); err != nil {
		return s, nil, fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	s.owner = inventory.Owner(parent)
	ann := parent.GetAnnotations()
	groupKinds, namespaces := inventory.Recorded(parent)
	for _, gk := range groupKinds {
		s.groupKinds[gk] = true
	}
	for _, ns := range namespaces {
		s.namespaces[ns] = true
	}
	var notes []string
	if tooling := ann[inventory.AnnotationTooling]; tooling != "" && tooling != inventory.Tooling {
		notes = append(notes, fmt.Sprintf("inventory configmap %s/%s was written by %s; kubeplan takes it over", inv.ParentNamespace, inv.ParentName, tooling))
	}
	if s.owner == "" && repository != "" {
		notes = append(notes, fmt.Sprintf("inventory configmap %s/%s recorded no owning repository: it now records %s", inv.ParentNamespace, inv.ParentName, repository))
	}
	return s, notes, nil
}

// writeParent server-side applies the parent ConfigMap recording s and the owning repository.
// The parent is kubeplan's own bookkeeping (its id label and owner were checked), so conflicts
// over it are forced.
func writeParent(ctx context.Context, c *cluster.Client, inv inventory.Set, s scope, owner string) error {
	var gks []schema.GroupKind
	for gk := range s.groupKinds {
		gks = append(gks, schema.ParseGroupKind(gk))
	}
	var nss []string
	for ns := range s.namespaces {
		nss = append(nss, ns)
	}
	parent := inv.Parent(gks, nss, owner)
	_, err := c.Dynamic.Resource(configMapGVR).Namespace(inv.ParentNamespace).Apply(ctx, inv.ParentName, parent,
		metav1.ApplyOptions{FieldManager: cluster.FieldManager, Force: true})
	return err
}

type pruneResult struct {
	pruned []outcome.Object
	// remaining is where members gone from the render may still live: not pruned, failed to
	// prune, or of kinds the cluster no longer serves.
	remaining scope
	notes     []string
}

// prune deletes the inventory members that are gone from the render, when the request asks
// for it and every object applied. Only labelled members of the set are ever deleted.
func (a *Applier) prune(ctx context.Context, c *cluster.Client, req Request, items []*item) (pruneResult, error) {
	inv := req.Inventory
	pr := pruneResult{remaining: newScope()}
	gone, skipped, err := rule(c, req).Gone(ctx, c.Dynamic, req.Repository, req.Scope, resolved(items))
	if err != nil {
		return pr, err
	}
	for _, gk := range skipped {
		pr.remaining.groupKinds[gk] = true
	}
	if n := resolve.SkippedNote(skipped); n != "" {
		pr.notes = append(pr.notes, n)
	}
	failed := 0
	for _, it := range items {
		if it.res.Action == outcome.Failed {
			failed++
		}
	}

	var mu sync.Mutex
	keep := func(m inventory.Member) {
		mu.Lock()
		defer mu.Unlock()
		pr.remaining.add(m.Object.GroupVersionKind().GroupKind(), m.Object.GetNamespace())
	}
	switch {
	case len(gone) == 0:
		return pr, nil
	case !req.Prune:
		for _, m := range gone {
			keep(m)
		}
		pr.notes = append(pr.notes, fmt.Sprintf("prune disabled: %s gone from the render left in place (%s)", plural(len(gone), "inventory member"), refList(gone)))
		return pr, nil
	case failed > 0:
		for _, m := range gone {
			keep(m)
		}
		pr.notes = append(pr.notes, fmt.Sprintf("prune skipped: %s failed to apply (%s gone from the render left in place)", plural(failed, "object"), plural(len(gone), "inventory member")))
		return pr, nil
	}

	// Deleting the namespace that holds the parent would delete the inventory with it; deleting
	// any Namespace or CRD takes down more than the inventory knows, and needs the project's yes.
	gone = slices.DeleteFunc(gone, func(m inventory.Member) bool {
		ref := resolve.MemberRef(m)
		switch {
		case ref.Kind == "Namespace" && ref.Group() == "" && ref.Name == inv.ParentNamespace:
			keep(m)
			pr.notes = append(pr.notes, fmt.Sprintf("%s is gone from the render but not pruned: it holds the project's inventory configmap %s", ref, inv.ParentName))
			return true
		case plan.Destroys(ref) && !req.AllowDestructive:
			keep(m)
			pr.notes = append(pr.notes, fmt.Sprintf("%s is gone from the render but not deleted: deleting it takes down all it holds, and the project does not allow destructive changes (apply.allow_destructive)", ref))
			return true
		}
		return false
	})

	results := make([]outcome.Object, len(gone))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(a.opts.Workers)
	for i, m := range gone {
		ref := resolve.MemberRef(m)
		results[i] = outcome.Object{Object: ref}
		g.Go(func() error {
			uid := m.Object.GetUID()
			policy := metav1.DeletePropagationBackground
			err := c.Dynamic.Resource(m.Mapping.Resource).Namespace(ref.Namespace).Delete(gctx, ref.Name,
				metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &uid}})
			switch {
			case err == nil || apierrors.IsNotFound(err):
				results[i].Action = outcome.Pruned
				return nil
			case isAPIStatus(err):
				results[i].Action, results[i].Error = outcome.Failed, "prune: "+oneLine(err.Error())
				keep(m)
				return nil
			default:
				return fmt.Errorf("cluster %s: prune %s: %w", c.Name, ref, err)
			}
		})
	}
	err = g.Wait()
	// After an error, deletions that were never made are left out.
	pr.pruned = slices.DeleteFunc(results, func(r outcome.Object) bool { return r.Action == "" })
	return pr, err
}

// refList names up to five members.
func refList(ms []inventory.Member) string {
	var names []string
	for i, m := range ms {
		if i == 5 {
			names = append(names, fmt.Sprintf("and %d more", len(ms)-5))
			break
		}
		names = append(names, resolve.MemberRef(m).String())
	}
	return strings.Join(names, ", ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
