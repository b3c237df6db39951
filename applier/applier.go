// Package applier applies one project's rendered objects to one cluster: server-side apply as
// field manager kubeplan, in dependency order (Namespaces and CustomResourceDefinitions, then
// other cluster-scoped objects, then namespaced ones), recorded in the project's ApplySet
// inventory (KEP-3659). It prunes the inventory members that are gone from the render and can
// wait until what it applied is healthy (kstatus).
package applier

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/inventory"
	"github.com/kubeplan/kubeplan/manifest"
	"github.com/kubeplan/kubeplan/outcome"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/resolve"
)

// Options tune an applier.
type Options struct {
	// Workers bounds the requests in flight against one cluster within a phase.
	Workers int
	// PollInterval is how often health is checked while waiting.
	PollInterval time.Duration
	// CRDTimeout bounds the wait for applied CustomResourceDefinitions to be Established and
	// their kinds served.
	CRDTimeout time.Duration
}

// DefaultOptions are the options zero fields take.
func DefaultOptions() Options {
	return Options{Workers: 16, PollInterval: time.Second, CRDTimeout: 60 * time.Second}
}

// Applier applies projects to clusters. It holds no state between calls.
type Applier struct{ opts Options }

// New returns an applier; zero options take defaults.
func New(opts Options) *Applier {
	def := DefaultOptions()
	if opts.Workers <= 0 {
		opts.Workers = def.Workers
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = def.PollInterval
	}
	if opts.CRDTimeout <= 0 {
		opts.CRDTimeout = def.CRDTimeout
	}
	return &Applier{opts: opts}
}

// Request is one project to apply on one cluster.
type Request struct {
	Project string
	// Namespace is the default for namespaced objects that name none; "default" if empty.
	Namespace string
	// Objects are applied as the planner plans them: Apply defaults their namespaces and adds the
	// inventory label in place.
	Objects []manifest.Object
	// Inventory is the project's ApplySet on this cluster; zero means
	// inventory.ForProject(Project, Namespace).
	Inventory inventory.Set
	// Repository ("github:acme/shop") is who applies: an inventory another repository owns is
	// refused before anything is applied, and the parent records Repository as the owner.
	// Empty keeps whatever owner the parent records.
	Repository string
	// Scope, when set, refuses the whole apply, before anything is applied, when an object or
	// the inventory lies outside it (the server's access rules for this repository).
	Scope Scope
	// Prune deletes inventory members that are gone from Objects.
	Prune bool
	// AllowDestructive lets prune delete Namespaces and CustomResourceDefinitions, which takes
	// down everything in them; without it they are left in place with a note.
	AllowDestructive bool
	// Force takes over fields owned by other field managers; without it such a conflict fails
	// the object.
	Force bool
	// HealthTimeout bounds the wait for applied objects to become healthy; 0 does not wait.
	HealthTimeout time.Duration
}

// Scope says which objects an apply may touch.
type Scope interface {
	Permits(ref plan.ObjectRef) error
}

// item is one rendered object on its way to the cluster, resolved by the rule the planner
// follows too (package resolve).
type item struct {
	*resolve.Object
	gk   schema.GroupKind
	rank int
	live *unstructured.Unstructured // as the apply returned it
	res  outcome.Object
}

func (it *item) fail(format string, args ...any) {
	it.res.Action = outcome.Failed
	it.res.Error = oneLine(fmt.Sprintf(format, args...))
}

func (it *item) settled() bool { return it.res.Action != "" }

// applied reports whether the object is on the cluster as rendered.
func (it *item) applied() bool {
	switch it.res.Action {
	case outcome.Created, outcome.Configured, outcome.Unchanged:
		return true
	}
	return false
}

func (it *item) isCRD() bool {
	return it.gk == schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}
}

