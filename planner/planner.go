// Package planner computes what applying rendered objects would change on a live cluster:
// a server-side apply dry-run per object, compared with the live object, plus deletions of
// objects the project's inventory says it applied before and that are gone from the render.
package planner

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/kubeplan/kubeplan/cluster"
	"github.com/kubeplan/kubeplan/inventory"
	"github.com/kubeplan/kubeplan/manifest"
	"github.com/kubeplan/kubeplan/objdiff"
	"github.com/kubeplan/kubeplan/plan"
	"github.com/kubeplan/kubeplan/resolve"
)

// Options tune a planner.
type Options struct {
	// Workers bounds the requests in flight against one cluster.
	Workers int
	// ListThreshold: when at least this many objects share a resource and namespace, their
	// live state is read with one LIST instead of one GET each.
	ListThreshold int
	// Cache, when set, keeps dry-run answers so that re-plans of unchanged objects send no
	// dry-run (see cache.go). The plan is the same with or without it.
	Cache *DryRunCache
}

// DefaultOptions suit a local or remote apiserver with default inflight limits.
func DefaultOptions() Options { return Options{Workers: 32, ListThreshold: 8} }

// Planner plans projects against clusters.
type Planner struct{ opts Options }

// New returns a planner; zero options take defaults.
func New(opts Options) *Planner {
	def := DefaultOptions()
	if opts.Workers <= 0 {
		opts.Workers = def.Workers
	}
	if opts.ListThreshold <= 0 {
		opts.ListThreshold = def.ListThreshold
	}
	return &Planner{opts: opts}
}

// Request is one project to plan on one cluster.
type Request struct {
	Project string
	// Objects are planned as apply would send them: Plan defaults their namespaces and adds the
	// inventory label in place rather than on copies (a plan of thousands of objects would
	// otherwise hold each twice).
	Objects []manifest.Object
	Notes   []string
	// Renderer is recorded in the plan for readers.
	Renderer string
	// Namespace is the default for namespaced objects that name none; "default" if empty.
	Namespace string
	// Inventory is the project's ApplySet on this cluster; zero means
	// inventory.ForProject(Project, Namespace).
	Inventory inventory.Set
	// Repository ("github:acme/shop") is who asks. An inventory another repository owns is
	// refused before any live object is read. Empty (the CLI, which has no repository) plans
	// any inventory and notes its owner.
	Repository string
	// Scope, when set, refuses the whole plan, before any live object is read, when an object
	// or the inventory lies outside it (the server's access rules for this repository).
	Scope Scope
	// Inspect, when set, sees every change with the object as apply would leave it (nil for a
	// deletion) and the live object (nil for a creation), e.g. to check manifest policy. It
	// is called concurrently and may add findings or warnings to the change.
	Inspect func(ch *plan.Change, planned, live *unstructured.Unstructured)
	// CompareSecretValues lets the plan say whether a Secret value the change sets equals the
	// live one (a Secret set to what it holds plans as unchanged). Only for a caller who may
	// read the cluster's Secrets anyway, such as the operator running `kubeplan plan`; a pull
	// request's plan must leave it false, or its author could test guesses (see secrets.go).
	CompareSecretValues bool
}

// Scope says which objects a plan may touch.
type Scope interface {
	Permits(ref plan.ObjectRef) error
}

// desired is one rendered object resolved against the cluster (package resolve, the rule the
// applier follows too).
type desired struct {
	*resolve.Object
	change *plan.Change // set when the outcome is known without asking the cluster
}