// Apply applies the request's objects to the cluster. Problems with single objects (invalid,
// conflicting, unknown kind) are failed objects in the result; an error means the apply stopped
// (objects defined twice, inventory unusable, cluster unreachable, ctx done). The result is
// never nil: on error it records what was done before the apply stopped.
func (a *Applier) Apply(ctx context.Context, c *cluster.Client, req Request) (*outcome.Result, error) {
	if req.Namespace == "" {
		req.Namespace = "default"
	}
	if req.Inventory == (inventory.Set{}) {
		req.Inventory = inventory.ForProject(req.Project, req.Namespace)
	}
	inv := req.Inventory
	out := &outcome.Result{Project: req.Project, Cluster: c.Name}

	items, crdOf, err := a.resolve(c, req)
	if err != nil {
		return out, err
	}
	var pruned []outcome.Object
	// finish records the outcomes so far: on error, what was done before the apply stopped.
	finish := func(err error) (*outcome.Result, error) {
		out.Objects = nil
		for _, it := range items {
			if it.settled() {
				out.Objects = append(out.Objects, it.res)
			}
		}
		out.Objects = append(out.Objects, pruned...)
		return out, err
	}
	parentErr := func(err error) error {
		return fmt.Errorf("cluster %s: write inventory configmap %s/%s: %w", c.Name, inv.ParentNamespace, inv.ParentName, err)
	}

	if err := rule(c, req).CheckScope(req.Scope, resolved(items)); err != nil {
		return finish(err)
	}
	prev, notes, err := readParent(ctx, c, inv, req.Repository)
	if err != nil {
		return finish(err)
	}
	out.Notes = append(out.Notes, notes...)
	owner := req.Repository
	if owner == "" {
		owner = prev.owner
	}

	// KEP-3659: before members are applied, the parent records a superset of the kinds and
	// namespaces they live in, so that an interrupted apply leaves nothing untracked.
	superset := prev.union(scopeOf(items, true))
	parentWritten := true
	if err := writeParent(ctx, c, inv, superset, owner); err != nil {
		if !cluster.NamespaceNotFound(err, inv.ParentNamespace) || !rendersNamespace(items, inv.ParentNamespace) {
			return finish(parentErr(err))
		}
		parentWritten = false // its namespace is created in phase 1
	}

	// Phase 1: Namespaces and CRDs; then the kinds the CRDs define.
	if err := a.applyPhase(ctx, c, items, req.Force, 0, 1); err != nil {
		return finish(err)
	}
	if err := a.settleCRDs(ctx, c, items, crdOf); err != nil {
		return finish(err)
	}
	if !parentWritten {
		if err := writeParent(ctx, c, inv, superset, owner); err != nil {
			return finish(parentErr(err))
		}
	}
	// Phase 2: other cluster-scoped objects. Phase 3: namespaced objects.
	if err := a.applyPhase(ctx, c, items, req.Force, 2); err != nil {
		return finish(err)
	}
	if err := a.applyPhase(ctx, c, items, req.Force, 3); err != nil {
		return finish(err)
	}

	pr, err := a.prune(ctx, c, req, items)
	pruned = pr.pruned
	if err != nil {
		return finish(err)
	}
	out.Notes = append(out.Notes, pr.notes...)

	// The parent now records only where members may still live: the current objects, members
	// that were not pruned, and kinds the cluster no longer serves (their objects may return).
	if err := writeParent(ctx, c, inv, scopeOf(items, false).union(pr.remaining), owner); err != nil {
		if ctx.Err() != nil {
			return finish(parentErr(err))
		}
		out.Notes = append(out.Notes, "inventory not narrowed to the current objects (it still lists earlier kinds and namespaces): "+oneLine(err.Error()))
	}

	if req.HealthTimeout > 0 {
		timedOut, err := a.waitHealthy(ctx, c, items, req.HealthTimeout)
		if err != nil {
			return finish(err)
		}
		if timedOut {
			out.HealthTimedOut = true
			out.Notes = append(out.Notes, healthTimeoutNote(items, req.HealthTimeout))
		}
	}
	return finish(nil)
}

// rule is how the request's objects are resolved against the cluster, as the planner
// resolves them.
func rule(c *cluster.Client, req Request) resolve.Rule {
	return resolve.Rule{Cluster: c.Name, Mapper: c.Mapper, Namespace: req.Namespace, Inventory: req.Inventory}
}

// resolve resolves every rendered object, sorted in apply order, and fails those that cannot
// be applied. crdOf maps the kinds defined by CRDs in the request to those CRDs.
func (a *Applier) resolve(c *cluster.Client, req Request) ([]*item, map[schema.GroupVersionKind]*item, error) {
	objs, err := rule(c, req).Objects(req.Objects)
	if err != nil {
		return nil, nil, err
	}
	items := make([]*item, len(objs))
	for i, o := range objs {
		gvk := o.Obj.GroupVersionKind()
		it := &item{Object: o, gk: gvk.GroupKind(), rank: plan.ApplyPhase(o.Ref)}
		it.res.Source, it.res.Object = o.Source, o.Ref
		switch {
		case o.Problem != "":
			it.fail("%s", o.Problem)
		case o.Unknown():
			it.fail("unknown kind %s in %s: cluster %s does not serve it and this request creates no CRD for it", gvk.Kind, gvk.GroupVersion(), c.Name)
		}
		items[i] = it
	}
	sort.SliceStable(items, func(i, j int) bool { return plan.ApplyOrder(items[i].Ref, items[j].Ref) })

	crdOf := map[schema.GroupVersionKind]*item{}
	for _, it := range items {
		if it.isCRD() {
			for gvk := range manifest.CRDKinds([]manifest.Object{{Unstructured: it.Obj, Source: it.Source}}) {
				crdOf[gvk] = it
			}
		}
	}
	return items, crdOf, nil
}

// resolved are the items as package resolve sees them.
func resolved(items []*item) []*resolve.Object {
	out := make([]*resolve.Object, len(items))
	for i, it := range items {
		out[i] = it.Object
	}
	return out
}

func rendersNamespace(items []*item, ns string) bool {
	for _, it := range items {
		if it.rank == 0 && it.Ref.Name == ns && !it.settled() {
			return true
		}
	}
	return false
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