// Plan computes the plan. Problems with single objects (unknown kind, immutable field,
// admission rejection) are part of the plan; an error means no plan could be made at all
// (cluster unreachable, inventory unreadable, objects defined twice).
func (p *Planner) Plan(ctx context.Context, c *cluster.Client, req Request) (*plan.Plan, error) {
	if req.Namespace == "" {
		req.Namespace = "default"
	}
	if req.Inventory == (inventory.Set{}) {
		req.Inventory = inventory.ForProject(req.Project, req.Namespace)
	}
	out := &plan.Plan{Project: req.Project, Cluster: c.Name, ClusterVersion: c.Version, Renderer: req.Renderer, Notes: req.Notes}

	objs, err := p.resolve(c, req)
	if err != nil {
		return nil, err
	}
	// Nothing live is read before the request is known to be entitled to what it names.
	if err := rule(c, req).CheckScope(req.Scope, resolved(objs)); err != nil {
		return nil, err
	}
	parent, err := req.Inventory.ReadParent(ctx, c.Dynamic)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	if err := req.Inventory.CheckOwner(parent, req.Repository); err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	out.Notes = append(out.Notes, ownerNotes(req, parent)...)
	// Inspect sees the live object as read: a policy rule may read its managedFields.
	live, err := p.readLive(ctx, c, objs, req.Inspect == nil)
	if err != nil {
		return nil, err
	}
	newNamespaces := namespacesCreated(objs, live)
	keys := p.keyer(ctx, c, objs)

	changes := make([]plan.Change, len(objs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Workers)
	for i, d := range objs {
		if d.change != nil {
			changes[i] = *d.change
			if req.Inspect != nil && d.change.Action == plan.Create {
				req.Inspect(&changes[i], d.Obj, nil)
			}
			continue
		}
		g.Go(func() error {
			ch, planned, err := p.planObject(gctx, c, keys, d, live[i], newNamespaces, req.Inventory, req.CompareSecretValues)
			if err != nil {
				return err
			}
			if req.Inspect != nil && ch.Action != plan.Fail {
				req.Inspect(&ch, planned, live[i])
			}
			changes[i] = ch
			live[i] = nil // planned: the live object may go while the others are planned
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out.Changes = changes

	deletions, notes, err := p.deletions(ctx, c, req, objs)
	if err != nil {
		return nil, err
	}
	out.Changes = append(out.Changes, deletions...)
	out.Notes = append(out.Notes, notes...)
	out.Sort()
	return out, nil
}

// rule is how the request's objects are resolved against the cluster, as the applier
// resolves them.
func rule(c *cluster.Client, req Request) resolve.Rule {
	return resolve.Rule{Cluster: c.Name, Mapper: c.Mapper, Namespace: req.Namespace, Inventory: req.Inventory}
}

// resolve resolves every rendered object. Objects whose outcome is known without asking the
// cluster (no name, reserved name, kind not served) are settled here.
func (p *Planner) resolve(c *cluster.Client, req Request) ([]*desired, error) {
	objs, err := rule(c, req).Objects(req.Objects)
	if err != nil {
		return nil, err
	}
	out := make([]*desired, len(objs))
	for i, o := range objs {
		d := &desired{Object: o}
		gvk := o.Obj.GroupVersionKind()
		switch {
		case o.Problem != "":
			d.change = &plan.Change{Object: o.Ref, Source: o.Source, Action: plan.Fail, Reason: o.Problem}
		case o.Pending:
			d.change = &plan.Change{Object: o.Ref, Source: o.Source, Action: plan.Create,
				Reason: "CRD new in this plan, validated at apply", Diff: createDiff(o.Ref, o.Obj)}
		case o.Unknown():
			d.change = &plan.Change{Object: o.Ref, Source: o.Source, Action: plan.Fail,
				Reason: fmt.Sprintf("unknown kind %s in %s: cluster %s does not serve it and this plan creates no CRD for it", gvk.Kind, gvk.GroupVersion(), c.Name)}
		}
		out[i] = d
	}
	return out, nil
}

// ownerNotes say whose inventory this is when that is news: the CLI plans any, and a parent
// without an owner is claimed by the next apply.
func ownerNotes(req Request, parent *unstructured.Unstructured) []string {
	if parent == nil {
		return nil
	}
	inv := req.Inventory
	owner := inventory.Owner(parent)
	switch {
	case owner == "" && req.Repository != "":
		return []string{fmt.Sprintf("inventory configmap %s/%s records no owning repository (written by kubectl or an earlier kubeplan): applying this plan records %s as its owner, and kubeplan refuses other repositories from then on",
			inv.ParentNamespace, inv.ParentName, req.Repository)}
	case owner != "" && req.Repository == "":
		return []string{fmt.Sprintf("inventory configmap %s/%s belongs to repository %s", inv.ParentNamespace, inv.ParentName, owner)}
	}
	return nil
}

// resolved are the objects as package resolve sees them.
func resolved(objs []*desired) []*resolve.Object {
	out := make([]*resolve.Object, len(objs))
	for i, d := range objs {
		out[i] = d.Object
	}
	return out
}

// namespacesCreated names the Namespaces this render creates (rendered, not live).
func namespacesCreated(objs []*desired, live []*unstructured.Unstructured) map[string]bool {
	out := map[string]bool{}
	for i, d := range objs {
		if d.Ref.Kind == "Namespace" && d.Ref.Group() == "" && live[i] == nil {
			out[d.Ref.Name] = true
		}
	}
	return out
}

// planObject dry-runs one object and compares the result with its live state.
func (p *Planner) planObject(ctx context.Context, c *cluster.Client, keys *keyer, d *desired, live *unstructured.Unstructured, newNamespaces map[string]bool, inv inventory.Set, compareSecrets bool) (plan.Change, *unstructured.Unstructured, error) {
	ch := plan.Change{Object: d.Ref, Source: d.Source}
	if live != nil {
		if other := live.GetLabels()[inventory.LabelPartOf]; other != "" && other != inv.ID() {
			ch.Warnings = append(ch.Warnings, fmt.Sprintf("belongs to another ApplySet (%s): applying moves it into project %s", other, inv.ParentName))
		}
	}
	// A Secret that exists is dry-run with its live values, and the keys the change sets are
	// reported without comparing values (see secrets.go), unless the caller may compare.
	sent := d.Obj
	var secretKeys []string
	blind := objdiff.IsSecret(live) && !compareSecrets
	if objdiff.IsSecret(live) {
		ch.LiveSecretVersion = live.GetResourceVersion()
	}
	if blind {
		secretKeys = objdiff.SecretKeys(d.Obj)
		sent = blindSecret(d.Obj, live)
	}
	// One forced dry-run: what it takes from other field managers is read from managedFields
	// below, rather than from the 409 a plain dry-run would answer first (a second request).
	planned, err := p.dryRun(ctx, c, keys, d, live, sent)
	if err != nil {
		var status apierrors.APIStatus
		if !errors.As(err, &status) {
			return ch, nil, fmt.Errorf("cluster %s: dry-run %s: apiserver %s %w", c.Name, d.Ref, c.Config.Host, cluster.Explain(err))
		}
		if ns := d.Obj.GetNamespace(); live == nil && newNamespaces[ns] && cluster.NamespaceNotFound(err, ns) {
			ch.Action = plan.Create
			ch.Reason = fmt.Sprintf("namespace %s new in this plan, validated at apply", ns)
			ch.Diff = createDiff(d.Ref, d.Obj)
			return ch, d.Obj, nil
		}
		ch.Action = plan.Fail
		// An admission webhook or policy may quote the Secret it refuses, live values included.
		ch.Reason = objdiff.ScrubSecretValues(describeRejection(err), d.Obj, live)
		return ch, nil, nil
	}
	if live == nil {
		ch.Action = plan.Create
		ch.Diff = createDiff(d.Ref, d.Obj)
		if objdiff.IsSecret(planned) {
			ch.SecretKeys = objdiff.WrittenSecretKeys(nil, planned, nil)
		}
		return ch, planned, nil
	}
	takeovers, err := takeoverWarnings(live, planned)
	if err != nil {
		return ch, nil, fmt.Errorf("cluster %s: %s: %w", c.Name, d.Ref, err)
	}
	if len(takeovers) > 0 {
		ch.Warnings = append(ch.Warnings, takeovers...)
		ch.Conflicts = true // /apply takes fields over only when apply.force allows it
	}
	if objdiff.IsSecret(live) && !blind {
		secretKeys = objdiff.ChangedSecretKeys(live, planned)
	}
	l, pl := objdiff.Pair(live, planned, secretKeys)
	diff, err := objdiff.Diff("live/"+d.Ref.String(), "planned/"+d.Ref.String(), l, pl)
	if err != nil {
		return ch, nil, err
	}
	if diff == "" {
		ch.Action = plan.Unchanged
		ch.Warnings, ch.Conflicts = nil, false // nothing changes hands when nothing changes
		return ch, planned, nil
	}
	ch.Action = plan.Update
	ch.Diff = diff
	if objdiff.IsSecret(live) {
		ch.SecretKeys = objdiff.WrittenSecretKeys(live, planned, secretKeys)
	}
	if blind {
		if ws := valueTakeovers(live, secretKeys); len(ws) > 0 {
			ch.Warnings = append(ch.Warnings, ws...)
			ch.Conflicts = true
		}
		if w := immutableWarning(live, secretKeys); w != "" {
			ch.Warnings = append(ch.Warnings, w)
		}
	}
	return ch, planned, nil
}

// dryRun sends the forced server-side apply dry-run of sent, or answers it from the cache.
func (p *Planner) dryRun(ctx context.Context, c *cluster.Client, keys *keyer, d *desired, live, sent *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	var key cacheKey
	cached := false
	if keys != nil {
		if key, cached = keys.key(d, live, sent); cached {
			if planned, hit := p.opts.Cache.get(key); hit {
				return planned, nil
			}
		}
	}
	opts := metav1.ApplyOptions{FieldManager: cluster.FieldManager, DryRun: []string{metav1.DryRunAll}, Force: true}
	planned, err := c.Dynamic.Resource(d.Mapping.Resource).Namespace(d.Obj.GetNamespace()).Apply(ctx, d.Obj.GetName(), sent, opts)
	if cached && err == nil {
		p.opts.Cache.put(key, planned)
	}
	return planned, err
}

// keyer prepares the cache keys of one plan; nil without a cache. Custom resources are keyed
// by their CRD's resourceVersion too, read with one metadata-only LIST of the CRDs; if that
// fails (not allowed, say), custom resources are not cached.
func (p *Planner) keyer(ctx context.Context, c *cluster.Client, objs []*desired) *keyer {
	if p.opts.Cache == nil {
		return nil
	}
	k := &keyer{apiserver: apiserverIdentity(c)}
	custom := false
	for _, d := range objs {
		if d.change == nil && d.Mapping != nil && isCustomCandidate(d.Mapping.Resource.Group) {
			custom = true
			break
		}
	}
	if !custom {
		return k
	}
	mc, err := metadata.NewForConfig(c.Config)
	if err != nil {
		return k
	}
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	list, err := mc.Resource(crds).List(ctx, metav1.ListOptions{})
	if err != nil {
		return k
	}
	k.crds = make(map[string]string, len(list.Items))
	for _, crd := range list.Items {
		k.crds[crd.Name] = crd.ResourceVersion
	}
	return k
}

// createDiff shows a new object as written (namespace defaulted, inventory label added):
// server defaults would only bury what the author wrote.
func createDiff(ref plan.ObjectRef, obj *unstructured.Unstructured) string {
	_, n := objdiff.Pair(nil, obj, nil)
	y, err := objdiff.YAML(n)
	if err != nil {
		return ""
	}
	return objdiff.Unified("/dev/null", "planned/"+ref.String(), "", y)
}

// takeoverWarnings lists the fields the forced dry-run takes from other field managers, one
// line per field and manager, worded as the apiserver's 409 conflict would name them: a field
// kubeplan owns in planned that a manager owned in live and no longer owns in planned (a
// forced apply removes exactly the conflicting fields from their owners; fields set to the
// value another manager also set stay shared and are no conflict). Managers are sorted by
// name, fields in field path order.
func takeoverWarnings(live, planned *unstructured.Unstructured) ([]string, error) {
	if live == nil || !ownedByOthers(live) {
		return nil, nil
	}
	liveSets, err := cluster.ManagedSets(live)
	if err != nil {
		return nil, fmt.Errorf("live object: %w", err)
	}
	plannedSets, err := cluster.ManagedSets(planned)
	if err != nil {
		return nil, fmt.Errorf("dry-run answer: %w", err)
	}
	ours := &fieldpath.Set{}
	after := map[managerKey]*fieldpath.Set{}
	for _, e := range plannedSets {
		if e.Manager == cluster.FieldManager {
			ours = ours.Union(e.Set)
			continue
		}
		after[keyOf(e)] = e.Set
	}
	taken := map[string]*fieldpath.Set{}
	for _, e := range liveSets {
		if e.Manager == cluster.FieldManager {
			continue
		}
		lost := e.Set
		if still := after[keyOf(e)]; still != nil {
			lost = lost.Difference(still)
		}
		lost = lost.Intersection(ours)
		if lost.Empty() {
			continue
		}
		if t := taken[e.Manager]; t != nil {
			lost = lost.Union(t)
		}
		taken[e.Manager] = lost
	}
	managers := make([]string, 0, len(taken))
	for m := range taken {
		managers = append(managers, m)
	}
	sort.Strings(managers)
	var out []string
	for _, m := range managers {
		taken[m].Iterate(func(p fieldpath.Path) {
			out = append(out, fmt.Sprintf("takes over %s from field manager %q", p.String(), m))
		})
	}
	return out, nil
}

// managerKey names one managedFields entry as the apiserver does: an Update entry per
// version, an Apply entry across versions.
type managerKey struct{ manager, operation, subresource, apiVersion string }

func keyOf(e cluster.ManagedSet) managerKey {
	k := managerKey{e.Manager, e.Operation, e.Subresource, e.APIVersion}
	if e.Operation == "Apply" {
		k.apiVersion = ""
	}
	return k
}

// ownedByOthers: most objects are kubeplan's alone, and need no field sets read.
func ownedByOthers(u *unstructured.Unstructured) bool {
	for _, mf := range u.GetManagedFields() {
		if mf.Manager != cluster.FieldManager {
			return true
		}
	}
	return false
}

// describeRejection words an apiserver refusal of the dry-run as the plan shows it.
func describeRejection(err error) string {
	if msg := err.Error(); strings.Contains(msg, "field is immutable") || strings.Contains(msg, "is immutable") {
		return "will fail: " + msg
	}
	return cluster.DescribeRejection(err, "dry-run failed")
}
